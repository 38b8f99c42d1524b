package milter

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"mime/quotedprintable"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/selftest"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Signed ping through the milter (R96-R99, policy/ping.go): the ping is
// decrypted and verified by the inbound S/MIME path before the engine
// decides, and the notifier signs and encrypts the answer (R62's path).

// pingServer: we are agency-a.govt.nz with S/MIME on; the peer store is
// empty (the signer of a verified ping is learned from it, R50); the CRL
// is not checked. Notices go to the returned submitter.
func pingServer(t *testing.T, sets ...string) (string, *captureSubmitter) {
	t.Helper()
	dir := t.TempDir()
	p := testPolicy(t, append([]string{`profile="seemail"`, `domains=["agency-a.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:` + smimeFx + `agency-a-new.crt:` + smimeFx + `agency-a-new.key"]`,
		`smime.trust_anchors=["` + smimeFx + `ca.crt"]`, `smime.peers="` + filepath.Join(dir, "peers") + `"`, `smime.crl_check=false`}, sets...)...)
	addr, srv, _ := startServer(t, p)
	notices := &captureSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 10, Window: time.Hour}, time.Now)
	if err := srv.enableNotices(func(*policy.Policy) (*Notifier, error) {
		return &Notifier{Queue: notify.NewQueue(notices, notify.QueueConfig{}), Limiter: lim, Log: srv.log, Submitter: notices,
			Product: "nzsecure-milter", Version: "9.9.9-test"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })
	return addr, notices
}

func loadCert(t *testing.T, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

// signedPing is a ping from FROM's gateway: a text entity signed (opaque)
// by signer's DCA identity, encrypted to rcpt when not nil.
func signedPing(t *testing.T, from, signer, signerDomain string, rcpt *x509.Certificate) message {
	t.Helper()
	id, err := smime.LoadIdentity(signerDomain, smimeFx+signer+".crt", smimeFx+signer+".key")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := smime.Sign([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\nPing from the gateway.\r\n"), id, false)
	if err != nil {
		t.Fatal(err)
	}
	entity := smime.SignedEntity(sig)
	if rcpt != nil {
		der, err := smime.Encrypt(entity, []*x509.Certificate{rcpt}, smime.CipherAES256)
		if err != nil {
			t.Fatal(err)
		}
		entity = smime.EnvelopedEntity(der)
	}
	hdr, body, _ := bytes.Cut(entity, []byte("\r\n\r\n"))
	m := message{from: from, rcpts: []string{"ping@agency-a.govt.nz"},
		headers: [][2]string{{"From", " " + from}, {"To", " ping@agency-a.govt.nz"}, {"Subject", " ping"}, {"MIME-Version", " 1.0"}},
		body:    string(body)}
	for _, line := range strings.Split(string(hdr), "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		m.headers = append(m.headers, [2]string{name, value})
	}
	return m
}

// openAnswer decrypts an answer with agency-b's key and verifies its
// signature against the test CA; it returns the decoded text of the signed
// content and the signer.
func openAnswer(t *testing.T, msg string) (string, *x509.Certificate) {
	t.Helper()
	if !strings.Contains(msg, "application/pkcs7-mime; smime-type=enveloped-data") {
		t.Fatalf("answer not encrypted:\n%.600s", msg)
	}
	peer, err := smime.LoadIdentity("agency-b.govt.nz", smimeFx+"agency-b.crt", smimeFx+"agency-b.key")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(msg, "\r\n\r\n")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		t.Fatalf("answer body not base64: %v", err)
	}
	dec, err := smime.Decrypt(der, []*smime.Identity{peer})
	if err != nil {
		t.Fatalf("agency-b cannot decrypt the answer: %v", err)
	}
	_, sb, _ := bytes.Cut(dec.Content, []byte("\r\n\r\n"))
	sder, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(sb)), ""))
	if err != nil {
		t.Fatalf("decrypted answer is not a base64 signed-data entity: %v\n%.300s", err, dec.Content)
	}
	signed, err := smime.Verify(sder, nil, nil)
	if err != nil {
		t.Fatalf("the answer's signature does not verify: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(loadCert(t, "ca"))
	if _, err := signed.Signer.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the answer's signer does not chain to the test CA: %v", err)
	}
	_, text, _ := bytes.Cut(signed.Content, []byte("\r\n\r\n"))
	plain, err := readQP(text)
	if err != nil {
		t.Fatal(err)
	}
	return plain, signed.Signer
}

func readQP(b []byte) (string, error) {
	var out bytes.Buffer
	_, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(b)))
	return out.String(), err
}

// R98: a ping signed by agency-b's DCA certificate and encrypted to ours
// is consumed and answered signed with our DCA identity and encrypted to
// agency-b's certificate; the signed content names the product and
// version and the environment (R99). agency-b is outside smime.encrypt_to,
// so the ordinary notice rule (R62) would not encrypt the answer: R98 does.
func TestSignedPingAnsweredSignedEncrypted(t *testing.T) {
	addr, notices := pingServer(t, `smime.encrypt_to=["agency-c.govt.nz"]`)
	m := dial(t, addr)
	m.connect("203.0.113.50", "", "TLSv1.3")
	r := m.send(signedPing(t, "ping@agency-b.govt.nz", "agency-b", "agency-b.govt.nz", loadCert(t, "agency-a-new")))
	if r.act.Type != gomilter.ActionDiscard {
		t.Fatalf("signed ping: %v, want discarded (consumed)", r.act)
	}
	msgs := notices.wait(t, 1)
	notices.mu.Lock()
	to := notices.to[0]
	notices.mu.Unlock()
	if len(to) != 1 || to[0] != "ping@agency-b.govt.nz" {
		t.Errorf("answer to %v", to)
	}
	text, signer := openAnswer(t, msgs[0])
	if smime.Fingerprint(signer) != smime.Fingerprint(loadCert(t, "agency-a-new")) {
		t.Errorf("answer signed by %s, want our DCA certificate", signer.Subject)
	}
	for _, want := range []string{"Secure Email ping reply.", "Gateway software: nzsecure-milter 9.9.9-test", "Secure Email environment: SEEMail",
		"S/MIME of your ping: verified: signed by domain-confidentiality-authority@agency-b.govt.nz"} {
		if !strings.Contains(text, want) {
			t.Errorf("signed answer lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(msgs[0], "Gateway software") {
		t.Error("the answer's text is readable outside the encryption")
	}
}

// An unsigned ping is answered in clear; one signed by a certificate that
// does not chain to an accredited CA (agency-u, issued by a rogue CA) is
// answered as an unsigned ping, in clear, saying why (102), never
// encrypted to the certificate it carried.
func TestUnsignedAndUntrustedPingClear(t *testing.T) {
	addr, notices := pingServer(t)
	m := dial(t, addr)
	m.connect("203.0.113.50", "", "TLSv1.3")
	r := m.send(message{from: "someone@internet.example", rcpts: []string{"ping@agency-a.govt.nz"},
		headers: [][2]string{{"From", " someone@internet.example"}, {"Subject", " ping"}}, body: "ping\r\n"})
	if r.act.Type != gomilter.ActionDiscard {
		t.Fatalf("unsigned ping: %v", r.act)
	}
	msgs := notices.wait(t, 1)
	text, err := readQP([]byte(msgs[0][strings.Index(msgs[0], "\r\n\r\n")+4:]))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msgs[0], "pkcs7") || !strings.Contains(text, "Gateway software: nzsecure-milter 9.9.9-test") ||
		!strings.Contains(text, "S/MIME of your ping: not signed or encrypted") {
		t.Errorf("unsigned ping's answer:\n%s", msgs[0])
	}

	m2 := dial(t, addr)
	m2.connect("203.0.113.50", "", "TLSv1.3")
	r = m2.send(signedPing(t, "ping@agency-u.govt.nz", "untrusted", "agency-u.govt.nz", nil))
	if r.act.Type != gomilter.ActionDiscard {
		t.Fatalf("untrusted ping: %v", r.act)
	}
	msgs = notices.wait(t, 2)
	text, err = readQP([]byte(msgs[1][strings.Index(msgs[1], "\r\n\r\n")+4:]))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msgs[1], "pkcs7") || !strings.Contains(text, "S/MIME of your ping: not verified: ") || !strings.Contains(text, "102") {
		t.Errorf("untrusted ping's answer:\n%s", msgs[1])
	}
}

// selftest --peers (R19, R98): a peer's answer to our ping is recorded
// with the inbound S/MIME path's verdict, not its structure: agency-b's
// answer (signed by its DCA certificate, encrypted to ours) is verified;
// agency-u's (signed by a certificate of a rogue CA) is recorded
// unverified with its Table 3 code, so --peers fails it. (By structure
// alone an encrypted answer was not even "signed": enveloped-data hides
// the signature.)
func TestPeerPingAnswerVerified(t *testing.T) {
	dir := t.TempDir()
	addr, _ := pingServer(t, `selftest.peers=["ping@agency-b.govt.nz", "ping@agency-u.govt.nz"]`,
		`selftest.key_file="`+filepath.Join(dir, "selftest.key")+`"`)
	answers := filepath.Join(dir, "peer-answers")
	answer := func(from, signer, domain string, rcpt *x509.Certificate) selftest.PeerAnswer {
		t.Helper()
		m := dial(t, addr)
		m.connect("203.0.113.50", "", "TLSv1.3")
		msg := signedPing(t, from, signer, domain, rcpt)
		msg.from = "" // a notice: the null sender
		if r := m.send(msg); r.act.Type == gomilter.ActionReject || r.act.Type == gomilter.ActionTempFail {
			t.Fatalf("answer from %s: %v", from, r.act)
		}
		a, err := selftest.ReadAnswer(answers, domain)
		if err != nil {
			t.Fatalf("answer of %s not recorded: %v", domain, err)
		}
		return a
	}
	a := answer("postmaster@agency-b.govt.nz", "agency-b", "agency-b.govt.nz", loadCert(t, "agency-a-new"))
	if !a.Verified || a.SMIME != selftest.SMIMEVerified || !strings.Contains(a.Detail, "agency-b.govt.nz") {
		t.Errorf("agency-b's answer recorded %+v, want verified", a)
	}
	u := answer("postmaster@agency-u.govt.nz", "untrusted", "agency-u.govt.nz", loadCert(t, "agency-a-new"))
	if u.Verified || u.SMIME != selftest.SMIMEUnverified || u.Code != "102" {
		t.Errorf("agency-u's answer recorded %+v, want unverified 102", u)
	}
}
