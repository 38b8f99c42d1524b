package smime

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gpgsmHome is a private GnuPG home for gpgsm, the second independent
// S/MIME implementation (issue 14): it trusts the test CA, holds the
// public certificate of agency-a (us) and the key of agency-b (the peer).
type gpgsmHome struct {
	t    *testing.T
	bin  string
	home string
}

const gpgsmPass = "interop"

func newGpgsmHome(t *testing.T) *gpgsmHome {
	t.Helper()
	bin := needTool(t, "gpgsm")
	openssl := needTool(t, "openssl")
	// A short path: gpg-agent's socket lives in the home directory and a
	// Unix socket path must fit in 108 bytes.
	home, err := os.MkdirTemp("/tmp", "nzsm-gpgsm-")
	if err != nil {
		t.Fatal(err)
	}
	g := &gpgsmHome{t: t, bin: bin, home: home}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("gpg-agent.conf", "allow-loopback-pinentry\n")
	// The CRL is not reachable from gpgsm here (dirmngr); our own
	// revocation checks are tested on their own.
	write("gpgsm.conf", "disable-crl-checks\ndisable-policy-checks\n")
	g.run(nil, "--import", fixture("ca.crt"), fixture("agency-a-new.crt"))
	fpr := strings.TrimSpace(string(run(t, nil, openssl, "x509", "-in", fixture("ca.crt"), "-noout", "-fingerprint", "-sha1")))
	_, fpr, _ = strings.Cut(fpr, "=")
	write("trustlist.txt", fpr+" S relax\n")
	// gpgsm 2.2 reads PKCS #12 with 3DES bags and a SHA-1 MAC only, and
	// rejects about one such file in 300 that openssl writes ("data error
	// at shrouded_key_bag.decrypted-text"; which ones depends on the
	// random salt), as tests/e2e/lib.sh gpgsm_import_key says: a fresh
	// export of the same key imports, so up to five are tried.
	p12 := filepath.Join(home, "b.p12")
	var errs []string
	for attempt := 1; ; attempt++ {
		run(t, nil, openssl, "pkcs12", "-export", "-in", fixture("agency-b.crt"), "-inkey", fixture("agency-b.key"),
			"-passout", "pass:"+gpgsmPass, "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", p12)
		_, stderr, err := g.try([]byte(gpgsmPass+"\n"), "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12)
		if err == nil {
			break
		}
		errs = append(errs, fmt.Sprintf("attempt %d: %v\n%s", attempt, err, stderr))
		if attempt == 5 {
			t.Fatalf("gpgsm imports none of five PKCS #12 exports of agency-b's key:\n%s", strings.Join(errs, "\n"))
		}
	}
	return g
}

// try runs gpgsm in the private home and returns its standard output and
// standard error, and its error.
func (g *gpgsmHome) try(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(g.bin, append([]string{"--batch", "--status-fd", "2"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// run runs gpgsm in the private home and returns its standard output.
func (g *gpgsmHome) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	out, errb, err := g.try(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpgsm %s: %v\n%s", strings.Join(args, " "), err, errb)
	}
	if len(args) > 0 && args[0] == "--verify" && !bytes.Contains(errb, []byte("[GNUPG:] GOODSIG")) {
		g.t.Fatalf("gpgsm %s: no GOODSIG\n%s", strings.Join(args, " "), errb)
	}
	return out
}

func (g *gpgsmHome) file(name string, data []byte) string {
	p := filepath.Join(g.home, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

const peerB = "domain-confidentiality-authority@agency-b.govt.nz"
const usA = "domain-confidentiality-authority@agency-a.govt.nz"

// Interoperability with GnuPG's gpgsm, both ways, opaque and detached
// signatures (issue 14).
func TestGpgsmInterop(t *testing.T) {
	g := newGpgsmHome(t)
	a := loadID(t, "agency-a.govt.nz", "agency-a-new")
	b := loadCert(t, "agency-b")
	in := g.file("in.txt", []byte(entityText))
	pass := []byte(gpgsmPass + "\n")

	t.Run("we sign and encrypt, gpgsm decrypts and verifies", func(t *testing.T) {
		for _, c := range []Cipher{Cipher3DES, CipherAES128, CipherAES256} {
			sig, err := Sign([]byte(entityText), a, false)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Encrypt(sig, []*x509.Certificate{b}, c)
			if err != nil {
				t.Fatal(err)
			}
			inner := g.run(pass, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt", g.file("env.der", env))
			out := g.run(nil, "--verify", "--output", "-", g.file("sig.der", inner))
			if string(out) != entityText {
				t.Fatalf("%v: gpgsm verified content %q", c, out)
			}
		}
	})
	t.Run("we sign detached, gpgsm verifies", func(t *testing.T) {
		sig, err := Sign([]byte(entityText), a, true)
		if err != nil {
			t.Fatal(err)
		}
		g.run(nil, "--verify", g.file("det.p7s", sig), in)
	})
	t.Run("gpgsm signs and encrypts, we decrypt and verify", func(t *testing.T) {
		signed := g.run(pass, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-u", peerB, "--sign", in)
		env := g.run(nil, "-r", usA, "--encrypt", g.file("signed.der", signed))
		d, err := Decrypt(env, []*Identity{a})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Verify(d.Content, nil, nil)
		if err != nil || string(s.Content) != entityText || !s.Signer.Equal(b) {
			t.Fatalf("verify gpgsm's signature: %v", err)
		}
		v := &Validator{Anchors: anchors(t)}
		if st := v.Validate(t.Context(), s.Signer, "agency-b.govt.nz", s.Certificates); st.State != StateValid {
			t.Errorf("gpgsm signer: %q %s", st.State, st.Reason)
		}
	})
	t.Run("gpgsm signs detached, we verify", func(t *testing.T) {
		sig := g.run(pass, "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-u", peerB, "--detach-sign", in)
		s, err := Verify(sig, []byte(entityText), nil)
		if err != nil || !s.Signer.Equal(b) {
			t.Fatalf("verify gpgsm's detached signature: %v", err)
		}
		if _, err := Verify(sig, []byte(entityText+"x"), nil); err == nil {
			t.Fatal("a detached signature verified over other content")
		}
	})
}
