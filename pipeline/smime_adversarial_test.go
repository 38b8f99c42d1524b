package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Adversarial cases for the inbound S/MIME path (issue 14 point 4): what a
// hostile sender or a relay can do to a message, and what must still hold:
// a verdict for every message, no X-NZ-Secure-email on anything not
// verified, one warning, the same SMTP answer whatever failed inside.

// derOf is the DER inside an S/MIME entity's base64 body.
func derOf(t *testing.T, entity []byte) []byte {
	t.Helper()
	_, body, ok := bytes.Cut(entity, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("entity without a body")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pkcs7Entity wraps der as an application/pkcs7-mime entity with the
// given Content-Type parameters.
func pkcs7Entity(ctype string, der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: " + ctype + "\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// untagged fails when the delivered message's header carries
// X-NZ-Secure-email or smime=pass (a warning wrap attaches the original as
// received, forged headers and all, as message/rfc822: that is not the
// message's header).
func untagged(t *testing.T, name string, r smimeRun) {
	t.Helper()
	head, _, _ := strings.Cut(r.out, "\r\n\r\n")
	if strings.Contains(head, policy.SecureEmailHeader+":") || strings.Contains(head, "smime=pass") {
		t.Errorf("%s: delivered tagged although not verified (warning %q); reasons %q\n%.1500s", name, r.v.WarningCode, r.v.Reasons, r.out)
	}
}

// Hostile or broken PKCS#7: every one is delivered (accepted, no SMTP
// reply text, so the sender learns nothing of what failed inside: no
// decryption oracle, RFC 3218 section 2.3), with an UNVERIFIED warning,
// never tagged, never a crash. A forged X-NZ-Secure-email outside does not
// survive.
func TestAdvSMIMEInHostilePKCS7(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	ours := certOf(t, "agency-a-new")
	good := derOf(t, signEncrypt(t, innerText, b, false, ours))
	signed := derOf(t, signEntity(t, innerText, b, false))

	// A garbage content-encryption key: flip a byte inside the RSA
	// encryptedKey (the 256-byte OCTET STRING of a 2048-bit key).
	badCEK := bytes.Clone(good)
	if i := bytes.Index(badCEK, []byte{0x04, 0x82, 0x01, 0x00}); i > 0 {
		badCEK[i+4+100] ^= 0xff
	} else {
		t.Fatal("no RSA encryptedKey in the fixture")
	}
	// Garbage ciphertext (padding wrong after decryption).
	badCT := bytes.Clone(good)
	badCT[len(badCT)-20] ^= 0xff
	truncated := good[:len(good)/2]
	hugeLen := append([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, good[2:]...)
	// A certs-only signed-data (RFC 8551 section 3.6): no signer.
	certsOnly := certsOnlyDER(t, signed)

	cases := map[string][]byte{
		"garbage CEK":       pkcs7Entity("application/pkcs7-mime; smime-type=enveloped-data", badCEK),
		"garbage content":   pkcs7Entity("application/pkcs7-mime; smime-type=enveloped-data", badCT),
		"truncated DER":     pkcs7Entity("application/pkcs7-mime; smime-type=enveloped-data", truncated),
		"huge length":       pkcs7Entity("application/pkcs7-mime; smime-type=enveloped-data", hugeLen),
		"certs-only":        pkcs7Entity("application/pkcs7-mime; smime-type=certs-only", certsOnly),
		"base64 garbage":    []byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!$$$$====%%%%\r\nMII=Q\r\n"),
		"no smime-type":     pkcs7Entity("application/pkcs7-mime", signed),
		"lying smime-type":  pkcs7Entity("application/pkcs7-mime; smime-type=signed-data", badCEK),
		"x-pkcs7 lying":     pkcs7Entity("application/x-pkcs7-mime; smime-type=certs-only", badCT),
		"unknown CTE":       []byte("Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"),
		"empty body":        []byte("Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n"),
		"signed no signers": pkcs7Entity("application/pkcs7-mime; smime-type=signed-data", certsOnly),
	}
	ars := map[string]string{}
	for name, entity := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				head, _, _ := strings.Cut(ars[name], "\r\n\r\n")
				hs, _ := ReadRawHeaders(bufio.NewReader(strings.NewReader(head+"\r\n\r\n")), 1<<20)
				ars[name] = strings.Join(policy.HeaderValues(hs, policy.AuthResultsHeader), "\n")
			}()
			msg := outerMessage("officer@agency-b.govt.nz", entity)
			msg = append([]byte(policy.SecureEmailHeader+": compliant; classification=\"UNCLASSIFIED\"\r\n"), msg...)
			r := deliver(t, st, "officer@agency-b.govt.nz", msg)
			ars[name] = r.out
			if r.v.Action != policy.Accept || r.v.Reply != nil {
				t.Errorf("action %s reply %+v, want a plain accept (no oracle); reasons %q", r.v.Action, r.v.Reply, r.v.Reasons)
			}
			if name != "no smime-type" && r.v.WarningCode == "" {
				t.Errorf("no warning; reasons %q", r.v.Reasons)
			}
			untagged(t, name, r)
		})
	}
	// The key transport failing and the content failing read the same in
	// what the recipient gets (no padding oracle through the mailbox).
	if a, b := ars["garbage CEK"], ars["garbage content"]; a != b || strings.Contains(a, "rsa") || strings.Contains(a, "padding") {
		t.Errorf("the delivered Authentication-Results tell the failures apart:\n%s\n%s", a, b)
	}
}

// certsOnlyDER rebuilds signed-data der without its signerInfos: take the
// certificates a real signature carries and wrap them degenerate.
func certsOnlyDER(t *testing.T, signed []byte) []byte {
	t.Helper()
	s, err := smime.Verify(signed, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var certs []byte
	for _, c := range s.Certificates {
		certs = append(certs, c.Raw...)
	}
	tlv := func(tag byte, body []byte) []byte {
		n := len(body)
		switch {
		case n < 0x80:
			return append([]byte{tag, byte(n)}, body...)
		case n < 0x100:
			return append([]byte{tag, 0x81, byte(n)}, body...)
		default:
			return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, body...)
		}
	}
	oidData := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	oidSigned := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
	sd := []byte{0x02, 0x01, 0x01}         // version
	sd = append(sd, 0x31, 0x00)            // digestAlgorithms
	sd = append(sd, tlv(0x30, oidData)...) // encapContentInfo
	sd = append(sd, tlv(0xa0, certs)...)   // certificates
	sd = append(sd, 0x31, 0x00)            // signerInfos
	return tlv(0x30, append(oidSigned, tlv(0xa0, tlv(0x30, sd))...))
}

// Nested S/MIME deeper than one encryption and one signature: the layer
// left in place is delivered as is; it is unreadable, so the message is
// not tagged X-NZ-Secure-email (its classification is not known).
func TestAdvSMIMEInNested(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	ours := certOf(t, "agency-a-new")
	innermost := string(encryptOnly(t, innerText, ours))
	nested := signEncrypt(t, innermost, b, false, ours) // enveloped(signed(enveloped(text)))
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", nested))
	if r.v.Action != policy.Accept {
		t.Fatalf("nested: %s", r.v.Action)
	}
	if r.v.Classification == "UNCLASSIFIED" && len(r.v.Unreadable) == 0 {
		t.Errorf("nested: the inner encrypted layer was judged UNCLASSIFIED and readable; reasons %q", r.v.Reasons)
	}
	if head, _, _ := strings.Cut(r.out, "\r\n\r\n"); strings.Contains(head, policy.SecureEmailHeader+":") {
		t.Errorf("nested: tagged although the inner layer was not read:\n%s", head)
	}

	// signed(signed(text)): the second signature stays in place.
	twice := signEntity(t, string(signEntity(t, innerText, b, false)), b, false)
	r = deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", twice))
	if r.v.Action != policy.Accept {
		t.Fatalf("signed twice: %s", r.v.Action)
	}
	untagged(t, "signed twice", r)
}

// A valid agency-b signature on mail whose From: is another agency or our
// own domain (R47-R48; spoofing our domain with a peer's signature), or
// names two authors: UNVERIFIED 102, never tagged.
func TestAdvSMIMEInSignerFromMismatch(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	ours := certOf(t, "agency-a-new")
	for _, from := range []string{"ceo@agency-a.govt.nz", "officer@agency-c.govt.nz", "officer@agency-b.govt.nz.evil.example", "officer@sub.agency-b.govt.nz"} {
		r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage(from, signEncrypt(t, innerText, b, false, ours)))
		if r.v.WarningCode == "" {
			t.Errorf("From %s: no warning; reasons %q", from, r.v.Reasons)
		}
		untagged(t, "From "+from, r)
	}
	two := bytes.Replace(outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, ours)),
		[]byte("From: Sender <officer@agency-b.govt.nz>\r\n"), []byte("From: Sender <officer@agency-b.govt.nz>\r\nFrom: ceo@agency-a.govt.nz\r\n"), 1)
	r := deliver(t, st, "officer@agency-b.govt.nz", two)
	if r.v.WarningCode == "" {
		t.Errorf("two From: no warning; reasons %q", r.v.Reasons)
	}
	untagged(t, "two From", r)
}

// A valid signature over content that carries headers of its own (a
// second From:, a forged X-NZ-Secure-email, a [SECRET] Subject): only
// the inner Content-* headers are delivered; the inner Subject counts for
// the classification (fail safe: the worst marking seen).
func TestAdvSMIMEInInnerHeaders(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	inner := "From: ceo@agency-a.govt.nz\r\n" + policy.SecureEmailHeader + ": compliant; classification=\"UNCLASSIFIED\"\r\nSubject: [SECRET] the real subject\r\n" +
		"Content-Type: text/plain\r\n\r\nnothing marked here\r\n"
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEncrypt(t, inner, b, false, certOf(t, "agency-a-new"))))
	if r.v.Classification != "SECRET" {
		t.Errorf("classification %q, want SECRET from the inner Subject", r.v.Classification)
	}
	if strings.Contains(r.out, "ceo@agency-a.govt.nz") {
		t.Errorf("the inner From: is delivered:\n%s", r.out)
	}
	if n := strings.Count(r.out, policy.SecureEmailHeader+":"); n > 1 || strings.Contains(r.out, `classification="UNCLASSIFIED"`) {
		t.Errorf("%d tags, the forged inner one delivered:\n%s", n, r.out)
	}
}

// A detached signature whose content a relay re-encoded (8bit to
// quoted-printable), or whose boundary parameter names another boundary,
// or with a second signature part: never verified.
func TestAdvSMIMEInDetachedTampering(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	inner8 := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nKia ora, t\xc4\x81ngata [IN-CONFIDENCE].\r\n"
	sig, err := smime.Sign([]byte(inner8), b, true)
	if err != nil {
		t.Fatal(err)
	}
	reenc := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nKia ora, t=C4=81ngata [IN-CONFIDENCE].\r\n"
	cases := map[string][]byte{
		"re-encoded":     smime.DetachedEntity([]byte(reenc), sig, "bnd1"),
		"other boundary": bytes.Replace(smime.DetachedEntity([]byte(inner8), sig, "bnd1"), []byte(`boundary="bnd1"`), []byte(`boundary="bnd2"`), 1),
	}
	two := smime.DetachedEntity([]byte(inner8), sig, "bnd1")
	sigPart := two[bytes.Index(two, []byte("--bnd1\r\nContent-Type: application/pkcs7-signature")):bytes.LastIndex(two, []byte("--bnd1--"))]
	cases["two signatures"] = bytes.Replace(two, []byte("--bnd1--"), append(sigPart, []byte("--bnd1--")...), 1)
	for name, e := range cases {
		if name == "other boundary" && !bytes.Contains(e, []byte("bnd2")) {
			t.Fatalf("fixture: no boundary parameter replaced:\n%s", e)
		}
		r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", e))
		if r.v.Action != policy.Accept {
			t.Errorf("%s: %s", name, r.v.Action)
		}
		if name != "two signatures" {
			untagged(t, name, r)
			if r.v.WarningCode == "" {
				t.Errorf("%s: no warning; reasons %q", name, r.v.Reasons)
			}
		}
		if name != "other boundary" && r.v.Classification == "UNCLASSIFIED" {
			t.Errorf("%s: classification UNCLASSIFIED, the content says IN-CONFIDENCE", name)
		}
	}
}

// Signed only (not encrypted), by a valid DCA certificate of a domain
// that is not a participating (SEEMail) agency, carrying classified
// content over a session without TLS: M-IN 004 (classified from an
// insecure source), not tagged compliant.
func TestAdvSMIMEInSignedOnlyClassifiedInsecure(t *testing.T) {
	st, _ := smimeState(t, `outbound.seemail_domains=["agency-r.govt.nz"]`)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEntity(t, innerText, b, false)))
	v := r.v
	if v.Classification != "SECRET" || v.WarningCode != policy.WarningInsecureSource {
		t.Errorf("classification %q warning %q, want SECRET with 004; reasons %q", v.Classification, v.WarningCode, v.Reasons)
	}
	// smime=pass stays: the signature is good (RFC 7281); the tag does not.
	if head, _, _ := strings.Cut(r.out, "\r\n\r\n"); strings.Contains(head, policy.SecureEmailHeader+":") || !strings.Contains(head, "004") {
		t.Errorf("signed only, insecure source: tagged, or no 004 shown:\n%s", head)
	}
}

// A peer recipient given twice in RCPT TO (and once more in another case)
// beside an internet one and a held one: the S/MIME copy is submitted
// once, to that address once; the held entry names it once; the milter
// still deletes every spelling from its own transaction (the form's list
// keeps them all), so none leaves in the plain form.
func TestAdvSMIMEOutDuplicateRecipientSubmittedOnce(t *testing.T) {
	f := newSMIMEState(t, nil)
	rcpts := []string{"bob@agency-b.govt.nz", "x@gmail.example", "bob@agency-b.govt.nz", "BOB@agency-b.govt.nz", "rita@agency-e.govt.nz", "rita@agency-e.govt.nz"}
	tx, v := runOutbound(t, f.st, "lunch", rcpts...)
	forms, err := tx.Forms(v)
	if err != nil {
		t.Fatal(err)
	}
	var copyRcpts []string
	for _, c := range v.Copies {
		copyRcpts = append(copyRcpts, c.Rcpts...)
	}
	for _, r := range []string{"bob@agency-b.govt.nz", "BOB@agency-b.govt.nz", "rita@agency-e.govt.nz"} {
		if !slices.Contains(copyRcpts, r) {
			t.Errorf("%s not in the copies' lists (the milter would leave it in the plain transaction): %v", r, copyRcpts)
		}
	}
	sub, hold := &fakeSubmitter{}, &fakeHold{}
	if _, err := tx.CarryOut(context.Background(), forms, sub, hold, true); err != nil {
		t.Fatal(err)
	}
	if len(sub.subs) != 1 || !slices.Equal(sub.subs[0].rcpts, []string{"bob@agency-b.govt.nz"}) {
		t.Errorf("submissions %+v, want one to bob once", sub.subs)
	}
	if len(hold.held) != 1 || !slices.Equal(hold.held[0].Envelope.Rcpts, []string{"rita@agency-e.govt.nz"}) {
		t.Errorf("held %+v, want rita once", hold.held)
	}
}

// Our own certificates (R37, Table 1 sending column): the newest valid one
// signs; when the newest is revoked the older valid one does; with every
// one revoked the peer's recipients are held 211 (ours), with the status
// of ours unknown 212 — never sent unsigned or in clear.
func TestAdvSMIMEOutOwnIdentityStates(t *testing.T) {
	f := newSMIMEState(t, nil)
	rev := &fakeRevocation{revoked: map[string]bool{}, unknown: map[string]bool{}}
	f.st.SMIME.Validator.Revocation = rev
	newID, oldID := fxID(t, "agency-a.govt.nz", "agency-a-new"), fxID(t, "agency-a.govt.nz", "agency-a-old")
	signer := func() (policy.Verdict, string) {
		_, v := runOutbound(t, f.st, "plans", "bob@agency-b.govt.nz", "x@gmail.example")
		for _, c := range v.Copies {
			if c.Form == policy.FormSMIME {
				return v, c.Transforms[0].Signer
			}
		}
		return v, ""
	}
	if _, s := signer(); s != smime.Fingerprint(newID.Cert) {
		t.Errorf("both valid: signer %.16s, want the newest", s)
	}
	rev.revoked[newID.Cert.SerialNumber.String()] = true
	if _, s := signer(); s != smime.Fingerprint(oldID.Cert) {
		t.Errorf("newest revoked: signer %.16s, want the older valid one", s)
	}
	rev.revoked[oldID.Cert.SerialNumber.String()] = true
	v, s := signer()
	if s != "" || len(v.HeldRcpts()) != 1 || v.Copies[len(v.Copies)-1].Code != "211" {
		t.Errorf("all ours revoked: signer %q, %s", s, v.FormsSummary(policy.Envelope{Rcpts: []string{"bob@agency-b.govt.nz", "x@gmail.example"}}))
	}
	rev.revoked = map[string]bool{}
	rev.unknown[newID.Cert.SerialNumber.String()] = true
	rev.unknown[oldID.Cert.SerialNumber.String()] = true
	v, s = signer()
	if s != "" || len(v.HeldRcpts()) != 1 || v.Copies[len(v.Copies)-1].Code != "212" {
		t.Errorf("ours of unknown status: signer %q, %s", s, v.FormsSummary(policy.Envelope{Rcpts: []string{"bob@agency-b.govt.nz", "x@gmail.example"}}))
	}
	for _, r := range v.MainRcpts(policy.Envelope{Rcpts: []string{"bob@agency-b.govt.nz", "x@gmail.example"}}) {
		if r == "bob@agency-b.govt.nz" {
			t.Error("the peer recipient is in the plain transaction")
		}
	}
}

// A message too large for the S/MIME step: the step fails (the milter
// tempfails the transaction with a logged reason), it never produces a
// truncated or unencrypted form.
func TestAdvSMIMEOutTooLarge(t *testing.T) {
	f := newSMIMEState(t, nil)
	_, v := runOutbound(t, f.st, "plans", "bob@agency-b.govt.nz")
	if len(v.Transforms) == 0 || v.Transforms[0].Kind != policy.TransformSMIMESignEncrypt {
		t.Fatalf("transforms %v", kinds(v))
	}
	big := io.LimitReader(zeros{}, smime.MaxDER+1)
	_, err := SMIMEStep{Env: f.st.SMIME, Transform: v.Transforms[0]}.Run(Current{
		Headers: []policy.Header{{Name: "Content-Type", Value: " text/plain"}},
		Body:    func() io.Reader { return big },
	})
	if !errors.Is(err, ErrSMIMEStep) || !errors.Is(err, smime.ErrTooLarge) {
		t.Errorf("over MaxDER: %v, want ErrSMIMEStep and ErrTooLarge", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// The verified S/MIME path skipped the From: rules of R76 that do not
// depend on verification: a peer's valid signature on a From: whose
// display name names our domain (impersonation of our CEO by a peer's
// user) was delivered tagged compliant; so was mail signed with our own
// DCA certificate arriving from outside (a replay of our own signed
// content, its unsigned outer headers rewritten, or a loop). Both get 005
// now and no tag.
func TestAdvSMIMEInImpersonationAndReplay(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	ours := certOf(t, "agency-a-new")
	imp := bytes.Replace(outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, ours)),
		[]byte("From: Sender <officer@agency-b.govt.nz>"), []byte(`From: "ceo@agency-a.govt.nz" <officer@agency-b.govt.nz>`), 1)
	r := deliver(t, st, "officer@agency-b.govt.nz", imp)
	if r.v.WarningCode != policy.WarningOwnAgency {
		t.Errorf("display-name impersonation: warning %q, want 005; reasons %q", r.v.WarningCode, r.v.Reasons)
	}
	untaggedTag(t, "display-name impersonation", r)

	a := fxID(t, "agency-a.govt.nz", "agency-a-new")
	replay := outerMessage("ceo@agency-a.govt.nz", signEncrypt(t, innerText, a, false, ours))
	r = deliver(t, st, "someone@example.net", replay)
	if r.v.WarningCode != policy.WarningOwnAgency {
		t.Errorf("our own DCA inbound: warning %q, want 005; reasons %q", r.v.WarningCode, r.v.Reasons)
	}
	untaggedTag(t, "our own DCA inbound", r)
	if certs, _ := st.SMIME.Store.Certificates("agency-a.govt.nz"); len(certs) != 0 {
		t.Errorf("our own certificate learned as a peer: %d in the store for agency-a.govt.nz", len(certs))
	}

	// A display name naming another participating agency: 002.
	imp2 := bytes.Replace(outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, ours)),
		[]byte("From: Sender <officer@agency-b.govt.nz>"), []byte(`From: "minister@agency-c.govt.nz" <officer@agency-b.govt.nz>`), 1)
	r = deliver(t, st, "officer@agency-b.govt.nz", imp2)
	if r.v.WarningCode != policy.WarningForgedAgency {
		t.Errorf("display name of another agency: warning %q, want 002; reasons %q", r.v.WarningCode, r.v.Reasons)
	}
	untaggedTag(t, "display name of another agency", r)

	// The plain verified case is untouched.
	st, _ = smimeState(t)
	r = deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, b, false, ours)))
	checkVerified(t, r, st)
}

// untaggedTag fails when the delivered header carries X-NZ-Secure-email.
func untaggedTag(t *testing.T, name string, r smimeRun) {
	t.Helper()
	if head, _, _ := strings.Cut(r.out, "\r\n\r\n"); strings.Contains(head, policy.SecureEmailHeader+":") {
		t.Errorf("%s: tagged:\n%s", name, head)
	}
}

// Enveloped data with 100 recipient infos, ours the last: it opens (R38:
// every recipient info is looked at), verifies, and costs one RSA
// decryption, not a hundred.
func TestAdvSMIMEInManyRecipientInfos(t *testing.T) {
	st, _ := smimeState(t)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	var rcpts []*x509.Certificate
	for range 99 {
		rcpts = append(rcpts, b.Cert)
	}
	rcpts = append(rcpts, certOf(t, "agency-a-new"))
	der, err := smime.Encrypt(signEntity(t, innerText, b, false), rcpts, smime.CipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := deliver(t, st, "officer@agency-b.govt.nz", outerMessage("officer@agency-b.govt.nz", smime.EnvelopedEntity(der)))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100 recipient infos took %s", d)
	}
	checkVerified(t, r, st)
}

// removableHold is fakeHold with Remove, as heldmail.Store has.
type removableHold struct {
	fakeHold
	removed []string
}

func (h *removableHold) Remove(id string) error {
	h.removed = append(h.removed, id)
	return nil
}

// The milter path: a held recipient stored, then the peer's copy fails
// to submit: the transaction is tempfailed and the client sends it all
// again, so the entry just stored is removed (else one more entry per
// client retry, each sent once the certificate is good). A store without
// Remove keeps the old behaviour (a duplicate, never a loss).
func TestAdvSMIMECarryOutUndoesHoldOnFailure(t *testing.T) {
	f := newSMIMEState(t, nil)
	tx, v := runOutbound(t, f.st, "lunch", "bob@agency-b.govt.nz", "x@gmail.example", "rita@agency-e.govt.nz")
	forms, err := tx.Forms(v)
	if err != nil {
		t.Fatal(err)
	}
	hold := &removableHold{}
	done, err := tx.CarryOut(context.Background(), forms, &fakeSubmitter{fail: errors.New("MTA down")}, hold, true)
	if err == nil {
		t.Fatal("no error with the submitter down")
	}
	if len(hold.held) != 1 || !slices.Equal(hold.removed, []string{"H1"}) {
		t.Errorf("stored %d, removed %v, want the one stored entry removed; log %q", len(hold.held), hold.removed, done)
	}
	hold = &removableHold{}
	if _, err := tx.CarryOut(context.Background(), forms, &fakeSubmitter{}, hold, true); err != nil || len(hold.removed) != 0 {
		t.Errorf("success: %v, removed %v", err, hold.removed)
	}
}
