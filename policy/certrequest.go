package policy

import "strings"

// Certificate requests by mail (R44, R51; issue 15 point 2), the engine's
// part: which notices to send and which messages to consume. The engine
// stays pure: the pipeline reads and validates the certificates of an
// answer (CertAnswerFacts) and the notifier builds, signs and sends the
// messages (milter/certmail.go).
//
//   - Sending: a recipient held with 201 (no valid certificate for a peer
//     domain in S/MIME scope; LDAP discovery, when configured, already
//     found none: SMIMEEnv.Peer asks it first) lists NoticeCertRequest to
//     domain-certificate-request@PEER, Subject the peer's DCA address,
//     from the DCA address of the sender's domain, signed by our newest
//     valid DCA identity (the notifier, rate limited per peer domain).
//   - Answers come back to that DCA address: a message to
//     domain-confidentiality-authority@OURDOMAIN carrying certificates is
//     consumed once the pipeline has judged them (valid ones stored, or
//     pending under smime.discovery_mode = "approve") and the held mail
//     for the domain retried at once.
//   - Requests to domain-certificate-request@OURDOMAIN are consumed and,
//     when the Subject is the DCA address of one of our domains, answered
//     (NoticeCertAnswer) with our DCA certificates, signed.

// Notice kinds of certificate requests by mail.
const (
	// NoticeCertRequest: a signed certificate request (R44) to To, for
	// the peer domain Domain, from our domain From.
	NoticeCertRequest NoticeKind = "cert-request"
	// NoticeCertAnswer: our DCA certificates for the domain of From, in
	// answer to a request (R44 converse), to To.
	NoticeCertAnswer NoticeKind = "cert-answer"
)

// CertAnswerFacts is what the pipeline found in a message to our DCA
// address (an answer to our certificate request): nil when the message is
// not to that address or carries no certificate attachment.
type CertAnswerFacts struct {
	// Domain is the peer domain the certificates were judged for (the
	// From: author's domain).
	Domain string `json:"domain"`
	// Certs counts the certificates read; Stored, Pending and Known are
	// fingerprints of the valid ones by what became of them; Rejected
	// says why each other one was not used.
	Certs    int      `json:"certs"`
	Stored   []string `json:"stored,omitempty"`
	Pending  []string `json:"pending,omitempty"`
	Known    []string `json:"known,omitempty"`
	Rejected []string `json:"rejected,omitempty"`
	// Problems are parts that could not be read.
	Problems []string `json:"problems,omitempty"`
	// Signed: the answer's domain signature verified (the inbound S/MIME
	// layer); recorded only: the certificates are judged on their chain.
	Signed bool `json:"signed,omitempty"`
}

// RequestByMail reports whether certificate requests by mail are on:
// smime.mode on and smime.request_by_mail.
func (p *Policy) RequestByMail() bool {
	return p.SMIME.Mode == SMIMEOn && p.SMIME.RequestByMail
}

// CertRequestLocal and DCALocal are the local parts of the two addresses
// (R44; RFC 3183 section 4.1).
const (
	CertRequestLocal = "domain-certificate-request"
	DCALocal         = "domain-confidentiality-authority"
)

// ourSpecial returns the domain of addr when its local part is local and
// the domain one of ours.
func (p *Policy) ourSpecial(addr, local string) (string, bool) {
	l, d := SplitAddress(addr)
	if !strings.EqualFold(l, local) || !p.IsOurDomain(d) {
		return "", false
	}
	return d, true
}

// IsCertAnswerAddress: addr is the DCA address of one of our domains,
// where answers to our requests come (the pipeline reads the certificates
// of mail to it).
func (p *Policy) IsCertAnswerAddress(addr string) bool {
	_, ok := p.ourSpecial(addr, DCALocal)
	return ok && p.RequestByMail()
}

// certRequestNotice lists the request for a copy held with 201 (Table 1:
// no valid certificate for the peer; LDAP, when configured, found none).
// 202 (status unknown: the certificate is there, the CRL is not), 211 and
// 212 (our own certificate) are not helped by the peer's certificate.
func (p *Policy) certRequestNotice(v *Verdict, t Transaction, c Copy) {
	if !p.RequestByMail() || c.Code != "201" || c.Domain == "" {
		return
	}
	own := t.SMIMEOut.Own.Domain
	if own == "" || t.SMIMEOut.Own.Fingerprint == "" {
		return // nothing to sign the request with (R44: a signed request)
	}
	v.Notices = append(v.Notices, Notice{Kind: NoticeCertRequest, To: CertRequestLocal + "@" + c.Domain, From: own,
		Reason: DCALocal + "@" + c.Domain, Rcpts: c.Rcpts})
	v.reason("certificate request by mail to %s@%s for %s@%s (R44, R51; rate limited per domain)", CertRequestLocal, c.Domain, DCALocal, c.Domain)
}

// atCertMail consumes certificate requests and answers (before the other
// rules, as the ping address is: a request or an answer is not mail for a
// person). consumed is true when no recipient is left.
func (p *Policy) atCertMail(t Transaction) (Verdict, bool) {
	if !p.RequestByMail() {
		return Verdict{}, false
	}
	v := Verdict{Stage: StageEOM, Direction: p.Direction(t.Conn, t.Envelope), Action: Discard, Classification: Unclassified}
	var taken []string
	for _, r := range t.Envelope.Rcpts {
		if d, ok := p.ourSpecial(r, CertRequestLocal); ok {
			taken = append(taken, r)
			p.answerRequest(&v, t, d)
			continue
		}
		if p.IsCertAnswerAddress(r) && t.CertAnswer != nil {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return Verdict{}, false
	}
	if a := t.CertAnswer; a != nil {
		v.reason("certificate answer from %s consumed (R44, R51): %d certificate(s); stored %v, pending approval %v, already known %v, not used %v, unreadable parts %v",
			a.Domain, a.Certs, a.Stored, a.Pending, a.Known, a.Rejected, a.Problems)
	}
	if others := without(t.Envelope.Rcpts, taken); len(others) > 0 {
		// Only the request or answer copy is consumed; the others go on.
		v.RemoveRcpts = taken
		return v, false
	}
	return v, true
}

// answerRequest lists the answer to a request to our request address
// (R44 converse). A request is answered whether or not it is signed: our
// DCA certificate is public (it is in every message we sign), so the
// answer tells no one anything new; the loop rules and a rate limit per
// requesting domain (the notifier) keep it from being a reflector.
func (p *Policy) answerRequest(v *Verdict, t Transaction, ourDomain string) {
	subject := ""
	if s := HeaderValues(t.Headers, "Subject"); len(s) > 0 {
		subject = strings.TrimSpace(s[0])
	}
	target, ok := p.ourSpecial(subject, DCALocal)
	if !ok || BareAddress(subject) == "" || !strings.EqualFold(strings.Trim(subject, "<> \t"), BareAddress(subject)) {
		v.reason("certificate request to %s@%s consumed, not answered: its Subject %q is not the DCA address of one of our domains (R44)", CertRequestLocal, ourDomain, clip(subject, 100))
		return
	}
	// R93-R95: never to the null sender, postmaster or MAILER-DAEMON, a
	// report, or the sending agency's postmaster. Auto-Submitted is not
	// read here: another gateway may mark its request auto-generated, and
	// the answer (auto-replied) is consumed, never answered, at the other
	// end.
	var hs []Header
	for _, h := range t.Headers {
		if !strings.EqualFold(strings.TrimSpace(h.Name), "Auto-Submitted") {
			hs = append(hs, h)
		}
	}
	froms := HeaderValues(t.Headers, "From")
	if len(froms) == 0 {
		froms = []string{""}
	}
	for _, from := range froms {
		if ok, why := ShouldNotify(from, t.Envelope.From, NotifyContext{To: t.Envelope.From, Inbound: true, Headers: hs}); !ok {
			v.reason("certificate request for %s consumed, not answered: %s", subject, why)
			return
		}
	}
	v.Notices = append(v.Notices, Notice{Kind: NoticeCertAnswer, To: BareAddress(t.Envelope.From), From: target,
		Reason: DCALocal + "@" + target})
	v.reason("certificate request for %s@%s from <%s> answered with our DCA certificate(s) (R44; rate limited per domain)", DCALocal, target, BareAddress(t.Envelope.From))
}
