package smime

import (
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
)

const fixtures = "../testdata/smime"

func fixture(name string) string { return filepath.Join(fixtures, name) }

func loadID(t testing.TB, domain, name string) *Identity {
	t.Helper()
	id, err := LoadIdentity(domain, fixture(name+".crt"), fixture(name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func loadCert(t testing.TB, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

func anchors(t testing.TB) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(loadCert(t, "ca"))
	return p
}

// needTool returns the path of an interoperability tool. In CI (CI set) a
// missing tool fails the test: .ci/run installs openssl and gpgsm, and a
// skipped interoperability suite must not pass as a green run.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (CI must install it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
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

const entityText = "Content-Type: text/plain; charset=utf-8\r\n\r\nKia ora, this is [IN-CONFIDENCE] gateway to gateway.\r\n"

func TestEncryptDecryptRoundTrip(t *testing.T) {
	a := loadID(t, "agency-a.govt.nz", "agency-a-new")
	for _, c := range []Cipher{Cipher3DES, CipherAES128, CipherAES256} {
		t.Run(c.String(), func(t *testing.T) {
			der, err := Encrypt([]byte(entityText), []*x509.Certificate{a.Cert}, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decrypt(der, []*Identity{a})
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Content) != entityText || got.By != a {
				t.Fatalf("decrypted %q by %v", got.Content, got.By)
			}
		})
	}
}

// R38: every valid key of ours decrypts; R80: mail for nobody here is
// ErrNotForUs.
func TestDecryptWithAnyOfOurKeys(t *testing.T) {
	old := loadID(t, "agency-a.govt.nz", "agency-a-old")
	cur := loadID(t, "agency-a.govt.nz", "agency-a-new")
	b := loadID(t, "agency-b.govt.nz", "agency-b")
	der, err := Encrypt([]byte(entityText), []*x509.Certificate{old.Cert}, CipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(der, []*Identity{cur, old})
	if err != nil || got.By != old {
		t.Fatalf("decrypt with the older key: %v, by %v", err, got)
	}
	if _, err := Decrypt(der, []*Identity{b}); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("not for us: %v, want ErrNotForUs", err)
	}
}

func TestMalformedInputsGiveErrors(t *testing.T) {
	a := loadID(t, "agency-a.govt.nz", "agency-a-new")
	for name, in := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("not a PKCS#7 blob at all"),
		"truncated": func() []byte {
			d, _ := Encrypt([]byte(entityText), []*x509.Certificate{a.Cert}, CipherAES256)
			return d[:len(d)/2]
		}(),
		"sequence": {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x80},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decrypt(in, []*Identity{a}); err == nil {
				t.Error("Decrypt: no error")
			}
			if _, err := Verify(in, nil, nil); err == nil {
				t.Error("Verify: no error")
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	a := loadID(t, "agency-a.govt.nz", "agency-a-new")
	for _, detached := range []bool{false, true} {
		der, err := Sign([]byte(entityText), a, detached)
		if err != nil {
			t.Fatal(err)
		}
		var content []byte
		if detached {
			content = []byte(entityText)
		}
		s, err := Verify(der, content, nil)
		if err != nil {
			t.Fatalf("detached %v: %v", detached, err)
		}
		if string(s.Content) != entityText || !s.Signer.Equal(a.Cert) {
			t.Fatalf("detached %v: content %q signer %v", detached, s.Content, s.Signer.Subject)
		}
		if s.Capabilities.Strongest() != CipherAES256 {
			t.Errorf("R71: our capabilities %v do not announce AES-256", s.Capabilities)
		}
		if detached {
			if _, err := Verify(der, []byte(entityText+"tampered"), nil); !errors.Is(err, ErrSignature) {
				t.Errorf("tampered detached content: %v, want ErrSignature", err)
			}
		}
	}
}

func TestCapabilitiesStrongest(t *testing.T) {
	for _, c := range []struct {
		caps Capabilities
		want Cipher
	}{
		{nil, CipherAES256}, // nothing known: AES-256 (RFC 8551 2.7.1.2)
		{Capabilities{oidDESEDE3CBC}, Cipher3DES},
		{Capabilities{oidDESEDE3CBC, oidAES128CBC}, CipherAES128},
		{Capabilities{oidAES128CBC, oidAES256CBC, oidDESEDE3CBC}, CipherAES256},
		{Capabilities{oidSHA256}, Cipher3DES}, // no cipher we know: the mandatory one
	} {
		if got := c.caps.Strongest(); got != c.want {
			t.Errorf("%v: %v, want %v", c.caps, got, c.want)
		}
		der, err := c.caps.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCapabilities(der)
		if err != nil || back.String() != c.caps.String() {
			t.Errorf("round trip %v: %v %v", c.caps, back, err)
		}
	}
}

// fakeRevocation is a RevocationChecker over a set of revoked serials.
type fakeRevocation struct {
	revoked map[string]bool
	unknown bool
}

func (f fakeRevocation) Status(_ context.Context, c, _ *x509.Certificate) (Revocation, error) {
	if f.unknown {
		return RevocationUnknown, errors.New("distribution point unreachable")
	}
	if f.revoked[c.SerialNumber.String()] {
		return Revoked, nil
	}
	return NotRevoked, nil
}

// Table 1, R36-R37, R45-R47: each fixture's state.
func TestValidate(t *testing.T) {
	revoked := loadCert(t, "revoked")
	v := &Validator{Anchors: anchors(t), Revocation: fakeRevocation{revoked: map[string]bool{revoked.SerialNumber.String(): true}}}
	for _, c := range []struct {
		name, domain string
		want         State
	}{
		{"agency-a-new", "agency-a.govt.nz", StateValid},
		{"agency-a-old", "agency-a.govt.nz", StateValid},
		{"agency-b", "agency-b.govt.nz", StateValid},
		{"agency-b", "agency-a.govt.nz", StateMisnamed}, // R47: the domain must match
		{"revoked", "agency-r.govt.nz", StateRevoked},
		{"expired", "agency-e.govt.nz", StateExpired},
		{"future", "agency-f.govt.nz", StateNotYetValid},
		{"untrusted", "agency-u.govt.nz", StateUntrusted},
		{"ca", "", StateUntrusted}, // a CA certificate is no email-protection leaf
	} {
		t.Run(c.name+"/"+c.domain, func(t *testing.T) {
			got := v.Validate(context.Background(), loadCert(t, c.name), c.domain, nil)
			if got.State != c.want {
				t.Fatalf("state %q (%s), want %q", got.State, got.Reason, c.want)
			}
		})
	}
	unknown := &Validator{Anchors: anchors(t), Revocation: fakeRevocation{unknown: true}}
	if got := unknown.Validate(context.Background(), loadCert(t, "agency-b"), "agency-b.govt.nz", nil); got.State != StateUnknown {
		t.Errorf("CRL unreachable: %q, want %q", got.State, StateUnknown)
	}
	// R59: a bypassed certificate is not checked for revocation.
	bypass := &Validator{Anchors: anchors(t), Revocation: v.Revocation, Bypass: []string{Fingerprint(revoked)}}
	if got := bypass.Validate(context.Background(), revoked, "agency-r.govt.nz", nil); got.State != StateValid {
		t.Errorf("bypassed revoked certificate: %q, want valid", got.State)
	}
}

// R37: the newest valid certificate signs.
func TestNewestSigns(t *testing.T) {
	v := &Validator{Anchors: anchors(t), Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }}
	old := loadID(t, "agency-a.govt.nz", "agency-a-old")
	cur := loadID(t, "agency-a.govt.nz", "agency-a-new")
	got, err := Newest(context.Background(), v, []*Identity{old, cur}, "agency-a.govt.nz")
	if err != nil || got != cur {
		t.Fatalf("newest: %v %v", got, err)
	}
	// 2046.5: the new one is still valid, the old one has expired.
	v.Now = func() time.Time { return time.Date(2046, 6, 1, 0, 0, 0, 0, time.UTC) }
	if got, err := Newest(context.Background(), v, []*Identity{old, cur}, "agency-a.govt.nz"); err != nil || got != cur {
		t.Fatalf("after the old one expired: %v %v", got, err)
	}
	v.Now = func() time.Time { return time.Date(2048, 1, 1, 0, 0, 0, 0, time.UTC) }
	if _, err := Newest(context.Background(), v, []*Identity{old, cur}, "agency-a.govt.nz"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("both expired: %v, want ErrNoIdentity", err)
	}
}

func TestLoadIdentityKeyMismatch(t *testing.T) {
	if _, err := LoadIdentity("agency-a.govt.nz", fixture("agency-a-new.crt"), fixture("agency-b.key")); err == nil {
		t.Fatal("a key that does not match the certificate was accepted")
	}
}

// Interoperability with openssl cms, both ways (issue 14).
func TestOpenSSLInterop(t *testing.T) {
	openssl := needTool(t, "openssl")
	dir := t.TempDir()
	a := loadID(t, "agency-a.govt.nz", "agency-a-new")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := write("in.txt", []byte(entityText))

	t.Run("we encrypt, openssl decrypts", func(t *testing.T) {
		for _, c := range []Cipher{Cipher3DES, CipherAES128, CipherAES256} {
			der, err := Encrypt([]byte(entityText), []*x509.Certificate{a.Cert}, c)
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, der, openssl, "cms", "-decrypt", "-inform", "DER", "-binary", "-recip", fixture("agency-a-new.crt"), "-inkey", fixture("agency-a-new.key"))
			if string(out) != entityText {
				t.Fatalf("%v: openssl decrypted %q", c, out)
			}
		}
	})
	t.Run("openssl encrypts, we decrypt", func(t *testing.T) {
		for _, alg := range []string{"-des3", "-aes128", "-aes256"} {
			for _, stream := range []bool{false, true} {
				args := []string{"cms", "-encrypt", "-binary", alg, "-outform", "DER", "-in", in}
				if stream {
					args = append(args, "-stream") // BER, indefinite lengths
				}
				der := run(t, nil, openssl, append(args, fixture("agency-a-new.crt"))...)
				got, err := Decrypt(der, []*Identity{a})
				if err != nil || string(got.Content) != entityText {
					t.Fatalf("%s stream=%v: %v %+v", alg, stream, err, got)
				}
			}
		}
	})
	t.Run("we sign, openssl verifies", func(t *testing.T) {
		for _, detached := range []bool{false, true} {
			der, err := Sign([]byte(entityText), a, detached)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"cms", "-verify", "-inform", "DER", "-binary", "-CAfile", fixture("ca.crt"), "-purpose", "smimesign"}
			if detached {
				args = append(args, "-content", in)
			}
			out := run(t, der, openssl, args...)
			if string(out) != entityText {
				t.Fatalf("detached %v: openssl verified content %q", detached, out)
			}
		}
	})
	t.Run("openssl signs, we verify", func(t *testing.T) {
		for _, detached := range []bool{false, true} {
			args := []string{"cms", "-sign", "-binary", "-outform", "DER", "-in", in, "-signer", fixture("agency-a-new.crt"), "-inkey", fixture("agency-a-new.key")}
			var content []byte
			if detached {
				content = []byte(entityText)
			} else {
				args = append(args, "-nodetach")
			}
			der := run(t, nil, openssl, args...)
			s, err := Verify(der, content, nil)
			if err != nil || string(s.Content) != entityText || !s.Signer.Equal(a.Cert) {
				t.Fatalf("detached %v: %v", detached, err)
			}
			if len(s.Capabilities) == 0 {
				t.Errorf("detached %v: openssl's SMIMECapabilities not read (R84)", detached)
			}
			v := &Validator{Anchors: anchors(t)}
			if st := v.Validate(context.Background(), s.Signer, "agency-a.govt.nz", s.Certificates); st.State != StateValid {
				t.Errorf("signer state %q: %s", st.State, st.Reason)
			}
		}
	})
	t.Run("sign then encrypt, both ways", func(t *testing.T) {
		b := loadID(t, "agency-b.govt.nz", "agency-b")
		sig, err := Sign([]byte(entityText), a, false)
		if err != nil {
			t.Fatal(err)
		}
		env, err := Encrypt(SignedEntity(sig), []*x509.Certificate{b.Cert}, CipherAES256)
		if err != nil {
			t.Fatal(err)
		}
		inner := run(t, env, openssl, "cms", "-decrypt", "-inform", "DER", "-recip", fixture("agency-b.crt"), "-inkey", fixture("agency-b.key"))
		out := run(t, inner, openssl, "cms", "-verify", "-inform", "SMIME", "-binary", "-CAfile", fixture("ca.crt"), "-purpose", "smimesign")
		if string(out) != entityText {
			t.Fatalf("openssl decrypt+verify of ours: %q", out)
		}
	})
}
