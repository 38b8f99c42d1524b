package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

const smimeFixtures = "../testdata/smime"

func fx(name string) string { return filepath.Join(smimeFixtures, name) }

func fxID(t testing.TB, domain, name string) *smime.Identity {
	t.Helper()
	id, err := smime.LoadIdentity(domain, fx(name+".crt"), fx(name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fakeRevocation: the serials in revoked are revoked, those in unknown
// have no usable CRL; every other certificate is not revoked.
type fakeRevocation struct{ revoked, unknown map[string]bool }

func (f fakeRevocation) Status(_ context.Context, c, _ *x509.Certificate) (smime.Revocation, error) {
	switch {
	case f.revoked[c.SerialNumber.String()]:
		return smime.Revoked, nil
	case f.unknown[c.SerialNumber.String()]:
		return smime.RevocationUnknown, errors.New("distribution point unreachable")
	}
	return smime.NotRevoked, nil
}

// smimeState is a load with smime.mode = on: our identities for
// agency-a.govt.nz (old and new, R38) and for agency-e.govt.nz (expired:
// our own certificate problem, 113), the test CA as anchor, an empty peer
// store, and a fake revocation source in which revoked.crt is revoked.
func smimeState(t *testing.T, extra ...string) (State, *fakeRevocation) {
	t.Helper()
	peers := t.TempDir()
	sets := append([]string{
		`domains=["agency-a.govt.nz"]`, `authserv_id="mx.agency-a.govt.nz"`, "record_times=false",
		`outbound.seemail_domains=["agency-b.govt.nz","agency-r.govt.nz","agency-c.govt.nz"]`,
		"smime.mode=on", "smime.crl_check=false", `smime.peers="` + peers + `"`,
		`smime.trust_anchors=["` + fx("ca.crt") + `"]`,
		`smime.identities=["agency-a.govt.nz:` + fx("agency-a-new.crt") + ":" + fx("agency-a-new.key") +
			`","agency-a.govt.nz:` + fx("agency-a-old.crt") + ":" + fx("agency-a-old.key") +
			`","agency-e.govt.nz:` + fx("expired.crt") + ":" + fx("expired.key") + `"]`,
	}, extra...)
	st := loadState(t, sets...)
	if st.SMIME == nil || st.SMIME.Store == nil || len(st.SMIME.Identities) != 3 {
		t.Fatalf("smime.mode = on built no usable env: %+v", st.SMIME)
	}
	rev := &fakeRevocation{revoked: map[string]bool{}, unknown: map[string]bool{}}
	rev.revoked[certOf(t, "revoked").SerialNumber.String()] = true
	st.SMIME.Validator.Revocation = rev
	return st, rev
}

// loadState is the State serve builds from a policy of these --set
// assignments, with no sender checks.
func loadState(t testing.TB, sets ...string) State {
	t.Helper()
	p, err := policy.Load("", sets)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(p, nopChecker{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func certOf(t testing.TB, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

const innerText = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nKia ora, the figures are [SECRET] until Friday.\r\n"

// signEncrypt makes what a peer gateway sends: inner signed by signer
// (opaque or detached), then encrypted to rcpt, as a MIME entity.
func signEncrypt(t testing.TB, inner string, signer *smime.Identity, detached bool, rcpt *x509.Certificate) []byte {
	t.Helper()
	signed := signEntity(t, inner, signer, detached)
	if rcpt == nil {
		return signed
	}
	der, err := smime.Encrypt(signed, []*x509.Certificate{rcpt}, smime.CipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return smime.EnvelopedEntity(der)
}

func signEntity(t testing.TB, inner string, signer *smime.Identity, detached bool) []byte {
	t.Helper()
	sig, err := smime.Sign([]byte(inner), signer, detached)
	if err != nil {
		t.Fatal(err)
	}
	if detached {
		return smime.DetachedEntity([]byte(inner), sig, "sig-boundary-1")
	}
	return smime.SignedEntity(sig)
}

func encryptOnly(t testing.TB, inner string, rcpt *x509.Certificate) []byte {
	t.Helper()
	der, err := smime.Encrypt([]byte(inner), []*x509.Certificate{rcpt}, smime.CipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return smime.EnvelopedEntity(der)
}

// outerMessage puts the outer headers of a gateway's message before an
// S/MIME entity (which brings its Content-* headers).
func outerMessage(from string, entity []byte) []byte {
	return append([]byte("From: Sender <"+from+">\r\nTo: user@agency-a.govt.nz\r\nSubject: quarterly figures\r\nMessage-ID: <1@test>\r\nMIME-Version: 1.0\r\n"), entity...)
}

type smimeRun struct {
	v   policy.Verdict
	out string // the message as delivered
	tx  *Transaction
}

// deliver runs msg inbound (over TLS 1.3) through the pipeline as serve
// does, and renders what the MTA delivers.
func deliver(t *testing.T, st State, from string, msg []byte) smimeRun {
	t.Helper()
	tx, v, err := Begin(st, policy.Conn{TLS: policy.TLSInfo{Version: "TLSv1.3"}, HELO: "mx.peer.test"},
		policy.Envelope{From: from, Rcpts: []string{"user@agency-a.govt.nz"}}, time.Now())
	if err != nil || v.Final() {
		t.Fatalf("begin: %v %v", v.Action, err)
	}
	t.Cleanup(func() { tx.Close() })
	r := bufio.NewReader(bytes.NewReader(msg))
	hs, err := ReadRawHeaders(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		tx.Header(h.Name, h.Value)
	}
	if v := tx.EndOfHeaders(); v.Final() {
		t.Fatalf("end of headers: %v", v.Action)
	}
	var body bytes.Buffer
	body.ReadFrom(r)
	tx.BodyChunk(toCRLF(body.Bytes()))
	v = tx.EndOfMessage()
	if tx.Failure() != nil {
		t.Fatalf("failure: %v", tx.Failure())
	}
	o, err := tx.Output(v)
	if err != nil {
		t.Fatalf("output: %v (verdict %+v)", err, v)
	}
	var b bytes.Buffer
	if _, err := o.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return smimeRun{v: v, out: b.String(), tx: tx}
}

func hasNotice(v policy.Verdict, kind policy.NoticeKind, to, code string) bool {
	for _, n := range v.Notices {
		if n.Kind == kind && n.To == to && n.Code == code {
			return true
		}
	}
	return false
}

func kinds(v policy.Verdict) []string {
	var out []string
	for _, tr := range v.Transforms {
		out = append(out, tr.String())
	}
	return out
}

// A verified message (signed by agency-b's DCA, encrypted to ours, opaque
// and detached): delivered decrypted with the signature layer stripped
// (R88-R89), tagged X-NZ-Secure-email (R60) with smime=pass, classified on
// its decrypted content ([SECRET] found), the signer learned (R50, R83)
// and its capabilities cached (R84).
func TestSMIMEInVerifiedGo(t *testing.T) {
	for _, detached := range []bool{false, true} {
		name := map[bool]string{false: "opaque", true: "detached"}[detached]
		t.Run(name, func(t *testing.T) {
			st, _ := smimeState(t)
			b := fxID(t, "agency-b.govt.nz", "agency-b")
			msg := outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, detached, certOf(t, "agency-a-new")))
			r := deliver(t, st, "officer@agency-b.govt.nz", msg)
			checkVerified(t, r, st)
		})
	}
}

func checkVerified(t *testing.T, r smimeRun, st State) {
	t.Helper()
	v := r.v
	if v.Action != policy.Accept || v.WarningCode != "" {
		t.Fatalf("verdict %s warning %q, want accept without warning; reasons %q", v.Action, v.WarningCode, v.Reasons)
	}
	if got := kinds(v); len(got) == 0 || got[0] != string(policy.TransformSMIMEUnwrap) {
		t.Fatalf("transforms %v, want smime-unwrap first", got)
	}
	if v.Classification != "SECRET" {
		t.Errorf("classification %q, want SECRET from the decrypted content", v.Classification)
	}
	if strings.Contains(strings.ToLower(r.out), "pkcs7") || !strings.Contains(r.out, "[SECRET] until Friday") {
		t.Errorf("delivered message is not the decrypted inner entity:\n%s", r.out)
	}
	hs, _ := ReadRawHeaders(bufio.NewReader(strings.NewReader(r.out)), 1<<20)
	if ct := policy.HeaderValues(hs, "Content-Type"); len(ct) != 1 || !strings.Contains(ct[0], "text/plain") {
		t.Errorf("Content-Type %q, want the inner text/plain only", ct)
	}
	if tag := policy.HeaderValues(hs, policy.SecureEmailHeader); len(tag) != 1 || !strings.Contains(tag[0], `classification="SECRET"`) {
		t.Errorf("X-NZ-Secure-email %q", tag)
	}
	ar := strings.Join(policy.HeaderValues(hs, policy.AuthResultsHeader), "\n")
	if !strings.Contains(ar, "smime=pass") || !strings.Contains(ar, "body.smime-identifier=domain-confidentiality-authority@agency-b.govt.nz") {
		t.Errorf("Authentication-Results %q, want smime=pass with the signer", ar)
	}
	f := r.tx.smimeIn.facts
	if !f.Learned || f.Changed || f.StrippedCerts == 0 {
		t.Errorf("learned %v changed %v stripped %d, want a new certificate learned and its certificates stripped", f.Learned, f.Changed, f.StrippedCerts)
	}
	certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz")
	if len(certs) != 1 || !certs[0].Equal(certOf(t, "agency-b")) {
		t.Errorf("peer store for agency-b: %d certificates, want agency-b.crt (R50)", len(certs))
	}
	if caps, ok := st.SMIME.Store.Capabilities("agency-b.govt.nz"); !ok || len(caps) == 0 || !f.CapabilitiesCached {
		t.Errorf("capabilities not cached (R84): %v %v", caps, ok)
	}
}

// Table 1, receiving column: a signer certificate that is revoked,
// untrusted, expired, of unknown status or not yet valid gives an
// UNVERIFIED warning 101-105; the message is delivered (decrypted, the
// warning wrapping it) and our postmaster is notified; nothing is learned.
func TestSMIMEInTable1Receiving(t *testing.T) {
	for _, c := range []struct {
		name, cert, domain, code string
		unknown                  bool
	}{
		{"revoked", "revoked", "agency-r.govt.nz", "101", false},
		{"untrusted", "untrusted", "agency-u.govt.nz", "102", false},
		{"expired", "expired", "agency-e.govt.nz", "103", false},
		{"unknown status", "agency-b", "agency-b.govt.nz", "104", true},
		{"not yet valid", "future", "agency-f.govt.nz", "105", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, rev := smimeState(t)
			signer := fxID(t, c.domain, c.cert)
			if c.unknown {
				rev.unknown[signer.Cert.SerialNumber.String()] = true
			}
			from := "officer@" + c.domain
			r := deliver(t, st, from, outerMessage(from, signEncrypt(t, innerText, signer, false, certOf(t, "agency-a-new"))))
			v := r.v
			if v.Action != policy.Accept || v.WarningCode != c.code {
				t.Fatalf("verdict %s warning %q, want accept with %s; reasons %q", v.Action, v.WarningCode, c.code, v.Reasons)
			}
			if !hasNotice(v, policy.NoticeCertificate, "postmaster@agency-a.govt.nz", c.code) {
				t.Errorf("no notice to the recipient's postmaster: %+v", v.Notices)
			}
			if got := kinds(v); len(got) != 2 || got[0] != "smime-unwrap" || got[1] != "warn-wrap("+c.code+")" {
				t.Errorf("transforms %v, want smime-unwrap then warn-wrap(%s)", got, c.code)
			}
			if strings.Contains(strings.ToLower(r.out), "pkcs7") || !strings.Contains(r.out, "[SECRET] until Friday") || !strings.Contains(r.out, "[Code: "+c.code) {
				t.Errorf("the warning does not wrap the decrypted message:\n%s", r.out)
			}
			if strings.Contains(r.out, policy.SecureEmailHeader+":") || strings.Contains(r.out, "smime=pass") {
				t.Errorf("unverified mail tagged compliant:\n%s", r.out)
			}
			if certs, _ := st.SMIME.Store.Certificates(c.domain); len(certs) != 0 {
				t.Errorf("a %s certificate was learned", c.name)
			}
		})
	}
}

// 111-115: decrypted with our own certificate that is not valid (here our
// expired agency-e identity): delivered decrypted with warning 113 and a
// notice (R86: mail encrypted with an expired key pair is handled).
func TestSMIMEInOwnCertificate(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, true, certOf(t, "expired"))))
	if r.v.WarningCode != "113" || !hasNotice(r.v, policy.NoticeCertificate, "postmaster@agency-a.govt.nz", "113") {
		t.Fatalf("warning %q notices %+v, want 113 with a notice; reasons %q", r.v.WarningCode, r.v.Notices, r.v.Reasons)
	}
	if f := r.tx.smimeIn.facts; f.OwnState != smime.StateExpired || f.OwnDomain != "agency-e.govt.nz" {
		t.Errorf("own state %q domain %q", f.OwnState, f.OwnDomain)
	}
}

// R38: mail encrypted to our older certificate decrypts too.
func TestSMIMEInOlderKey(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, certOf(t, "agency-a-old"))))
	checkVerified(t, r, st)
	if r.tx.smimeIn.facts.OwnFingerprint != smime.Fingerprint(certOf(t, "agency-a-old")) {
		t.Errorf("decrypted by %s, want the old identity", r.tx.smimeIn.facts.OwnFingerprint)
	}
}

// 008: signed, not encrypted, by a participating agency; 003: a signature
// that does not verify over the content (altered en route).
func TestSMIMEInSignedOnlyAndAltered(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEntity(t, innerText, b, false)))
	if r.v.WarningCode != "008" || strings.Contains(r.out, "smime=pass") || strings.Contains(r.out, policy.SecureEmailHeader+":") {
		t.Errorf("signed only: warning %q, want 008, untagged; reasons %q", r.v.WarningCode, r.v.Reasons)
	}
	if r.v.Classification != "SECRET" {
		t.Errorf("signed only: classification %q", r.v.Classification)
	}

	altered := bytes.Replace(signEntity(t, innerText, b, true), []byte("until Friday"), []byte("until Monday"), 1)
	for name, entity := range map[string][]byte{
		"detached":           altered,
		"detached encrypted": encryptOnly(t, string(altered), certOf(t, "agency-a-new")),
	} {
		r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", entity))
		if r.v.WarningCode != "003" || strings.Contains(r.out, "smime=pass") || !strings.Contains(r.out, "smime=fail") {
			t.Errorf("%s altered: warning %q, want 003 and smime=fail; reasons %q\n%s", name, r.v.WarningCode, r.v.Reasons, r.out)
		}
	}
}

// R80: mail that cannot be decrypted (encrypted to a certificate that is
// not ours; garbage) is delivered as received with an UNVERIFIED warning,
// never tagged, its classification the outer scan's (unreadable). R87:
// mail encrypted to us, unsigned, from an unknown source is accepted, even
// under inbound.unverified = "delete", and classified on its content.
func TestSMIMEInUndecryptableAndUnknownSource(t *testing.T) {
	st, _ := smimeState(t, `inbound.unverified="delete"`)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	notOurs := outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, certOf(t, "agency-b")))
	r := deliver(t, st, "officer@agency-b.govt.nz", notOurs)
	if r.v.Action != policy.Accept || r.v.WarningCode != "112" || len(r.v.Unreadable) == 0 {
		t.Errorf("not for us: %s %q unreadable %q, want accept with 112, unreadable; reasons %q", r.v.Action, r.v.WarningCode, r.v.Unreadable, r.v.Reasons)
	}
	if !strings.Contains(r.out, "application/pkcs7-mime") || !strings.Contains(r.out, "smime=permerror") {
		t.Errorf("not for us: not delivered as received (the wrap attaches the encrypted original):\n%.2000s", r.out)
	}
	garbage := outerMessage("officer@agency-b.govt.nz", []byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\r\n"))
	r = deliver(t, st, "officer@agency-b.govt.nz", garbage)
	if r.v.Action != policy.Accept || r.v.WarningCode != "003" || !r.tx.smimeIn.facts.Malformed {
		t.Errorf("garbage: %s %q, want accept with 003; reasons %q", r.v.Action, r.v.WarningCode, r.v.Reasons)
	}

	// Decrypted, but the layer inside is malformed: 003, and what is
	// delivered is the decrypted (malformed) entity, not the encrypted one.
	badInner := "Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAAAAAA\r\n"
	r = deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", encryptOnly(t, badInner, certOf(t, "agency-a-new"))))
	if f := r.tx.smimeIn.facts; r.v.WarningCode != "003" || !f.Malformed || !f.Decrypted || !f.Unwrapped {
		t.Errorf("malformed inner layer: warning %q facts %+v, want 003, decrypted and unwrapped", r.v.WarningCode, f)
	}
	if strings.Contains(r.out, "enveloped-data") || !strings.Contains(r.out, "signed-data") {
		t.Errorf("malformed inner layer: not delivered as the decrypted entity:\n%s", r.out)
	}

	// R87: unsigned, from a participating agency's address: the ordinary
	// rule (002, not verified) applies to the decrypted message, and it is
	// kept although inbound.unverified is "delete".
	r = deliver(t, st, "someone@agency-c.govt.nz", outerMessage("someone@agency-c.govt.nz", encryptOnly(t, innerText, certOf(t, "agency-a-new"))))
	if r.v.Action != policy.Accept || r.v.WarningCode != "002" || r.v.Classification != "SECRET" {
		t.Errorf("R87 participating: %s %q %q, want accept with 002, SECRET; reasons %q", r.v.Action, r.v.WarningCode, r.v.Classification, r.v.Reasons)
	}
	if strings.Contains(strings.ToLower(r.out), "pkcs7") || !strings.Contains(r.out, "smime=none") {
		t.Errorf("R87: not delivered decrypted:\n%s", r.out)
	}
	// R87 from an internet sender: classified content from a non-secure
	// source is 004 (M-IN), found only because the content was decrypted.
	r = deliver(t, st, "someone@example.com", outerMessage("someone@example.com", encryptOnly(t, innerText, certOf(t, "agency-a-new"))))
	if r.v.Action != policy.Accept || r.v.WarningCode != "004" {
		t.Errorf("R87 internet: %s %q, want accept with 004; reasons %q", r.v.Action, r.v.WarningCode, r.v.Reasons)
	}
}

// R47-R48: a valid signature by agency-b's DCA on mail whose From: is
// another domain is UNVERIFIED (102), though the certificate is learned
// under its own domain.
func TestSMIMEInNaming(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	r := deliver(t, st, "officer@agency-c.govt.nz", outerMessage("officer@agency-c.govt.nz", signEncrypt(t, innerText, b, false, certOf(t, "agency-a-new"))))
	if r.v.WarningCode != "102" || r.tx.smimeIn.facts.NamingOK {
		t.Errorf("warning %q naming %v, want 102; reasons %q", r.v.WarningCode, r.tx.smimeIn.facts.NamingOK, r.v.Reasons)
	}
}

// R83: a changed certificate for a peer is learned (the store held the
// older one); R82: a message without its signer's certificate verifies
// with the store's.
func TestSMIMEInChangedCertificateAndStore(t *testing.T) {
	// Here we are agency-b and agency-a is the peer.
	peers := t.TempDir()
	st := loadState(t, `domains=["agency-b.govt.nz"]`, `authserv_id="mx.agency-b.govt.nz"`, "record_times=false",
		"smime.mode=on", "smime.crl_check=false", `smime.peers="`+peers+`"`, `smime.trust_anchors=["`+fx("ca.crt")+`"]`,
		`smime.identities=["agency-b.govt.nz:`+fx("agency-b.crt")+":"+fx("agency-b.key")+`"]`)
	if _, err := st.SMIME.Store.Add("agency-a.govt.nz", certOf(t, "agency-a-old")); err != nil {
		t.Fatal(err)
	}
	a := fxID(t, "agency-a.govt.nz", "agency-a-new")
	msg := signEncrypt(t, innerText, a, false, certOf(t, "agency-b"))
	tx, v := runTo(t, st, "officer@agency-a.govt.nz", "user@agency-b.govt.nz", outerMessage("officer@agency-a.govt.nz", msg))
	f := tx.smimeIn.facts
	if v.WarningCode != "" || !f.Learned || !f.Changed {
		t.Fatalf("warning %q learned %v changed %v; reasons %q", v.WarningCode, f.Learned, f.Changed, v.Reasons)
	}
	if certs, _ := st.SMIME.Store.Certificates("agency-a.govt.nz"); len(certs) != 2 || !certs[0].Equal(a.Cert) {
		t.Errorf("store holds %d certificates for agency-a, want old and new, newest first", len(certs))
	}
	if caps, ok := st.SMIME.Store.Capabilities("agency-a.govt.nz"); !ok || caps.String() != smime.OurCapabilities.String() {
		t.Errorf("capabilities %v %v, want ours as announced", caps, ok)
	}

	// R82 with openssl (-nocerts): the store's certificate verifies it.
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte(innerText), 0o600)
	signedOut := runTool(t, nil, openssl, "cms", "-sign", "-nocerts", "-signer", fx("agency-a-new.crt"), "-inkey", fx("agency-a-new.key"), "-in", in)
	enc := runTool(t, signedOut, openssl, "cms", "-encrypt", "-aes256", fx("agency-b.crt"))
	noCerts := outerMessage("officer@agency-a.govt.nz", stripMIMEVersion(enc))
	tx, v = runTo(t, st, "officer@agency-a.govt.nz", "user@agency-b.govt.nz", noCerts)
	if f := tx.smimeIn.facts; v.WarningCode != "" || !f.SignerFromStore || !f.SignatureOK {
		t.Errorf("R82: warning %q from store %v signature %v; reasons %q", v.WarningCode, f.SignerFromStore, f.SignatureOK, v.Reasons)
	}
	// Without the certificate anywhere the sender's certificate is
	// unknown: 102, not 003 (nothing shows the content was altered).
	for _, c := range []*x509.Certificate{a.Cert, certOf(t, "agency-a-old")} {
		os.Remove(filepath.Join(peers, "agency-a.govt.nz", smime.Fingerprint(c)+".pem"))
	}
	_, v = runTo(t, st, "officer@agency-a.govt.nz", "user@agency-b.govt.nz", noCerts)
	if v.WarningCode != "102" {
		t.Errorf("no signer certificate anywhere: warning %q, want 102; reasons %q", v.WarningCode, v.Reasons)
	}
}

// runTo is deliver for another recipient, without rendering.
func runTo(t *testing.T, st State, from, rcpt string, msg []byte) (*Transaction, policy.Verdict) {
	t.Helper()
	tx, v, err := Begin(st, policy.Conn{TLS: policy.TLSInfo{Version: "TLSv1.3"}}, policy.Envelope{From: from, Rcpts: []string{rcpt}}, time.Now())
	if err != nil || v.Final() {
		t.Fatalf("begin: %v %v", v.Action, err)
	}
	t.Cleanup(func() { tx.Close() })
	r := bufio.NewReader(bytes.NewReader(toCRLF(msg)))
	hs, _ := ReadRawHeaders(r, 1<<20)
	for _, h := range hs {
		tx.Header(h.Name, h.Value)
	}
	tx.EndOfHeaders()
	var body bytes.Buffer
	body.ReadFrom(r)
	tx.BodyChunk(body.Bytes())
	return tx, tx.EndOfMessage()
}

func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not installed (CI must install it)")
		}
		t.Skip("openssl not installed")
	}
	return p
}

func runTool(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// stripMIMEVersion drops the MIME-Version line openssl writes first (the
// outer message has its own).
func stripMIMEVersion(b []byte) []byte {
	return bytes.TrimPrefix(bytes.TrimPrefix(b, []byte("MIME-Version: 1.0\r\n")), []byte("MIME-Version: 1.0\n"))
}

// Interoperability: what `openssl cms` signs (detached and opaque) and
// encrypts to us arrives verified and decrypted.
func TestSMIMEInOpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	for _, detached := range []bool{true, false} {
		name := map[bool]string{false: "opaque", true: "detached"}[detached]
		t.Run(name, func(t *testing.T) {
			st, _ := smimeState(t)
			dir := t.TempDir()
			in := filepath.Join(dir, "in.txt")
			if err := os.WriteFile(in, []byte(strings.ReplaceAll(innerText, "\r\n", "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"cms", "-sign", "-signer", fx("agency-b.crt"), "-inkey", fx("agency-b.key"), "-certfile", fx("ca.crt"), "-in", in}
			if !detached {
				args = append(args, "-nodetach")
			}
			signed := runTool(t, nil, openssl, args...)
			enc := runTool(t, signed, openssl, "cms", "-encrypt", "-aes256", fx("agency-a-new.crt"))
			r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", stripMIMEVersion(enc)))
			checkVerified(t, r, st)
		})
	}
}

// FuzzInboundSMIME: any body under any S/MIME Content-Type gives facts or
// nil, never a panic; memory is bounded by maxSMIMEBody.
func FuzzInboundSMIME(f *testing.F) {
	a := fxID(f, "agency-a.govt.nz", "agency-a-new")
	b := fxID(f, "agency-b.govt.nz", "agency-b")
	pool := x509.NewCertPool()
	pool.AddCert(certOf(f, "ca"))
	env := &SMIMEEnv{Validator: &smime.Validator{Anchors: pool}, Identities: []*smime.Identity{a}, StoreNote: "none"}
	cts := []string{
		"application/pkcs7-mime; smime-type=enveloped-data",
		"application/x-pkcs7-mime; smime-type=signed-data",
		`multipart/signed; protocol="application/pkcs7-signature"; boundary="sig-boundary-1"`,
	}
	for _, e := range [][]byte{signEncrypt(f, innerText, b, false, a.Cert), signEntity(f, innerText, b, true), signEntity(f, innerText, b, false), encryptOnly(f, innerText, a.Cert)} {
		_, body, _ := splitEntity(e)
		f.Add(byte(0), true, body)
		f.Add(byte(1), true, body)
		f.Add(byte(2), false, body)
	}
	f.Fuzz(func(t *testing.T, kind byte, b64 bool, body []byte) {
		if len(body) > 1<<16 {
			return
		}
		hs := []policy.Header{{Name: "From", Value: " x@agency-b.govt.nz"}, {Name: "Content-Type", Value: " " + cts[int(kind)%len(cts)]}}
		if b64 {
			hs = append(hs, policy.Header{Name: "Content-Transfer-Encoding", Value: " base64"})
		}
		in := InboundSMIME(context.Background(), env, hs, bytes.NewReader(body))
		if in == nil {
			return
		}
		if in.facts.Malformed && in.facts.Verified() {
			t.Fatalf("malformed S/MIME verified: %+v", in.facts)
		}
		if in.facts.SignatureOK && !in.facts.Signed {
			t.Fatalf("signature ok without a signature: %+v", in.facts)
		}
	})
}
