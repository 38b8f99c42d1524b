package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// TimesHeader records when the gateway received a message (R100).
const TimesHeader = "X-NZ-Secure-Gateway"

// SecureEmailHeader is the tag of compliant mail (R60).
const SecureEmailHeader = "X-NZ-Secure-email"

// Unclassified is the classification of a message without trigger words.
const Unclassified = "UNCLASSIFIED"

// Direction decides which way a transaction travels: outbound when the
// client authenticated (SASL), connects from an internal network, or came in
// through a submission daemon (DESIGN.md, "One SMTP transaction"); otherwise
// inbound.
func (p *Policy) Direction(c Conn, e Envelope) Direction {
	if e.AuthUser != "" || (c.ClientIP.IsValid() && p.IsInternal(c.ClientIP)) {
		return Outbound
	}
	for _, d := range p.OutboundDaemons {
		if c.Daemon != "" && c.Daemon == d {
			return Outbound
		}
	}
	return Inbound
}

// AtMailFrom gives the verdict at MAIL FROM: the refusals that need no
// headers, given the checks Wants asked for. Action is Continue when the
// transaction may go on.
func (p *Policy) AtMailFrom(c Conn, e Envelope, mc MailChecks) Verdict {
	v := Verdict{Stage: StageMail, Direction: p.Direction(c, e), Action: Continue, Checks: checkList(mc, HeaderChecks{})}
	if v.Direction != Inbound {
		return v
	}
	if p.checkInboundTLS(&v, c.TLS); v.Final() {
		return v
	}
	if p.msecApplies(e) {
		// M-SEC / M-RCV-SM: SPF and Sender ID records exist, end in -all,
		// pass; TLS meets the minimum cryptography.
		for _, step := range []func(){
			func() { checkMSEC(&v, "SPF record", mc.spf()) },
			func() { checkMSEC(&v, "Sender ID record", mc.SenderIDMF) },
			func() { p.checkMSECTLS(&v, c.TLS) },
		} {
			if step(); v.Final() {
				return v
			}
		}
	}
	p.checkSPF(&v, mc.spf())
	return v
}

// AtHeaders gives the verdict at end of headers: Sender ID on the PRA
// (M-RCV-SID), and for M-SEC its PRA record too.
func (p *Policy) AtHeaders(t Transaction, hc HeaderChecks) Verdict {
	v := Verdict{Stage: StageHeaders, Direction: p.Direction(t.Conn, t.Envelope), Action: Continue, Checks: checkList(t.Mail, hc)}
	if v.Direction != Inbound {
		return v
	}
	if p.msecApplies(t.Envelope) {
		if checkMSEC(&v, "Sender ID (PRA) record", hc.SenderIDPRA); v.Final() {
			return v
		}
	}
	p.checkSenderID(&v, hc.SenderIDPRA)
	return v
}

// checkInboundTLS: M-RCV-TLS / G-TLS. Under sge "Implicit TLS must be
// configured and enforced for all connections" with TLS 1.2 the minimum;
// plaintext and older versions are refused with X.7.10 "Encryption Needed"
// (RFC 5248), saying why.
func (p *Policy) checkInboundTLS(v *Verdict, t TLSInfo) {
	need := minTLSRank[p.Inbound.MinTLS]
	if need == 0 {
		return
	}
	if t.Version == "" {
		v.refuse(530, "5.7.10", fmt.Sprintf(
			"Must issue a STARTTLS command first: this gateway accepts mail only over TLS %s or later (NZ %s policy, G-TLS)",
			p.Inbound.MinTLS, strings.ToUpper(p.Profile)))
		return
	}
	if got := tlsRank(t.Version); got < need {
		v.refuse(550, "5.7.10", fmt.Sprintf(
			"%s is below the minimum TLS %s this gateway accepts (NZ %s policy, G-TLS)",
			t.Version, p.Inbound.MinTLS, strings.ToUpper(p.Profile)))
		return
	}
	if why := unprotectedCipher(t); why != "" {
		// Fail safe: a TLS session that does not encrypt, or barely,
		// is plaintext on the wire whatever its version says.
		v.refuse(550, "5.7.10", fmt.Sprintf(
			"%s with cipher %s %s: this gateway accepts mail only over encrypting TLS (NZ %s policy, G-TLS)",
			t.Version, t.Cipher, why, strings.ToUpper(p.Profile)))
	}
}

// unprotectedCipher says why a negotiated cipher protects nothing worth
// the name, "" when it does or is not known: no encryption (NULL suites),
// export strength, RC4 (RFC 7465 forbids it in TLS), or fewer than 112
// bits as the MTA reports them ({cipher_bits}; 0 means not reported).
func unprotectedCipher(t TLSInfo) string {
	c := strings.ToUpper(t.Cipher)
	switch {
	case strings.Contains(c, "NULL"):
		return "encrypts nothing"
	case strings.HasPrefix(c, "EXP") || strings.Contains(c, "EXPORT"):
		return "is an export cipher"
	case strings.Contains(c, "RC4"):
		return "is RC4 (RFC 7465)"
	case t.CipherBits > 0 && t.CipherBits < 112:
		return fmt.Sprintf("has %d bits", t.CipherBits)
	}
	return ""
}

// tlsRank orders Postfix's {tls_version} values; a later "TLSv1.N" than we
// know ranks above the ones we do, anything unrecognised ranks lowest.
func tlsRank(version string) int {
	if r, ok := tlsVersionRank[version]; ok {
		return r
	}
	if rest, ok := strings.CutPrefix(version, "TLSv1."); ok {
		if n, err := strconv.Atoi(rest); err == nil && n > 3 {
			return tlsVersionRank["TLSv1.3"] + n - 3
		}
	}
	return 0
}

// AtEndOfMessage gives the final verdict for a whole message whose MAIL FROM
// stage was not refused, with the notices it causes (R73-R74).
func (p *Policy) AtEndOfMessage(t Transaction) Verdict {
	v := p.atEndOfMessage(t)
	p.adminHoldToStore(&v, t) // R62: not released unsigned from the MTA's queue
	p.smimeOutbound(&v, t)
	p.receipts(&v, t)
	p.finish(&v, t)
	return v
}

func (p *Policy) atEndOfMessage(t Transaction) Verdict {
	v := Verdict{
		Stage:          StageEOM,
		Direction:      p.Direction(t.Conn, t.Envelope),
		Action:         Accept,
		Classification: t.Classification,
		Unreadable:     t.Unreadable,
	}
	if v.Classification == "" {
		v.Classification = Unclassified
	}
	// M-RCV-SPF deferred from MAIL FROM: before anything else, the ping
	// answer included (a forged sender must not get it, R96).
	if v.Direction == Inbound {
		if p.checkDeferredSPF(&v, t); v.Action == Reject || v.Action == Tempfail {
			v.Checks, v.Message = checkList(t.Mail, t.Header), t.Message // the DKIM and DMARC results that did not save it
			return v
		}
	}
	if pv, consumed := p.atPing(t); consumed {
		return pv
	} else if p.pinged(t) {
		// The ping copy is consumed (answered or not, R98), the other
		// recipients are processed.
		v.Notices = append(v.Notices, pv.Notices...)
		v.Reasons = append(v.Reasons, pv.Reasons...)
		v.RemoveRcpts = append(v.RemoveRcpts, p.PingAddress())
	}
	// R44: certificate requests and answers are consumed (certrequest.go).
	if cv, consumed := p.atCertMail(t); consumed {
		return cv
	} else if len(cv.RemoveRcpts) > 0 {
		v.Notices = append(v.Notices, cv.Notices...)
		v.Reasons = append(v.Reasons, cv.Reasons...)
		v.RemoveRcpts = append(v.RemoveRcpts, cv.RemoveRcpts...)
	}
	v.Message = t.Message
	secureTag := len(HeaderValues(t.Headers, SecureEmailHeader)) > 0
	stripOurHeaders(&v, t.Headers)
	p.stripForgedAuthResults(&v, t.Headers)
	if v.Direction == Inbound {
		if p.checkDMARC(&v, t.Message.DMARC, t.Conn.MTA, t.Envelope.QueueID, t.Envelope.From); v.Action == Reject || v.Action == Tempfail {
			return v
		}
		if !p.decideSMIMEIn(&v, t) {
			p.chooseInboundWarning(&v, t, secureTag)
			p.keepSMIMEInDelivered(&v, t)
		}
		if len(t.Unreadable) > 0 {
			// Inbound, unreadable content is recorded only (issue 11).
			v.reason("content could not be read in full (recorded only inbound): %s", clip(strings.Join(t.Unreadable, "; "), 500))
		}
		if ar := p.authResults(t); ar != "" {
			v.addHeader(AuthResultsHeader, ar)
		}
	}
	v.Checks = checkList(t.Mail, t.Header)
	if p.RecordTimes && !t.Received.IsZero() {
		// R100: "record in the header when the gateway received and sent the
		// message". The time it leaves is Postfix's (its Received: line at the
		// next hop); the milter records the time it received it.
		v.addHeader(TimesHeader, fmt.Sprintf("received=%s; gateway=%s", t.Received.UTC().Format(time.RFC1123Z), p.AuthservID))
	}
	if v.Direction == Outbound {
		if p.checkOutboundFrom(&v, t); v.Action != Accept {
			return v
		}
		if p.routeOutbound(&v, t); v.Action != Accept {
			return v
		}
		if p.decideLookalike(&v, t); v.Action != Accept {
			return v
		}
		if p.decideUnreadable(&v, t); v.Action != Accept {
			return v
		}
		if p.decideFirstContact(&v, t); v.Action != Accept {
			return v
		}
		if len(t.Unreadable) > 0 {
			// Fail safe (issue 11): what was not read cannot be vouched for.
			v.reason("not tagged %s: the content could not be read in full", SecureEmailHeader)
		} else if p.Outbound.TagSecureEmail {
			v.addHeader(SecureEmailHeader, p.secureTagValue(v.Classification))
			v.reason("tagged compliant outbound mail with %s (R60)", SecureEmailHeader)
		}
		if p.Outbound.SEEMailVersion != "" {
			v.addHeader("X-SEEMail-Version", p.Outbound.SEEMailVersion)
		}
	}
	return v
}

// WarningInsecureSource is Table 3's code 004: "A message containing a
// trigger word has arrived from a non-Participating Agency."
const WarningInsecureSource = "004"

// flagInsecureClassified: M-IN, "If classified, and received via a non
// SecureMail server, the message will be flagged as from an insecure
// source" (SecMx 2007, Overview), with Table 3's warning 004.
func (p *Policy) flagInsecureClassified(v *Verdict, t Transaction) {
	if rank, known := p.Classification.Rank(v.Classification); known && rank == 0 {
		return
	}
	if ok, why := p.secureSource(t); !ok {
		v.WarningCode = WarningInsecureSource
		v.reason("classified (%s) inbound mail from a source that is not secure: %s (M-IN, warning %s)", v.Classification, why, WarningInsecureSource)
	}
}

// secureSource reports whether inbound mail came from a secure gateway: the
// MAIL FROM domain is on a secure list and the session used TLS at the
// inbound minimum (at least TLS 1.2 when the profile allows plaintext).
func (p *Policy) secureSource(t Transaction) (bool, string) {
	_, domain, _ := strings.Cut(t.Envelope.From, "@")
	o := &p.Outbound
	if domain == "" || !(o.SecureDomains.Match(domain) || o.SEEMailDomains.Match(domain) || o.SecureMailDomains.Match(domain)) {
		return false, fmt.Sprintf("sender domain %q is not on a secure-domain list", domain)
	}
	need := max(minTLSRank[p.Inbound.MinTLS], minTLSRank["1.2"])
	if tlsRank(t.Conn.TLS.Version) < need || t.Conn.TLS.Version == "" {
		return false, "the session did not use TLS 1.2 or later"
	}
	return true, ""
}

// secureTagValue is the value of X-NZ-Secure-email (format in README.md):
//
//	compliant; classification="IN-CONFIDENCE"; profile=sge; gateway=mx.agency.govt.nz
func (p *Policy) secureTagValue(classification string) string {
	return fmt.Sprintf("compliant; classification=%q; profile=%s; gateway=%s", classification, p.Profile, p.AuthservID)
}

// checkOutboundFrom enforces R65 (a From: exists and is not blank) and R66
// (the From: address matches the authenticated sender and is one of our
// domains), reading From: with the one author parser (message.Authors).
// R66 covers every header that names who sends (issue 12 point 7):
// Sender:, Resent-From: and Resent-Sender: naming anyone but the
// authenticated user, or outside our domains, are refused like a
// mismatched From:. No policy key turns these off: "The Sender must NOT be
// able to disable this feature" (R66).
func (p *Policy) checkOutboundFrom(v *Verdict, t Transaction) {
	froms := HeaderValues(t.Headers, "From")
	a := message.Authors(froms)
	switch a.Status {
	case message.StatusAbsent:
		if len(froms) == 0 {
			v.refuse(550, "5.7.1", "Message refused: it has no From: header (R65)")
		} else {
			v.refuse(550, "5.7.1", "Message refused: its From: header is blank (R65)")
		}
		return
	case message.StatusRepeated:
		v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: it has %d From: headers; exactly one is required (R65)", len(froms)))
		return
	case message.StatusUnparseable:
		v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: its From: header %q is not a valid address (R65): %s", clip(unfold(froms[0]), 100), a.Problem))
		return
	case message.StatusMultiple:
		v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: its From: header has %d addresses; outbound mail must carry exactly one (R66)", len(a.Authors)))
		return
	}
	if len(p.Domains) == 0 {
		v.refuse(550, "5.7.1", "Message refused: this gateway has no domains configured (policy key domains), so no outbound From: can be checked (R66)")
		return
	}
	author, _ := a.Author()
	if why := p.identityMismatch("From", author, t.Envelope.AuthUser); why != "" {
		v.refuse(550, "5.7.1", why)
		return
	}
	for _, name := range []string{"Sender", "Resent-From", "Resent-Sender"} {
		for _, val := range HeaderValues(t.Headers, name) {
			r := message.Mailboxes(val)
			switch r.Status {
			case message.StatusAbsent:
				v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: its %s: header names no address (R66)", name))
				return
			case message.StatusUnparseable:
				v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: its %s: header %q is not a valid address (R66): %s", name, clip(unfold(val), 100), r.Problem))
				return
			}
			for _, m := range r.Authors {
				if why := p.identityMismatch(name, m, t.Envelope.AuthUser); why != "" {
					v.refuse(550, "5.7.1", why)
					return
				}
			}
		}
	}
	v.reason("From: <%s> matches the sender and our domains (R65, R66)", strings.ToLower(author.Address()))
}

// identityMismatch says why the address in header name may not be used by
// the authenticated user (R66), "" when it may: it must be in one of our
// domains and, when the client authenticated, be the user (the whole
// address, or the local part for a user name without a domain).
func (p *Policy) identityMismatch(name string, m message.Mailbox, authUser string) string {
	addr := strings.ToLower(m.Address())
	if !p.IsOurDomain(m.Domain) {
		return fmt.Sprintf("Message refused: %s: address <%s> is not in one of this agency's domains (R66)", name, addr)
	}
	if user := strings.ToLower(authUser); user != "" {
		match := addr == user
		if !strings.Contains(user, "@") {
			match = strings.ToLower(m.Local) == user
		}
		if !match {
			return fmt.Sprintf("Message refused: %s: address <%s> does not match the authenticated sender %q (R66)", name, addr, authUser)
		}
	}
	return ""
}

// clip is message.Clip (no character cut, valid UTF-8 in replies and logs).
func clip(s string, n int) string { return message.Clip(s, n) }
