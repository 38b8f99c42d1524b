package policy

import (
	"fmt"
	"strings"
)

// Table 3 warning codes the engine gives.
const (
	WarningSecureDeliveryFailure = "001" // outbound classified mail to an agency without Secure Email capability
	WarningForgedAgency          = "002" // From: a participating agency, not verified
	WarningOwnAgency             = "005" // From: our own agency, arriving from outside
)

// NoticeKind is a message the gateway generates about a transaction.
type NoticeKind string

const (
	NoticeReceipt NoticeKind = "receipt" // DELIVERY RECEIPT (R73, Table 4)
	NoticeNDR     NoticeKind = "ndr"     // NON DELIVERY REPORT (R74, Table 4)
	NoticeHeld    NoticeKind = "held"    // administrator notice of held mail (R56, R110)
	NoticePing    NoticeKind = "ping"    // ping answer (R96-R99)
)

// Notice asks the glue to generate and submit one message.
type Notice struct {
	Kind   NoticeKind `json:"kind"`
	To     string     `json:"to"`
	Code   string     `json:"code,omitempty"`
	Reason string     `json:"reason,omitempty"`
	Rcpts  []string   `json:"recipients,omitempty"` // the recipients it is about
}

// verifiedSender: the From: domain is vouched for by a passing SPF check
// of a MAIL FROM in the same domain or a subdomain of it, over TLS. (Domain
// S/MIME and DKIM/DMARC will also verify, when they land.)
func verifiedSender(t Transaction, fromDomain string) bool {
	r := t.Mail.SPF
	if r == nil || r.Result != ResultPass || t.Conn.TLS.Version == "" {
		return false
	}
	d := senderDomain(t.Envelope.From)
	return d == fromDomain || strings.HasSuffix(d, "."+fromDomain) || strings.HasSuffix(fromDomain, "."+d)
}

// fromDomain is the domain of the single From: address, "" otherwise.
func fromDomain(hs []Header) string {
	froms := HeaderValues(hs, "From")
	if len(froms) != 1 {
		return ""
	}
	addrs, err := parseAddressList(froms[0])
	if err != nil || len(addrs) != 1 {
		return ""
	}
	return senderDomain(strings.ToLower(addrs[0]))
}

// chooseInboundWarning gives the one warning an inbound message gets
// (R79: processing stops at the first rule that warns), in the order:
// 005 (From: our own agency), 002 (From: a participating agency), 004
// (classified from a non-participating agency, M-IN). R76: an unverified
// message that carries X-NZ-Secure-email is always delivered with its
// warning; other unverified ones are warned or deleted per
// inbound.unverified.
func (p *Policy) chooseInboundWarning(v *Verdict, t Transaction, secureTag bool) {
	fd := fromDomain(t.Headers)
	o := &p.Outbound
	switch {
	case fd != "" && p.IsOurDomain(fd) && !verifiedSender(t, fd):
		v.WarningCode = WarningOwnAgency
		v.reason("From: is in our own domain %s but the message came from outside and is not verified (warning %s, R76)", fd, v.WarningCode)
	case fd != "" && (o.SecureDomains.Match(fd) || o.SEEMailDomains.Match(fd) || o.SecureMailDomains.Match(fd)) && !verifiedSender(t, fd):
		v.WarningCode = WarningForgedAgency
		v.reason("From: is a participating agency (%s) but the message is not verified (warning %s, R76)", fd, v.WarningCode)
	default:
		p.flagInsecureClassified(v, t)
		if v.WarningCode == "" && secureTag {
			// R76: carries X-NZ-Secure-email, cannot be verified.
			v.WarningCode = WarningForgedAgency
			v.reason("carries X-NZ-Secure-email but is not verified (warning %s, R76)", v.WarningCode)
		}
	}
	if v.WarningCode == "" {
		return
	}
	v.WarningMode = p.Inbound.WarningMode
	if p.Inbound.Unverified == "delete" && !secureTag && v.WarningCode != WarningInsecureSource {
		v.Action = Discard
		v.WarningMode = ""
		v.reason("unverified message deleted (inbound.unverified = \"delete\", R76); logged for the audit trail")
	}
}

// receipts decides the delivery messages of R73-R74: an [RSVPDR] message
// from an authenticated sender gets a DELIVERY RECEIPT when accepted and a
// NON DELIVERY REPORT when refused by a rule; recipients removed by a rule
// always get the sender a NON DELIVERY REPORT naming them (issue 7, R74).
func (p *Policy) receipts(v *Verdict, t Transaction) {
	sender := t.Envelope.From
	if sender == "" {
		return // never answer the null sender (R93)
	}
	authenticated := t.Envelope.AuthUser != "" || (v.Direction == Inbound && verifiedSender(t, senderDomain(sender)))
	if len(v.RemoveRcpts) > 0 {
		v.Notices = append(v.Notices, Notice{Kind: NoticeNDR, To: sender, Code: WarningSecureDeliveryFailure, Rcpts: v.RemoveRcpts,
			Reason: fmt.Sprintf("The %s message may not be sent to these recipients under this agency's policy.", v.Classification)})
	}
	if !t.RSVPDR || !authenticated {
		return
	}
	switch v.Action {
	case Accept:
		v.Notices = append(v.Notices, Notice{Kind: NoticeReceipt, To: sender, Rcpts: without(t.Envelope.Rcpts, v.RemoveRcpts)})
	case Reject:
		reason := ""
		if v.Reply != nil {
			reason = v.Reply.Text
		}
		v.Notices = append(v.Notices, Notice{Kind: NoticeNDR, To: sender, Rcpts: t.Envelope.Rcpts, Reason: reason})
	}
}

func without(all, drop []string) []string {
	var out []string
	for _, a := range all {
		keep := true
		for _, d := range drop {
			keep = keep && !strings.EqualFold(a, d)
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

// PingAddress is the address answered by the ping responder (R96).
func (p *Policy) PingAddress() string {
	if p.Notify.PingAddress == "off" {
		return ""
	}
	if p.Notify.PingAddress != "" {
		return p.Notify.PingAddress
	}
	if len(p.Domains) == 0 {
		return ""
	}
	return "ping@" + p.Domains[0]
}

// Postmaster is the address notices come from and held-mail notices go to
// (R92).
func (p *Policy) Postmaster() string {
	if p.Notify.Admin != "" {
		return p.Notify.Admin
	}
	if len(p.Domains) == 0 {
		return "postmaster"
	}
	return "postmaster@" + p.Domains[0]
}

// atPing answers the ping address before any other rule (R96): the sender
// gets the product and environment; the original is consumed.
func (p *Policy) atPing(t Transaction) (Verdict, bool) {
	ping := p.PingAddress()
	if ping == "" || t.Envelope.From == "" {
		return Verdict{}, false
	}
	var pinged bool
	for _, r := range t.Envelope.Rcpts {
		pinged = pinged || strings.EqualFold(r, ping)
	}
	if !pinged {
		return Verdict{}, false
	}
	v := Verdict{Stage: StageEOM, Direction: p.Direction(t.Conn, t.Envelope), Action: Discard, Classification: Unclassified}
	v.Notices = append(v.Notices, Notice{Kind: NoticePing, To: t.Envelope.From})
	if others := without(t.Envelope.Rcpts, []string{ping}); len(others) > 0 {
		// Other recipients still get the message; only the ping copy is consumed.
		return v, false
	}
	v.reason("message to the ping address %s answered and consumed (R96-R99)", ping)
	return v, true
}
