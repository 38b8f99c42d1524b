package policy

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Signed ping (R96-R99, policy/ping.go).

// pingTx is a ping from ping@agency-b.govt.nz to our ping address with
// the S/MIME facts s, agency-b's certificate valid in the peer store.
func pingTx(s *SMIMEInbound, rcpts ...string) Transaction {
	if len(rcpts) == 0 {
		rcpts = []string{"ping@agency.govt.nz"}
	}
	return Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13},
		Envelope: Envelope{From: "ping@agency-b.govt.nz", Rcpts: rcpts},
		Headers:  hdrs("From", "ping@agency-b.govt.nz", "Subject", "ping"),
		Mail:     MailChecks{SPF: &AuthCheck{Result: ResultPass}},
		SMIMEIn:  s,
		SMIMEOut: SMIMEOutbound{On: true, NoticeOwn: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}}
}

// pingNotice is the one ping answer of v (fails the test when there is
// not exactly one notice, or it is not a ping answer).
func pingNotice(t *testing.T, v Verdict) Notice {
	t.Helper()
	if len(v.Notices) != 1 || v.Notices[0].Kind != NoticePing {
		t.Fatalf("notices %+v, want one ping answer; reasons %q", v.Notices, v.Reasons)
	}
	return v.Notices[0]
}

func hasReason(v Verdict, subs ...string) bool {
	for _, r := range v.Reasons {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(r, s)
		}
		if all {
			return true
		}
	}
	return false
}

// R98: a ping signed with a valid Secure Email CA domain certificate (and
// encrypted to us) is answered with the smime-sign-encrypt transform: our
// notice identity signs, the pinging domain's certificate is encrypted to;
// the ping itself is consumed and no other rule runs (R97).
func TestPingSignedAnsweredSignedEncrypted(t *testing.T) {
	p := smimePolicy(t)
	in := verifiedIn()
	v := p.AtEndOfMessage(pingTx(in))
	n := pingNotice(t, v)
	if v.Action != Discard || v.WarningCode != "" || addedHeader(v, SecureEmailHeader) != "" {
		t.Errorf("ping: %s warning %q, tag %q: other rules ran (R97)", v.Action, v.WarningCode, addedHeader(v, SecureEmailHeader))
	}
	if len(n.Transforms) != 1 {
		t.Fatalf("answer transforms %+v, want smime-sign-encrypt; reasons %q", n.Transforms, v.Reasons)
	}
	if tr := n.Transforms[0]; tr.Kind != TransformSMIMESignEncrypt || tr.Domain != "agency-b.govt.nz" || tr.Signer != fpOwn || tr.Cert != fpPeer || tr.Cipher != "aes256-cbc" {
		t.Errorf("answer transform %+v", tr)
	}
	if n.To != "ping@agency-b.govt.nz" || !strings.HasPrefix(n.Reason, "verified: signed by domain-confidentiality-authority@agency-b.govt.nz") {
		t.Errorf("answer to %q, reason %q", n.To, n.Reason)
	}
	if !hasReason(v, "R98", "signed with our certificate") {
		t.Errorf("no R98 reason: %q", v.Reasons)
	}
	// Signed only (not encrypted): "signed (and/or encrypted)" still asks
	// for a signed and encrypted answer, and no 008 warning is given.
	so := verifiedIn()
	so.Encrypted, so.Decrypted, so.Layers = false, false, []string{"signed-opaque"}
	if n := pingNotice(t, p.AtEndOfMessage(pingTx(so))); len(n.Transforms) != 1 {
		t.Errorf("signed-only ping: answer transforms %+v", n.Transforms)
	}
	// Outside smime.encrypt_to the answer is still signed and encrypted:
	// R98 is about the ping, not the scope of ordinary mail.
	p2 := smimePolicy(t, `smime.encrypt_to=["agency-c.govt.nz"]`)
	tx := pingTx(in)
	if d := p2.PingAnswerDomain(tx); d != "agency-b.govt.nz" {
		t.Errorf("PingAnswerDomain %q, want agency-b.govt.nz", d)
	}
	if n := pingNotice(t, p2.AtEndOfMessage(tx)); len(n.Transforms) != 1 || n.Transforms[0].Cert != fpPeer {
		t.Errorf("outside encrypt_to: answer transforms %+v", n.Transforms)
	}
	// smime.mode off: answered in clear, nothing said about S/MIME.
	off := mustPolicy(t)
	if n := pingNotice(t, off.AtEndOfMessage(pingTx(in))); len(n.Transforms) != 0 || n.Reason != "" {
		t.Errorf("smime.mode off: %+v", n)
	}
	if d := off.PingAnswerDomain(tx); d != "" {
		t.Errorf("smime.mode off: PingAnswerDomain %q", d)
	}
}

// An unsigned ping is answered in clear; to a domain in S/MIME scope the
// notice rule R62 still signs and encrypts it (smimeNotices), as before.
func TestPingUnsignedClear(t *testing.T) {
	p := smimePolicy(t)
	tx := pingTx(nil)
	tx.Envelope.From, tx.Headers = "someone@gmail.example", hdrs("From", "someone@gmail.example", "Subject", "ping")
	v := p.AtEndOfMessage(tx)
	n := pingNotice(t, v)
	if len(n.Transforms) != 0 || n.Reason != "not signed or encrypted" || v.Action != Discard {
		t.Errorf("unsigned ping: %s %+v", v.Action, n)
	}
	if d := p.PingAnswerDomain(tx); d != "" {
		t.Errorf("PingAnswerDomain %q for an unsigned ping", d)
	}
	// From a SEEMail agency: R62 (all mail to another agency signed and
	// encrypted) applies to the answer like to any notice.
	if n := pingNotice(t, p.AtEndOfMessage(pingTx(nil))); len(n.Transforms) != 1 || n.Transforms[0].Domain != "agency-b.govt.nz" {
		t.Errorf("unsigned ping from a SEEMail agency: %+v", n)
	}
}

// A ping whose S/MIME does not verify (bad signature, revoked or untrusted
// certificate, malformed, not for us, signer not naming the sender's
// domain) is answered as an unsigned ping: in clear outside S/MIME scope,
// never encrypted to the certificate it carried; the reason is logged and
// stated in the answer.
func TestPingUnverifiedAnsweredAsUnsigned(t *testing.T) {
	p := smimePolicy(t)
	cases := []struct {
		name string
		edit func(*SMIMEInbound)
		want string // in the answer's Reason
	}{
		{"bad signature", func(s *SMIMEInbound) { s.SignatureOK, s.SignatureError = false, "message digest mismatch" }, "003"},
		{"revoked", func(s *SMIMEInbound) { s.SignerState, s.SignerReason = smime.StateRevoked, "listed in the CRL" }, "101"},
		{"untrusted", func(s *SMIMEInbound) { s.SignerState, s.SignerReason = smime.StateUntrusted, "unknown authority" }, "102"},
		{"malformed", func(s *SMIMEInbound) { s.Malformed, s.Problem = true, "truncated DER" }, "003"},
		{"not for us", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, NotForUs: true, DecryptError: "no recipient info for us"}
		}, "112"},
		{"misnamed", func(s *SMIMEInbound) { s.SignerDomains = []string{"agency-z.govt.nz"} }, "does not name the answer's domain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := verifiedIn()
			s.FromDomain = "stranger.example"
			c.edit(s)
			tx := pingTx(s)
			// Out of S/MIME scope (not on the SEEMail list, no certificate).
			tx.Envelope.From, tx.Headers = "ping@stranger.example", hdrs("From", "ping@stranger.example", "Subject", "ping")
			tx.SMIMEOut.Peers = nil
			v := p.AtEndOfMessage(tx)
			n := pingNotice(t, v)
			if len(n.Transforms) != 0 {
				t.Errorf("answer encrypted to the certificate of an unverified ping: %+v", n.Transforms)
			}
			if !strings.HasPrefix(n.Reason, "not verified: ") || !strings.Contains(n.Reason, c.want) {
				t.Errorf("answer reason %q, want not verified ... %s", n.Reason, c.want)
			}
			if !hasReason(v, "answered as an unsigned ping") {
				t.Errorf("no reason logged: %q", v.Reasons)
			}
			if v.Action != Discard || v.WarningCode != "" {
				t.Errorf("ping: %s warning %q", v.Action, v.WarningCode)
			}
			if d := p.PingAnswerDomain(tx); d != "" {
				t.Errorf("PingAnswerDomain %q", d)
			}
		})
	}
}

// A verified ping whose answer cannot be signed (no valid certificate of
// our own, 211) is not answered in clear; the ping is still consumed, also
// when it had other recipients.
func TestPingSignedCannotAnswer(t *testing.T) {
	p := smimePolicy(t)
	tx := pingTx(verifiedIn())
	tx.SMIMEOut.NoticeOwn = SMIMEOwn{Domain: "agency.govt.nz", Problem: "expired"}
	v := p.AtEndOfMessage(tx)
	if len(v.Notices) != 0 || v.Action != Discard {
		t.Fatalf("%s %+v, want consumed and not answered", v.Action, v.Notices)
	}
	if !hasReason(v, "not sent in clear", "211") || !hasReason(v, "consumed, not answered") {
		t.Errorf("reasons %q", v.Reasons)
	}
	tx.Envelope.Rcpts = []string{"ping@agency.govt.nz", "bob@agency.govt.nz"}
	v = p.AtEndOfMessage(tx)
	if len(v.RemoveRcpts) != 1 || v.RemoveRcpts[0] != "ping@agency.govt.nz" || len(v.Notices) != 0 {
		t.Errorf("among others: removed %q, notices %+v", v.RemoveRcpts, v.Notices)
	}
	if !hasReason(v, "not sent in clear") {
		t.Errorf("among others: the ping's reasons are lost: %q", v.Reasons)
	}
	// Signed ping among other recipients: the answer is signed and
	// encrypted, the ping copy removed, the others delivered.
	tx = pingTx(verifiedIn(), "ping@agency.govt.nz", "bob@agency.govt.nz")
	v = p.AtEndOfMessage(tx)
	var ping *Notice
	for i := range v.Notices {
		if v.Notices[i].Kind == NoticePing {
			ping = &v.Notices[i]
		}
	}
	if ping == nil || len(ping.Transforms) != 1 || v.Action == Discard || len(v.RemoveRcpts) != 1 {
		t.Errorf("signed ping among others: %s removed %q notices %+v", v.Action, v.RemoveRcpts, v.Notices)
	}
}

// "and/or encrypted": a ping encrypted to us but unsigned is answered
// signed and encrypted when the sender's domain has a valid certificate;
// without one, as an unsigned ping (in clear outside scope).
func TestPingEncryptedOnly(t *testing.T) {
	p := smimePolicy(t)
	enc := &SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, Decrypted: true, OwnFingerprint: "aa", OwnDomain: "agency.govt.nz", OwnState: smime.StateValid, Unwrapped: true}
	if n := pingNotice(t, p.AtEndOfMessage(pingTx(enc))); len(n.Transforms) != 1 || n.Transforms[0].Cert != fpPeer {
		t.Errorf("encrypted-only ping with a known certificate: %+v", n)
	}
	tx := pingTx(enc)
	tx.Envelope.From, tx.Headers = "ping@stranger.example", hdrs("From", "ping@stranger.example", "Subject", "ping")
	v := p.AtEndOfMessage(tx)
	if n := pingNotice(t, v); len(n.Transforms) != 0 || !strings.Contains(n.Reason, "no certificate to encrypt the answer to") {
		t.Errorf("encrypted-only ping, no certificate: %+v", n)
	}
}

// SMIMEInResult: what selftest --peers records of a peer's answer.
func TestSMIMEInResult(t *testing.T) {
	p := smimePolicy(t)
	if ok, code, why := p.SMIMEInResult(verifiedIn()); !ok || code != "" || !strings.Contains(why, "agency-b.govt.nz") {
		t.Errorf("verified: %v %q %q", ok, code, why)
	}
	so := verifiedIn()
	so.Encrypted, so.Decrypted = false, false
	if ok, code, _ := p.SMIMEInResult(so); !ok || code != WarningSignedOnly {
		t.Errorf("signed only: %v %q", ok, code)
	}
	rv := verifiedIn()
	rv.SignerState = smime.StateRevoked
	if ok, code, _ := p.SMIMEInResult(rv); ok || code != "101" {
		t.Errorf("revoked: %v %q", ok, code)
	}
	own := verifiedIn()
	own.OwnState = smime.StateExpired
	if ok, code, _ := p.SMIMEInResult(own); ok || code != "113" {
		t.Errorf("our certificate expired: %v %q", ok, code)
	}
	if ok, _, why := p.SMIMEInResult(nil); ok || why != "not S/MIME" {
		t.Errorf("nil: %v %q", ok, why)
	}
}
