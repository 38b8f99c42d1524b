package policy

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
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
	// From is the domain a certificate request or answer is from
	// (NoticeCertRequest, NoticeCertAnswer).
	From string `json:"from,omitempty"`
	// Transforms: smime-sign-encrypt for a notice to a peer agency (R62).
	Transforms []Transform `json:"transforms,omitempty"`
}

// verifiedSender reports whether the author domain fromDomain (normalised)
// is verified (R76), by DMARC's alignment rules (RFC 7489 section 3.1,
// issue 12 point 3), over TLS: a DMARC pass for that very From: domain
// (an aligned SPF or DKIM pass), or a passing SPF check of a MAIL FROM
// whose domain is aligned with it (the same domain or the same
// organisational domain, never a public suffix: an SPF pass of govt.nz
// verifies no agency below it).
func verifiedSender(t Transaction, fromDomain string) bool {
	if fromDomain == "" || t.Conn.TLS.Version == "" {
		return false
	}
	if d := t.Message.DMARC; d != nil && d.Result == ResultPass && d.FromDomain == fromDomain {
		return true
	}
	r := t.Mail.SPF
	if r == nil || r.Result != ResultPass {
		return false
	}
	d, ok := message.NormalizeDomain(senderDomain(t.Envelope.From))
	return ok && message.Aligned(d, fromDomain)
}

// ownsDomain: d is one of our domains or a subdomain of one (issue 12
// point 3: 005 covers x@sub.agency.govt.nz when agency.govt.nz is ours).
func (p *Policy) ownsDomain(d string) bool {
	for _, ours := range p.Domains {
		if d == ours || strings.HasSuffix(d, "."+ours) {
			return true
		}
	}
	return false
}

// participating: d is on one of the secure-domain lists (a participating
// agency, Table 3 code 002).
func (p *Policy) participating(d string) bool {
	o := &p.Outbound
	return o.SecureDomains.Match(d) || o.SEEMailDomains.Match(d) || o.SecureMailDomains.Match(d)
}

// authorWarning is the Table 3 warning the From: field(s) call for (R76),
// read by the one author parser (message.Authors), with the reason; "" when
// none. 005 goes before 002 (R79: the first rule that warns).
//
// With exactly one author: 005 when its domain is ours (or below ours) and
// not verified, or when a display name or comment names our domain while
// the address is elsewhere (display-name impersonation, issue 12 point 2,
// under every profile); then 002 the same way for a participating agency.
// Otherwise (no From:, several From: fields, several addresses, a From:
// that does not parse) the author is unverifiable: any candidate domain
// that is ours gets 005, a participating agency's 002 (issue 12 point 1;
// fail safe: never delivered as if nothing were named).
func (p *Policy) authorWarning(t Transaction, a message.AuthorResult) (code, why string) {
	if m, ok := a.Author(); ok {
		fd := m.Domain
		if p.ownsDomain(fd) && !verifiedSender(t, fd) {
			return WarningOwnAgency, fmt.Sprintf("From: is in our own domain %s but the message came from outside and is not verified (warning %s, R76)", fd, WarningOwnAgency)
		}
		for _, d := range a.Mentioned {
			if p.ownsDomain(d) && !p.ownsDomain(fd) {
				return WarningOwnAgency, fmt.Sprintf("From: display name or comment names our own domain %s but the address is <%s>: impersonation, not verified (warning %s, R76)", d, m.Address(), WarningOwnAgency)
			}
		}
		if p.participating(fd) && !verifiedSender(t, fd) {
			return WarningForgedAgency, fmt.Sprintf("From: is a participating agency (%s) but the message is not verified (warning %s, R76)", fd, WarningForgedAgency)
		}
		for _, d := range a.Mentioned {
			if p.participating(d) && !message.Aligned(fd, d) {
				return WarningForgedAgency, fmt.Sprintf("From: display name or comment names the participating agency %s but the address is <%s>: impersonation, not verified (warning %s, R76)", d, m.Address(), WarningForgedAgency)
			}
		}
		if code, why := p.lookalikeAuthor(t, fd, "From: domain"); code != "" {
			return code, why
		}
		// A lookalike of ours written in the display name or a comment
		// ("ceo@аgency.govt.nz" <x@evil.example>, a Cyrillic а) reads as
		// our address as much as our domain itself would.
		for _, d := range a.Mentioned {
			if d != fd {
				if code, why := p.lookalikeAuthor(t, d, "From: display name or comment names the domain"); code != "" {
					return code, why
				}
			}
		}
		return "", ""
	}
	for _, d := range a.Candidates {
		if p.ownsDomain(d) {
			return WarningOwnAgency, fmt.Sprintf("From: cannot be read for one author (%s) and names our own domain %s: not verified (warning %s, R76)", a.Problem, d, WarningOwnAgency)
		}
	}
	for _, d := range a.Candidates {
		if p.participating(d) {
			return WarningForgedAgency, fmt.Sprintf("From: cannot be read for one author (%s) and names the participating agency %s: not verified (warning %s, R76)", a.Problem, d, WarningForgedAgency)
		}
	}
	for _, d := range a.Candidates {
		if code, why := p.lookalikeAuthor(t, d, "From: cannot be read for one author ("+a.Problem+") and its domain"); code != "" {
			return code, why
		}
	}
	return "", ""
}

// onBehalfFields are the header fields that name who sent a message for
// its author: Outlook shows Sender: as "SENDER on behalf of FROM", and
// Resent-From: and Resent-Sender: are the PRA's first choices (RFC 4407
// section 2).
var onBehalfFields = []string{"Sender", "Resent-Sender", "Resent-From"}

// onBehalfWarning is 005 (002) for a message whose From: is elsewhere but
// whose Sender:, Resent-Sender: or Resent-From: names our own domain (a
// participating agency) without being verified: "ceo@agency.govt.nz on
// behalf of x@evil.example" in the reader's client is an impersonation of
// us as much as a From: would be (R76). Verified means what it means for
// From: (verifiedSender), a DMARC pass of a From: domain of the same
// organisation, or a Sender ID pass of that very field (the PRA check,
// RFC 4407), over TLS. A field that cannot be read for one
// address is judged by the domains it names (fail safe, issue 12 point 1).
func (p *Policy) onBehalfWarning(t Transaction) (code, why string) {
	for _, name := range onBehalfFields {
		values := HeaderValues(t.Headers, name)
		if len(values) == 0 {
			continue
		}
		a := message.Authors(values)
		domains := a.Candidates
		if m, ok := a.Author(); ok {
			domains = []string{m.Domain}
		}
		for _, d := range domains {
			if d == "" || (len(domains) == 1 && p.onBehalfVerified(t, name, d)) {
				continue
			}
			switch {
			case p.ownsDomain(d):
				return WarningOwnAgency, fmt.Sprintf("%s: names our own domain %s (shown as sending on behalf of the author) but the message came from outside and is not verified (warning %s, R76)", name, d, WarningOwnAgency)
			case p.participating(d):
				return WarningForgedAgency, fmt.Sprintf("%s: names the participating agency %s (shown as sending on behalf of the author) but the message is not verified (warning %s, R76)", name, d, WarningForgedAgency)
			}
		}
	}
	return "", ""
}

// onBehalfVerified: the domain d of header field name is verified (see
// onBehalfWarning).
func (p *Policy) onBehalfVerified(t Transaction, name, d string) bool {
	if verifiedSender(t, d) {
		return true
	}
	// A verified author of the same organisation: From: ceo@agency
	// verified, Sender: pa@mail.agency.
	if dm := t.Message.DMARC; dm != nil && dm.Result == ResultPass && t.Conn.TLS.Version != "" && message.Aligned(dm.FromDomain, d) {
		return true
	}
	r := t.Header.SenderIDPRA
	if r == nil || r.Result != ResultPass || t.Conn.TLS.Version == "" || !strings.EqualFold(r.Field, name) {
		return false
	}
	pd, ok := message.NormalizeDomain(senderDomain(r.Identity))
	return ok && pd == d
}

// lookalikeAuthor applies inbound.lookalike to the author domain d: a
// domain that looks like one of ours (005) or an exact secure-list entry
// (002) without being it, by outbound.lookalike's rules (issue 17), is
// impersonation whether or not it is verified (a lookalike registered by
// the sender passes its own SPF, DKIM and DMARC). A domain we hold a peer
// certificate for, or whose S/MIME signature verified with a certificate
// named for it, is a real agency and not a lookalike.
func (p *Policy) lookalikeAuthor(t Transaction, d, what string) (code, why string) {
	if p.Inbound.Lookalike == InboundLookalikeOff || d == "" || p.IsOurDomain(d) || p.participating(d) {
		return "", ""
	}
	if peer, ok := t.SMIMEOut.Peers[d]; ok && peer.HasCerts {
		return "", ""
	}
	// Verified means trusted: a signature that checks out under a
	// self-made certificate for the lookalike proves nothing.
	if in := t.SMIMEIn; in != nil && in.SignatureOK && in.SignerState == smime.StateValid && in.NamingOK && in.FromDomain == d {
		return "", ""
	}
	intended, rule, ok := p.lookalikeMatch(d)
	if !ok {
		return "", ""
	}
	code = WarningForgedAgency
	whose := "the participating agency"
	if p.ownsDomain(intended) {
		code, whose = WarningOwnAgency, "our own domain"
	}
	return code, fmt.Sprintf("%s %s looks like %s %s (%s): impersonation (warning %s, R76)", what, d, whose, intended, rule, code)
}

// chooseInboundWarning gives the one warning an inbound message gets
// (R79: processing stops at the first rule that warns), in the order:
// 005 (From: our own agency), 002 (From: a participating agency), 004
// (classified from a non-participating agency, M-IN). R76: an unverified
// message that carries X-NZ-Secure-email is always delivered with its
// warning; other unverified ones are warned or deleted per
// inbound.unverified.
func (p *Policy) chooseInboundWarning(v *Verdict, t Transaction, secureTag bool) {
	code, why := p.authorWarning(t, message.Authors(HeaderValues(t.Headers, "From")))
	if code == "" {
		code, why = p.onBehalfWarning(t)
	}
	if code != "" {
		v.WarningCode = code
		v.reason("%s", why)
	} else {
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
	if p.Inbound.Unverified == UnverifiedDelete && !secureTag && v.WarningCode != WarningInsecureSource {
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
		reason := fmt.Sprintf("The %s message may not be sent to these recipients under this agency's policy.", v.Classification)
		if len(v.misdirected) > 0 {
			reason += " Not sent (misdirected mail): " + strings.Join(v.misdirected, "; ") + "."
		}
		v.Notices = append(v.Notices, Notice{Kind: NoticeNDR, To: sender, Code: WarningSecureDeliveryFailure, Rcpts: v.RemoveRcpts,
			Reason: reason})
	}
	if !t.RSVPDR || !authenticated {
		return
	}
	switch v.Action {
	case Accept:
		// Held recipients (issue 14) are not delivered yet.
		v.Notices = append(v.Notices, Notice{Kind: NoticeReceipt, To: sender, Rcpts: without(t.Envelope.Rcpts, append(v.HeldRcpts(), v.RemoveRcpts...))})
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
	if p.Notify.PingAddress == PingOff {
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
	if !p.pinged(t) {
		return Verdict{}, false
	}
	ping := p.PingAddress()
	v := Verdict{Stage: StageEOM, Direction: p.Direction(t.Conn, t.Envelope), Action: Discard, Classification: Unclassified}
	// R98: the ping's own S/MIME decides the answer's form (policy/ping.go).
	if n := (Notice{Kind: NoticePing, To: t.Envelope.From}); p.pingAnswerForm(&v, &n, t) {
		v.Notices = append(v.Notices, n)
	}
	if others := without(t.Envelope.Rcpts, []string{ping}); len(others) > 0 {
		// Other recipients still get the message; only the ping copy is consumed.
		return v, false
	}
	if len(v.Notices) == 0 {
		v.reason("message to the ping address %s consumed, not answered (R96-R99)", ping)
		return v, true
	}
	v.reason("message to the ping address %s answered and consumed (R96-R99)", ping)
	return v, true
}
