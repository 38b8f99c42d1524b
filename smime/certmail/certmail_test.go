package certmail

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

const fixtures = "../../testdata/smime"

func cert(t testing.TB, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

func identity(t testing.TB, domain, name string) *smime.Identity {
	t.Helper()
	id, err := smime.LoadIdentity(domain, filepath.Join(fixtures, name+".crt"), filepath.Join(fixtures, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func b64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

// answer is a message with one attachment part (headers given) and body.
func answer(partHeaders, body string) []byte {
	return []byte("From: domain-confidentiality-authority@agency-b.govt.nz\r\nTo: domain-confidentiality-authority@agency-a.govt.nz\r\n" +
		"Subject: cert\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nhere it is\r\n" +
		"--b1\r\n" + partHeaders + "\r\n" + body + "--b1--\r\n")
}

func fingerprints(cs []*x509.Certificate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, smime.Fingerprint(c))
	}
	return out
}

// R44: ".cer or .crt OR a PKCS#7 container e.g. .p7b or .p7c", DER or PEM.
func TestParseAnswerForms(t *testing.T) {
	b := cert(t, "agency-b")
	ca := cert(t, "ca")
	p7c, err := CertsOnly([]*x509.Certificate{b, ca})
	if err != nil {
		t.Fatal(err)
	}
	// CRLF, as the MTA hands a message to the milter.
	crlf := func(b []byte) string { return strings.ReplaceAll(string(b), "\n", "\r\n") }
	pemB := crlf(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Raw}))
	pemP7 := crlf(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: p7c}))
	cases := []struct {
		name, hdr, body string
		want            int
	}{
		{"cer DER base64", "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"dca.cer\"\r\n", b64(b.Raw), 1},
		{"crt PEM 7bit", "Content-Type: application/octet-stream; name=\"dca.crt\"\r\n", pemB, 1},
		{"pkix-cert type, no name", "Content-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\n", b64(b.Raw), 1},
		{"p7c certs-only", "Content-Type: application/pkcs7-mime; smime-type=certs-only; name=\"certs.p7c\"\r\nContent-Transfer-Encoding: base64\r\n", b64(p7c), 2},
		{"p7b PEM", "Content-Type: application/x-pkcs7-certificates\r\nContent-Disposition: attachment; filename=\"chain.P7B\"\r\n", pemP7, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseAnswer(answer(c.hdr, c.body))
			if err != nil {
				t.Fatalf("ParseAnswer: %v (%+v)", err, a)
			}
			if len(a.Certs) != c.want || smime.Fingerprint(a.Certs[0]) != smime.Fingerprint(b) {
				t.Errorf("certs %v, want %d starting with agency-b", fingerprints(a.Certs), c.want)
			}
		})
	}
}

// The MIME walk (message package): a multipart nested in a multipart (as
// in a signed answer), a boundary that is a prefix of the inner one, LF
// line ends, and a last part without its close delimiter (read, and said).
func TestParseAnswerStructure(t *testing.T) {
	b := cert(t, "agency-b")
	cer := "Content-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.cer\"\r\n\r\n" + b64(b.Raw)
	nested := "From: x@agency-b.govt.nz\r\nContent-Type: multipart/signed; boundary=\"s\"; protocol=\"application/pkcs7-signature\"\r\n\r\n" +
		"--s\r\nContent-Type: multipart/mixed; boundary=\"s2\"\r\n\r\n--s2\r\nContent-Type: text/plain\r\n\r\nhi\r\n--s2\r\n" + cer + "--s2--\r\n" +
		"--s\r\nContent-Type: application/pkcs7-signature\r\n\r\nsig\r\n--s--\r\n"
	for name, msg := range map[string]string{
		"nested":   nested,
		"LF":       strings.ReplaceAll(nested, "\r\n", "\n"),
		"unclosed": strings.TrimSuffix(string(answer(strings.SplitN(cer, "\r\n\r\n", 2)[0]+"\r\n", b64(b.Raw))), "--b1--\r\n"),
	} {
		a, err := ParseAnswer([]byte(msg))
		if err != nil || len(a.Certs) != 1 || smime.Fingerprint(a.Certs[0]) != smime.Fingerprint(b) {
			t.Errorf("%s: %v %+v", name, err, a)
		}
		if name == "unclosed" && (len(a.Problems) == 0 || !strings.Contains(a.Problems[0], "no closing delimiter")) {
			t.Errorf("unclosed: problems %q", a.Problems)
		}
	}
}

// Garbage, an empty part, a part that is not a certificate, oversized
// input: no certificate and no panic; the problem is reported.
func TestParseAnswerBad(t *testing.T) {
	cer := "Content-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.cer\"\r\n"
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"garbage DER", answer(cer, b64([]byte("\x30\x82\xff\xffnot a certificate"))), ErrNoCerts},
		{"bad base64", answer(cer, "!!!! not base64 ****\r\n"), ErrNoCerts},
		{"empty", answer(cer, ""), ErrNoCerts},
		{"truncated p7c", answer("Content-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n", b64([]byte{0x30, 0x80, 0x06, 0x09, 0x2a})), ErrNoCerts},
		{"no attachment", answer("Content-Type: text/plain\r\n", "just text\r\n"), ErrNoCerts},
		{"not MIME at all", []byte("no header block"), ErrMalformed},
		{"oversized answer", append(answer(cer, ""), bytes.Repeat([]byte("x"), MaxAnswer)...), ErrTooLarge},
		{"oversized attachment", answer(cer, b64(bytes.Repeat([]byte{0x30}, MaxAttachment+1))), ErrNoCerts},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseAnswer(c.msg)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if len(a.Certs) != 0 {
				t.Errorf("certs %v from a bad answer", fingerprints(a.Certs))
			}
		})
	}
	// The oversized attachment and the garbage say why.
	a, _ := ParseAnswer(answer(cer, b64(bytes.Repeat([]byte{0x30}, MaxAttachment+1))))
	if a.Attachments != 1 || len(a.Problems) != 1 || !strings.Contains(a.Problems[0], "not read") {
		t.Errorf("oversized: %+v", a)
	}
}

// Deep nesting and many parts are bounded.
func TestParseAnswerBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: x@agency-b.govt.nz\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := 0; i < maxParts+10; i++ {
		b.WriteString("--p\r\nContent-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(cert(t, "agency-b").Raw))
	}
	b.WriteString("--p--\r\n")
	a, err := ParseAnswer([]byte(b.String()))
	if err != nil || len(a.Certs) != 1 {
		t.Fatalf("duplicates: %v %d certs", err, len(a.Certs))
	}
	if !strings.Contains(strings.Join(a.Problems, ";"), "parts") {
		t.Errorf("no problem for too many parts: %q", a.Problems)
	}
	deep := "From: x@agency-b.govt.nz\r\n"
	for i := 0; i < maxDepth+3; i++ {
		deep += "Content-Type: multipart/mixed; boundary=\"d" + string(rune('a'+i)) + "\"\r\n\r\n--d" + string(rune('a'+i)) + "\r\n"
	}
	deep += "Content-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(cert(t, "agency-b").Raw)
	if a, err := ParseAnswer([]byte(deep)); !errors.Is(err, ErrNoCerts) || len(a.Certs) != 0 {
		t.Errorf("too deep: %v %+v", err, a)
	}
}

// The answer we send parses back to the same certificates, inside the
// multipart/signed layer a gateway without S/MIME still reads; it is
// signed by the identity given and the signature verifies.
func TestAnswerRoundTrip(t *testing.T) {
	id := identity(t, "agency-a.govt.nz", "agency-a-new")
	old := cert(t, "agency-a-old")
	a := AnswerMsg{OurDomain: "Agency-A.govt.nz", To: "domain-confidentiality-authority@agency-b.govt.nz",
		Target: DCAAddress("agency-a.govt.nz"), InReplyTo: "<r1@b>", Certs: []*x509.Certificate{id.Cert, old}, Chain: id.Chain}
	hs, err := a.Headers()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hs {
		got[h.Name] = h.Value
	}
	if got["From"] != "domain-confidentiality-authority@agency-a.govt.nz" || got["To"] != a.To ||
		got["Auto-Submitted"] != "auto-replied" || got["In-Reply-To"] != "<r1@b>" || !strings.Contains(got["Subject"], "domain-confidentiality-authority@agency-a.govt.nz") {
		t.Errorf("headers %v", got)
	}
	content, err := a.Content()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Signed(hs, content, id)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := ParseAnswer(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{smime.Fingerprint(id.Cert), smime.Fingerprint(old)}
	for _, c := range id.Chain {
		want = append(want, smime.Fingerprint(c))
	}
	if g := fingerprints(ans.Certs); strings.Join(g, ",") != strings.Join(want, ",") {
		t.Errorf("parsed %v, want %v (newest first, then the others, then the chain)", g, want)
	}
	// The signature: verify the detached content with smime.Verify.
	verifySigned(t, msg, id)
	if _, err := (AnswerMsg{OurDomain: "x"}).Content(); !errors.Is(err, ErrNoCerts) {
		t.Errorf("an answer without certificates: %v", err)
	}
}

// verifySigned splits the multipart/signed message and checks the
// signature is by id over the first part.
func verifySigned(t *testing.T, msg []byte, id *smime.Identity) {
	t.Helper()
	s := string(msg)
	i := strings.Index(s, "boundary=\"")
	if i < 0 {
		t.Fatalf("no boundary in %q", s[:min(400, len(s))])
	}
	bnd := s[i+len("boundary=\""):]
	bnd = bnd[:strings.IndexByte(bnd, '"')]
	parts := strings.Split(s, "--"+bnd)
	if len(parts) < 4 {
		t.Fatalf("multipart/signed with %d parts", len(parts)-2)
	}
	content := strings.TrimPrefix(parts[1], "\r\n")
	content = strings.TrimSuffix(content, "\r\n")
	sigPart := parts[2]
	_, sigB64, _ := strings.Cut(sigPart, "\r\n\r\n")
	sig, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sigB64), ""))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := smime.Verify(sig, []byte(content), nil)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	if !sd.Signer.Equal(id.Cert) {
		t.Errorf("signed by %s", sd.Signer.Subject)
	}
}

// R44: the request goes to domain-certificate-request@PEER with the target
// certificate's address as the Subject, from our DCA address, signed; no
// Auto-Submitted (it asks for an answer).
func TestRequestFormat(t *testing.T) {
	id := identity(t, "agency-a.govt.nz", "agency-a-new")
	r := Request{OurDomain: "agency-a.govt.nz", PeerDomain: "Agency-B.govt.nz", Hostname: "mx.agency-a.govt.nz", Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	hs, err := r.Headers()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Signed(hs, r.Content(), id)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, want := range []string{
		"From: domain-confidentiality-authority@agency-a.govt.nz\r\n",
		"To: domain-certificate-request@agency-b.govt.nz\r\n",
		"Subject: domain-confidentiality-authority@agency-b.govt.nz\r\n",
		"Date: Tue, 01 Dec 2026 00:00:00 +0000\r\n",
		"@mx.agency-a.govt.nz>\r\n",
		"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"",
	} {
		if !strings.Contains(head+"\r\n", want) {
			t.Errorf("request header block lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "Auto-Submitted") {
		t.Errorf("the request is marked Auto-Submitted: a responder would not answer it")
	}
	verifySigned(t, msg, id)
	if _, err := Signed(hs, r.Content(), nil); !errors.Is(err, smime.ErrNoIdentity) {
		t.Errorf("signing without an identity: %v", err)
	}
	// A header value cannot inject a field.
	if p := Plain([]Header{{"Subject", "a\r\nBcc: x@y"}}, nil); strings.Contains(string(p), "\r\nBcc:") {
		t.Errorf("header injection: %q", p)
	}
}

// One message per key per interval; keys apart; Forget lets one through.
func TestLimiter(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := &Limiter{Now: func() time.Time { return now }}
	if !l.Allow("cert-request:agency-b.govt.nz", time.Hour) {
		t.Fatal("first request refused")
	}
	if l.Allow("cert-request:AGENCY-B.govt.nz", time.Hour) {
		t.Error("second request within the interval allowed (case folded)")
	}
	if !l.Allow("cert-request:agency-c.govt.nz", time.Hour) {
		t.Error("another domain refused")
	}
	now = now.Add(59 * time.Minute)
	if l.Allow("cert-request:agency-b.govt.nz", time.Hour) {
		t.Error("allowed before the interval passed")
	}
	now = now.Add(time.Minute)
	if !l.Allow("cert-request:agency-b.govt.nz", time.Hour) {
		t.Error("refused after the interval")
	}
	l.Forget("cert-request:agency-b.govt.nz")
	if !l.Allow("cert-request:agency-b.govt.nz", time.Hour) {
		t.Error("refused after Forget")
	}
	// Bounded: past maxKeys fresh keys, a new key is refused (fail safe)
	// until old ones age out.
	l = &Limiter{Now: func() time.Time { return now }}
	for i := 0; len(l.last) < maxKeys; i++ {
		l.Allow("k"+time.Duration(i).String(), time.Hour)
	}
	if l.Allow("one-more", time.Hour) {
		t.Error("a key past the bound allowed while none aged out")
	}
	now = now.Add(2 * time.Hour)
	if !l.Allow("one-more", time.Hour) || len(l.last) > maxKeys {
		t.Errorf("after ageing: %d keys", len(l.last))
	}
}

func TestAddresses(t *testing.T) {
	if RequestAddress("Agency-B.govt.nz") != "domain-certificate-request@agency-b.govt.nz" ||
		DCAAddress("Agency-B.govt.nz") != "domain-confidentiality-authority@agency-b.govt.nz" {
		t.Error(RequestAddress("Agency-B.govt.nz"), DCAAddress("Agency-B.govt.nz"))
	}
}

func FuzzParseAnswer(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(fixtures, "agency-b.crt"))
	if err != nil {
		f.Fatal(err)
	}
	cs, _ := smime.ParseCertificatesPEM(b)
	p7c, _ := CertsOnly(cs)
	f.Add(answer("Content-Type: application/pkix-cert\r\nContent-Transfer-Encoding: base64\r\n", b64(cs[0].Raw)))
	f.Add(answer("Content-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n", b64(p7c)))
	f.Add(answer("Content-Type: application/octet-stream; name=a.crt\r\n", string(b)))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // keep each iteration fast
		}
		a, err := ParseAnswer(data)
		if err == nil && len(a.Certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		if len(a.Certs) > MaxCerts {
			t.Fatalf("%d certificates", len(a.Certs))
		}
	})
}
