package policy

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// The form of the ping answer (R98: "auto-respond with a signed/encrypted
// reply to a message that is signed (and/or encrypted) with a domain
// certificate issued by a Secure Email CA"). The pipeline has decrypted
// and verified the ping before the engine sees it (Transaction.SMIMEIn:
// that is the transport layer, not a business rule, so R97's "before any
// other Secure Email business rules" still holds); the answer reuses the
// one signed-and-encrypted notice path (R62, Notice.Transforms).
//
// Decisions (documented in README "Domain S/MIME"):
//   - signed, and the signature verifies with a certificate valid now
//     (chain to an accredited CA, dates, CRL, DCA naming: SMIMEInbound.
//     Verified) that names the answer's domain (the envelope sender's,
//     the same as or below a domain of the certificate, RFC 3183 section
//     4.1 name mapping): the answer is signed with our DCA identity and
//     encrypted to that domain's newest valid certificate in the peer
//     store (where the pipeline just learned it, R50). When that cannot
//     be done (no valid certificate of our own, 211/212) the answer is not
//     sent in clear: R98 and R62 ask for it signed; the reason is logged.
//   - encrypted to us, decrypted, not signed ("and/or encrypted"): signed
//     and encrypted when the peer store has a valid certificate of the
//     sender's domain; otherwise answered as an unsigned ping (the ping
//     names no certificate to encrypt to).
//   - signed but not verified (bad signature 003, a certificate that is
//     untrusted, revoked, expired, of unknown status, misnamed, or S/MIME
//     that is malformed or does not decrypt): not "a domain certificate
//     issued by a Secure Email CA" that R98 can rely on, and a bad
//     signature identifies no one, so its certificate is never encrypted
//     to. Answered as an unsigned ping, with the reason logged and stated
//     in the answer ("S/MIME of your ping: not verified: ...").
//   - unsigned: as before, in clear; the notice rule R62 (smimeNotices)
//     still signs and encrypts it to a domain in S/MIME scope, or drops it
//     when that domain has no valid certificate.

// pingKind is what the S/MIME of a ping asks of its answer.
type pingKind int

const (
	pingClear     pingKind = iota // answered as an unsigned ping
	pingSigned                    // verified domain signature: answer signed and encrypted (R98)
	pingEncrypted                 // encrypted to us, not signed: signed and encrypted when a certificate is known
)

// pinged reports whether t is addressed to the ping address.
func (p *Policy) pinged(t Transaction) bool {
	ping := p.PingAddress()
	if ping == "" || t.Envelope.From == "" {
		return false
	}
	for _, r := range t.Envelope.Rcpts {
		if strings.EqualFold(r, ping) {
			return true
		}
	}
	return false
}

// namedBy: d is one of ds or below one (RFC 3183 section 4.1: a DCA's
// domain is the same as, or an ascendant of, the domains it represents).
func namedBy(d string, ds []string) bool {
	for _, c := range ds {
		c = strings.ToLower(strings.TrimSuffix(c, "."))
		if c != "" && (d == c || strings.HasSuffix(d, "."+c)) {
			return true
		}
	}
	return false
}

// pingSMIME classifies the S/MIME of a ping (R98): the answer's domain d
// (the envelope sender's, normalised), what the answer needs, and what was
// found (for the log and the answer's text).
func (p *Policy) pingSMIME(t Transaction) (d string, k pingKind, why string) {
	d, _ = message.NormalizeDomain(senderDomain(t.Envelope.From))
	s := t.SMIMEIn
	switch {
	case p.SMIME.Mode != SMIMEOn:
		return d, pingClear, "not checked (smime.mode is off)"
	case s == nil:
		return d, pingClear, "not signed or encrypted"
	case s.Verified():
		if !namedBy(d, s.SignerDomains) {
			return d, pingClear, fmt.Sprintf("not verified: signed by %s, whose certificate does not name the answer's domain %q (RFC 3183 section 4.1)",
				firstNonEmpty(s.SignerAddress, short(s.SignerFingerprint)), d)
		}
		return d, pingSigned, fmt.Sprintf("verified: signed by %s (certificate %s, valid now)", firstNonEmpty(s.SignerAddress, strings.Join(s.SignerDomains, ", ")), short(s.SignerFingerprint))
	case s.Encrypted && s.Decrypted && !s.Signed && !s.Malformed:
		return d, pingEncrypted, "encrypted to our certificate, not signed"
	}
	code, w, _ := p.smimeInOutcome(s)
	if w == "" {
		w = "not signed with a domain certificate"
	}
	if code != "" {
		w += " (Table 1/3 state " + code + ")"
	}
	return d, pingClear, "not verified: " + w
}

// PingAnswerDomain is the domain whose certificate the answer to ping t
// is encrypted to (R98), "" when t is not a ping or its answer is not
// signed and encrypted because of its own S/MIME. The pipeline looks that
// domain's certificates up even when it is outside smime.encrypt_to.
func (p *Policy) PingAnswerDomain(t Transaction) string {
	if !p.pinged(t) {
		return ""
	}
	if d, k, _ := p.pingSMIME(t); k != pingClear {
		return d
	}
	return ""
}

// pingAnswerForm decides the form of the ping answer n (R98, see above):
// it sets n.Transforms for a signed and encrypted answer and n.Reason (the
// S/MIME of the ping, which the answer states); false when the answer
// must not be sent at all.
func (p *Policy) pingAnswerForm(v *Verdict, n *Notice, t Transaction) bool {
	if p.SMIME.Mode != SMIMEOn {
		return true
	}
	d, k, why := p.pingSMIME(t)
	n.Reason = clip(why, 300)
	if s := t.SMIMEIn; s != nil && s.Learned {
		// The ping is consumed before decideSMIMEIn, which would log this.
		v.reason("learned the ping signer's certificate %s for %s (R50, R83)", short(s.SignerFingerprint), strings.Join(s.SignerDomains, ", "))
	}
	if k == pingClear {
		if t.SMIMEIn != nil {
			v.reason("ping S/MIME %s: answered as an unsigned ping (R98 asks a signed answer only to a ping signed with a valid Secure Email CA domain certificate)", why)
		}
		return true
	}
	peer, ok := t.SMIMEOut.Peers[d]
	if !ok {
		peer = SMIMEPeer{Domain: d}
	}
	own := t.SMIMEOut.NoticeOwn
	if own.Domain == "" && len(p.Domains) > 0 {
		own.Domain = p.Domains[0]
	}
	code, cwhy := SMIMESendOutcome(peer, own)
	if !t.SMIMEOut.On && code == "" {
		code, cwhy = "201", "the certificates for "+d+" were not looked up"
	}
	if code == "" {
		n.Transforms = []Transform{{Kind: TransformSMIMESignEncrypt, Domain: d, Signer: own.Fingerprint, Cert: peer.Fingerprint, Cipher: peer.Cipher}}
		v.reason("ping S/MIME %s: the answer is signed with our certificate %s and encrypted to %s's certificate %s (R98)", why, short(own.Fingerprint), d, short(peer.Fingerprint))
		return true
	}
	if k == pingEncrypted {
		v.reason("ping %s, and its answer cannot be signed and encrypted: %s (%s): answered as an unsigned ping", why, cwhy, code)
		n.Reason = clip(why+"; no certificate to encrypt the answer to", 300)
		return true
	}
	v.reason("ping S/MIME %s, but its answer cannot be signed and encrypted: %s (Table 1, %s); not sent in clear (R98, R62)", why, cwhy, code)
	return false
}

// SMIMEInResult sums up the inbound S/MIME of a message for a record (the
// peers' ping answers of selftest --peers): verified (R76), else the Table
// 3 code of its state (003, 101-105, 111-115, ...; "" when S/MIME has
// nothing to say) and why. nil: not S/MIME.
func (p *Policy) SMIMEInResult(s *SMIMEInbound) (verified bool, code, why string) {
	if s == nil {
		return false, "", "not S/MIME"
	}
	code, why, _ = p.smimeInOutcome(s)
	if s.Verified() {
		if code == "" || code == WarningSignedOnly {
			// 008 (signed, not encrypted) does not make the signature
			// less verified.
			return true, code, fmt.Sprintf("signed by %s (%s), valid now", firstNonEmpty(s.SignerAddress, strings.Join(s.SignerDomains, ", ")), short(s.SignerFingerprint))
		}
		return false, code, why
	}
	if why == "" {
		why = "not signed with a domain certificate"
	}
	return false, code, why
}
