package pipeline

import (
	"bytes"
	"context"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Outbound S/MIME through the one driver (issue 14 point 3).

type smimeFixture struct {
	st   State
	zone *dnstest.Zone
}

// newSMIMEState: we are agency-a.govt.nz (identities old and new, R37),
// agency-b.govt.nz is a peer with a certificate in the store; CRL checks
// off (the CRL is the e2e test's), a DKIM key for agency-a.govt.nz.
func newSMIMEState(t *testing.T, caps smime.Capabilities, sets ...string) smimeFixture {
	t.Helper()
	dir := t.TempDir()
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(key)
	keyFile := filepath.Join(dir, "dkim.key")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	record, _ := dkim.KeyRecord(key.Public())
	st := loadState(t, append([]string{
		`profile="seemail"`, `domains=["agency-a.govt.nz"]`, `authserv_id="mx.agency-a.govt.nz"`, "record_times=false",
		`outbound.seemail_domains=["agency-b.govt.nz", "agency-e.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:` + fx("agency-a-old.crt") + `:` + fx("agency-a-old.key") + `", "agency-a.govt.nz:` + fx("agency-a-new.crt") + `:` + fx("agency-a-new.key") + `"]`,
		`smime.trust_anchors=["` + fx("ca.crt") + `"]`,
		`smime.peers="` + filepath.Join(dir, "peers") + `"`, `smime.crl_check=false`,
		`dkim.keys=["agency-a.govt.nz:s1:` + keyFile + `"]`,
	}, sets...)...)
	for _, f := range []struct{ domain, file string }{{"agency-b.govt.nz", "agency-b"}, {"agency-e.govt.nz", "expired"}} {
		if _, err := st.SMIME.Store.Add(f.domain, certOf(t, f.file)); err != nil {
			t.Fatal(err)
		}
	}
	if caps != nil {
		if err := st.SMIME.Store.SetCapabilities("agency-b.govt.nz", caps); err != nil {
			t.Fatal(err)
		}
	}
	return smimeFixture{st: st, zone: dnstest.NewZone().TXT("s1._domainkey.agency-a.govt.nz", record)}
}

const smimeBody = "Hello agency B.\r\nLine two.\r\n"

// runOutbound feeds one authenticated outbound message.
func runOutbound(t *testing.T, st State, subject string, rcpts ...string) (*Transaction, policy.Verdict) {
	t.Helper()
	tx, v, err := Begin(st, policy.Conn{TLS: policy.TLSInfo{Version: "TLSv1.3"}}, policy.Envelope{From: "ann@agency-a.govt.nz", AuthUser: "ann@agency-a.govt.nz", QueueID: "Q1"}, time.Now())
	if err != nil || v.Final() {
		t.Fatalf("begin: %v %v", v.Action, err)
	}
	t.Cleanup(func() { tx.Close() })
	for _, r := range rcpts {
		tx.Rcpt(r)
	}
	for _, h := range [][2]string{{"From", " Ann <ann@agency-a.govt.nz>"}, {"To", " " + strings.Join(rcpts, ", ")}, {"Subject", " " + subject},
		{"MIME-Version", " 1.0"}, {"Content-Type", " text/plain; charset=us-ascii"}, {"Content-Transfer-Encoding", " 7bit"}} {
		tx.Header(h[0], h[1])
	}
	if v := tx.EndOfHeaders(); v.Final() {
		t.Fatalf("eoh: %v", v.Action)
	}
	tx.BodyChunk([]byte(smimeBody))
	return tx, tx.EndOfMessage()
}

func render(t *testing.T, o *Output) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := o.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// openSMIME decrypts msg's body with the peer's key, verifies the inner
// signed-data and returns the enveloped DER, the signed result and the
// inner MIME entity.
func openSMIME(t *testing.T, msg []byte, peer *smime.Identity) ([]byte, *smime.Signed) {
	t.Helper()
	_, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("no body")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		t.Fatalf("body is not base64: %v", err)
	}
	dec, err := smime.Decrypt(der, []*smime.Identity{peer})
	if err != nil {
		t.Fatalf("decrypt with the peer key: %v", err)
	}
	if !bytes.HasPrefix(dec.Content, []byte("Content-Type: application/pkcs7-mime; smime-type=signed-data")) {
		t.Fatalf("decrypted content is not a signed-data entity:\n%.300s", dec.Content)
	}
	_, sb, _ := bytes.Cut(dec.Content, []byte("\r\n\r\n"))
	sder, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(sb)), ""))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := smime.Verify(sder, nil, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return der, signed
}

// All recipients at a peer: the MTA's own transaction carries the S/MIME
// form; it decrypts with the peer's key, verifies, was signed with our
// newest certificate (R37) carrying the SMIMECapabilities (R71), holds the
// original content entity, and its DKIM signature verifies over the
// encrypted form (DKIM last).
func TestSMIMESignEncryptDecryptsAndVerifies(t *testing.T) {
	f := newSMIMEState(t, nil)
	tx, v := runOutbound(t, f.st, "[IN-CONFIDENCE] plans", "bob@agency-b.govt.nz")
	if v.Action != policy.Accept || v.MainForm() != policy.FormSMIME {
		t.Fatalf("action %s form %s reasons %q", v.Action, v.MainForm(), v.Reasons)
	}
	if len(v.Transforms) != 2 || v.Transforms[0].Kind != policy.TransformSMIMESignEncrypt || v.Transforms[1].Kind != policy.TransformDKIMSign {
		t.Fatalf("transforms %+v, want smime-sign-encrypt then dkim-sign", v.Transforms)
	}
	forms, err := tx.Forms(v)
	if err != nil || len(forms) != 1 || !forms[0].Main {
		t.Fatalf("forms %+v %v", forms, err)
	}
	msg := render(t, forms[0].Output)
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, want := range []string{"Content-Type: application/pkcs7-mime; smime-type=enveloped-data", "Content-Transfer-Encoding: base64", "Subject: [IN-CONFIDENCE] plans", "MIME-Version: 1.0"} {
		if !bytes.Contains(hdr, []byte(want)) {
			t.Errorf("outer headers lack %q:\n%s", want, hdr)
		}
	}
	if bytes.Contains(hdr, []byte("text/plain")) || bytes.Contains(hdr, []byte("7bit")) || bytes.Count(hdr, []byte("\r\nMIME-Version:")) != 1 {
		t.Errorf("the original content headers are still outside:\n%s", hdr)
	}
	der, signed := openSMIME(t, msg, fxID(t, "agency-b.govt.nz", "agency-b"))
	newest := fxID(t, "agency-a.govt.nz", "agency-a-new")
	if !signed.Signer.Equal(newest.Cert) {
		t.Errorf("signed by %s, want the newest identity (R37)", signed.Signer.Subject)
	}
	if len(signed.Capabilities) == 0 || signed.Capabilities.Strongest() != smime.CipherAES256 {
		t.Errorf("capabilities %v (R71)", signed.Capabilities)
	}
	want := "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + smimeBody
	if string(signed.Content) != want {
		t.Errorf("inner entity %q, want %q", signed.Content, want)
	}
	if !hasOID(der, smime.CipherAES256) {
		t.Errorf("no capabilities known: want AES-256-CBC")
	}
	sigs, err := dkim.Verify(context.Background(), bytes.NewReader(msg), dkim.VerifyOptions{LookupTXT: f.zone.LookupTXT})
	if err != nil || len(sigs) != 1 || sigs[0].Result != dkim.Pass {
		t.Fatalf("DKIM over the encrypted form: %+v %v", sigs, err)
	}
	if !bytes.HasPrefix(msg, []byte("DKIM-Signature:")) {
		t.Errorf("DKIM-Signature is not first")
	}
}

// R85: the peer's cached capabilities choose the cipher (AES-128 when
// that is the best it announces; 3DES when it names nothing better).
func TestSMIMECipherFromCapabilities(t *testing.T) {
	for _, c := range []struct {
		caps smime.Capabilities
		want smime.Cipher
	}{
		{smime.Capabilities{oid(t, "2.16.840.1.101.3.4.1.2")}, smime.CipherAES128},
		{smime.Capabilities{oid(t, "1.2.840.113549.3.7"), oid(t, "2.16.840.1.101.3.4.2.1")}, smime.Cipher3DES},
		{smime.Capabilities{oid(t, "2.16.840.1.101.3.4.1.2"), oid(t, "2.16.840.1.101.3.4.1.42")}, smime.CipherAES256},
	} {
		f := newSMIMEState(t, c.caps)
		tx, v := runOutbound(t, f.st, "[IN-CONFIDENCE] plans", "bob@agency-b.govt.nz")
		if len(v.Transforms) == 0 || v.Transforms[0].Cipher != c.want.String() {
			t.Fatalf("caps %v: transforms %+v, want cipher %s", c.caps, v.Transforms, c.want)
		}
		forms, err := tx.Forms(v)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := openSMIME(t, render(t, forms[0].Output), fxID(t, "agency-b.govt.nz", "agency-b"))
		for _, other := range []smime.Cipher{smime.Cipher3DES, smime.CipherAES128, smime.CipherAES256} {
			if hasOID(der, other) != (other == c.want) {
				t.Errorf("caps %v: enveloped data has %s: %v, want only %s", c.caps, other, hasOID(der, other), c.want)
			}
		}
	}
}

func oid(t *testing.T, s string) asn1.ObjectIdentifier {
	var o asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n := 0
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		o = append(o, n)
	}
	return o
}

// hasOID: the content-encryption algorithm of der is c (its OID is in the
// clear part of the enveloped data; the inner capabilities are encrypted).
func hasOID(der []byte, c smime.Cipher) bool {
	ids := map[smime.Cipher]string{smime.Cipher3DES: "1.2.840.113549.3.7", smime.CipherAES128: "2.16.840.1.101.3.4.1.2", smime.CipherAES256: "2.16.840.1.101.3.4.1.42"}
	b, _ := asn1.Marshal(oid(nil, ids[c]))
	return bytes.Contains(der, b)
}

// fakeSubmitter records submissions; fail makes them fail.
type fakeSubmitter struct {
	subs []fakeSub
	fail error
}

type fakeSub struct {
	from  string
	rcpts []string
	msg   []byte
}

func (s *fakeSubmitter) Submit(_ context.Context, from string, rcpts []string, msg []byte) error {
	if s.fail != nil {
		return s.fail
	}
	s.subs = append(s.subs, fakeSub{from, rcpts, msg})
	return nil
}

type fakeHold struct {
	held []HeldMessage
	msgs [][]byte
	fail error
}

func (h *fakeHold) Put(_ context.Context, m HeldMessage, r io.Reader) (string, error) {
	if h.fail != nil {
		return "", h.fail
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	h.held, h.msgs = append(h.held, m), append(h.msgs, b)
	return "H1", nil
}

// A peer, an internet address and a peer whose certificate is expired:
// three forms. The main transaction keeps the plain form for the internet
// address; the peer's S/MIME copy is submitted (and decrypts); the
// expired one is held with the original as received (201). Each
// recipient exactly once. A failed submission or hold is an error (the
// milter tempfails); without a store the held form is refused.
func TestSMIMEFormsCarryOut(t *testing.T) {
	f := newSMIMEState(t, nil)
	rcpts := []string{"bob@agency-b.govt.nz", "x@gmail.example", "rita@agency-e.govt.nz"}
	tx, v := runOutbound(t, f.st, "lunch", rcpts...)
	if v.Action != policy.Accept || v.MainForm() != policy.FormPlain {
		t.Fatalf("action %s form %s reasons %q", v.Action, v.MainForm(), v.Reasons)
	}
	forms, err := tx.Forms(v)
	if err != nil || len(forms) != 3 {
		t.Fatalf("forms %+v %v", forms, err)
	}
	var all []string
	for _, fm := range forms {
		all = append(all, fm.Rcpts...)
	}
	slices.Sort(all)
	want := slices.Clone(rcpts)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("forms' recipients %v, want each of %v once", all, want)
	}
	main := forms[0]
	if !main.Main || main.Kind != policy.FormPlain || !slices.Equal(main.Rcpts, []string{"x@gmail.example"}) {
		t.Errorf("main form %+v", main)
	}
	if plain := render(t, main.Output); !bytes.Contains(plain, []byte(smimeBody)) || bytes.Contains(plain, []byte("pkcs7")) {
		t.Errorf("plain form:\n%s", plain)
	}
	sub, hold := &fakeSubmitter{}, &fakeHold{}
	done, err := tx.CarryOut(context.Background(), forms, sub, hold, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.subs) != 1 || !slices.Equal(sub.subs[0].rcpts, []string{"bob@agency-b.govt.nz"}) || sub.subs[0].from != "ann@agency-a.govt.nz" {
		t.Fatalf("submissions %+v", sub.subs)
	}
	openSMIME(t, sub.subs[0].msg, fxID(t, "agency-b.govt.nz", "agency-b"))
	if len(hold.held) != 1 || hold.held[0].Code != "201" || hold.held[0].Domain != "agency-e.govt.nz" ||
		!slices.Equal(hold.held[0].Envelope.Rcpts, []string{"rita@agency-e.govt.nz"}) || !bytes.Contains(hold.msgs[0], []byte("Content-Type: text/plain")) {
		t.Errorf("held %+v\n%s", hold.held, hold.msgs)
	}
	if len(done) != 3 {
		t.Errorf("log lines %q", done)
	}
	// The retry has no MTA transaction: the main form is submitted too.
	sub2 := &fakeSubmitter{}
	if _, err := tx.CarryOut(context.Background(), forms, sub2, &fakeHold{}, false); err != nil || len(sub2.subs) != 2 {
		t.Errorf("mainByMTA false: %d submissions, %v", len(sub2.subs), err)
	}
	boom := errors.New("boom")
	if _, err := tx.CarryOut(context.Background(), forms, &fakeSubmitter{fail: boom}, &fakeHold{}, true); !errors.Is(err, boom) {
		t.Errorf("failed submission: %v", err)
	}
	if _, err := tx.CarryOut(context.Background(), forms, sub, &fakeHold{fail: boom}, true); !errors.Is(err, boom) {
		t.Errorf("failed hold: %v", err)
	}
	if _, err := tx.CarryOut(context.Background(), forms, sub, nil, true); !errors.Is(err, ErrNoHoldStore) {
		t.Errorf("no store: %v", err)
	}
	if _, err := tx.CarryOut(context.Background(), forms, nil, hold, true); !errors.Is(err, ErrNoSubmitter) {
		t.Errorf("no submitter: %v", err)
	}
}

// The step fails (the message is tempfailed, never sent in clear) when
// the certificate the engine chose left the store or the cipher is bogus.
func TestSMIMEStepFailsSafe(t *testing.T) {
	f := newSMIMEState(t, nil)
	tx, v := runOutbound(t, f.st, "[IN-CONFIDENCE] plans", "bob@agency-b.govt.nz")
	bad := v
	bad.Transforms = append([]policy.Transform(nil), v.Transforms...)
	bad.Transforms[0].Cert = strings.Repeat("0", 64)
	if _, err := tx.Forms(bad); !errors.Is(err, ErrSMIMEStep) {
		t.Errorf("unknown peer certificate: %v", err)
	}
	bad.Transforms[0] = v.Transforms[0]
	bad.Transforms[0].Cipher = "rot13"
	if _, err := tx.Forms(bad); !errors.Is(err, ErrSMIMEStep) {
		t.Errorf("bogus cipher: %v", err)
	}
	bad.Transforms[0] = v.Transforms[0]
	bad.Transforms[0].Signer = "nobody"
	if _, err := tx.Forms(bad); !errors.Is(err, ErrSMIMEStep) {
		t.Errorf("unknown signer: %v", err)
	}
}

// R62: a generated notice to a peer is signed and encrypted whole; it
// decrypts with the peer's key and holds the notice's text.
func TestSignEncryptMessage(t *testing.T) {
	f := newSMIMEState(t, nil)
	id := fxID(t, "agency-a.govt.nz", "agency-a-new")
	peer := fxID(t, "agency-b.govt.nz", "agency-b")
	notice := "From: Postmaster <postmaster@agency-a.govt.nz>\r\nTo: bob@agency-b.govt.nz\r\nSubject: DELIVERY RECEIPT\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nYour message was delivered.\r\n"
	out, err := f.st.SMIME.SignEncryptMessage([]byte(notice), policy.Transform{Kind: policy.TransformSMIMESignEncrypt,
		Domain: "agency-b.govt.nz", Signer: smime.Fingerprint(id.Cert), Cert: smime.Fingerprint(peer.Cert), Cipher: "aes256-cbc"})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	if !bytes.Contains(hdr, []byte("Subject: DELIVERY RECEIPT")) || !bytes.Contains(hdr, []byte("application/pkcs7-mime; smime-type=enveloped-data")) ||
		bytes.Contains(hdr, []byte("quoted-printable")) {
		t.Fatalf("headers:\n%s", hdr)
	}
	_, signed := openSMIME(t, out, peer)
	if !bytes.Contains(signed.Content, []byte("Your message was delivered.")) || !bytes.Contains(signed.Content, []byte("Content-Transfer-Encoding: quoted-printable")) {
		t.Errorf("inner entity %q", signed.Content)
	}
}

// FuzzParseCipher: any name gives a cipher this package encrypts with or
// an ErrSMIMEStep error, never a panic; the names it accepts round-trip.
func FuzzParseCipher(f *testing.F) {
	for _, s := range []string{"", "aes256-cbc", "aes128-cbc", "3des-cbc", "unknown", "AES256-CBC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := ParseCipher(name)
		if err != nil {
			if !errors.Is(err, ErrSMIMEStep) {
				t.Fatalf("%q: %v does not wrap ErrSMIMEStep", name, err)
			}
			return
		}
		if c == smime.CipherUnknown || (name != "" && c.String() != name) {
			t.Fatalf("%q gave %v", name, c)
		}
	})
}
