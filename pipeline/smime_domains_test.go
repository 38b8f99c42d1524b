package pipeline

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// R46 (RFC 3183 section 4.1): a certificate from the accredited CA with
// the right common name but the rfc822Name alice@agency-b.govt.nz is not a
// DCA: a message signed with it is not verified (warning 102, the
// signer's naming) and the certificate is not learned as agency-b's. The
// same message signed with a certificate that differs only in the local
// part (domain-confidentiality-authority@agency-b.govt.nz) verifies, so
// the local part alone decides.
func TestSMIMEInNamingLocalPart(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, email string
		verified    bool
	}{
		{"alice", "alice@agency-b.govt.nz", false},
		{"dca", "domain-confidentiality-authority@agency-b.govt.nz", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			crt, key := testpki.DomainCert(t, fx("ca.crt"), fx("ca.key"), dir, c.name, smime.DCACommonName, c.email)
			signer, err := smime.LoadIdentity("agency-b.govt.nz", crt, key)
			if err != nil {
				t.Fatal(err)
			}
			if err := smime.CheckNaming(signer.Cert, "agency-b.govt.nz"); (err == nil) != c.verified {
				t.Errorf("CheckNaming: %v", err)
			}
			st, _ := smimeState(t)
			msg := outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, signer, false, certOf(t, "agency-a-new")))
			r := deliver(t, st, "officer@agency-b.govt.nz", msg)
			f := r.tx.smimeIn.facts
			certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz")
			if c.verified {
				if !f.Verified() || r.v.WarningCode != "" || len(certs) != 1 {
					t.Fatalf("verified %v warning %q learned %d; reasons %q", f.Verified(), r.v.WarningCode, len(certs), r.v.Reasons)
				}
				return
			}
			if f.Verified() || f.NamingOK || !f.Decrypted || !f.SignatureOK || f.SignerState != smime.StateValid {
				t.Errorf("verified %v naming %v decrypted %v signature %v state %s: want a good signature by a valid certificate that is not verified for its naming",
					f.Verified(), f.NamingOK, f.Decrypted, f.SignatureOK, f.SignerState)
			}
			if !strings.Contains(f.NamingReason, "local part") {
				t.Errorf("naming reason %q, want the local part named", f.NamingReason)
			}
			if r.v.WarningCode != "102" {
				t.Errorf("warning %q, want 102; reasons %q", r.v.WarningCode, r.v.Reasons)
			}
			if strings.Contains(strings.Join(policy.HeaderValues(readHeaders(t, r.out), policy.AuthResultsHeader), "\n"), "smime=pass") {
				t.Errorf("delivered with smime=pass:\n%s", r.out)
			}
			if len(certs) != 0 {
				t.Errorf("the misnamed certificate was learned for agency-b (%d certificates)", len(certs))
			}
		})
	}
}

func readHeaders(t *testing.T, msg string) []policy.Header {
	t.Helper()
	hs, err := ReadRawHeaders(bufio.NewReader(strings.NewReader(msg)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// twoDomains is a gateway for two Secure Email domains of ours (R64),
// agency-a.govt.nz (agency-a-new) and agency-g.govt.nz (a certificate made
// here from the test CA), each with its own identity and DKIM key entry;
// agency-b.govt.nz is a peer with its certificate in the store.
func twoDomains(t *testing.T) (State, *smime.Identity) {
	t.Helper()
	dir := t.TempDir()
	gCrt, gKey := testpki.DomainCert(t, fx("ca.crt"), fx("ca.key"), dir, "agency-g", smime.DCACommonName, "domain-confidentiality-authority@agency-g.govt.nz")
	g, err := smime.LoadIdentity("agency-g.govt.nz", gCrt, gKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(key)
	keyFile := filepath.Join(dir, "dkim.key")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	st := loadState(t, `profile="seemail"`, `domains=["agency-a.govt.nz", "agency-g.govt.nz"]`, `authserv_id="mx.agency-a.govt.nz"`, "record_times=false",
		`outbound.seemail_domains=["agency-b.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:`+fx("agency-a-new.crt")+`:`+fx("agency-a-new.key")+`", "agency-g.govt.nz:`+gCrt+`:`+gKey+`"]`,
		`smime.trust_anchors=["`+fx("ca.crt")+`"]`,
		`smime.peers="`+filepath.Join(dir, "peers")+`"`, `smime.crl_check=false`,
		`dkim.keys=["agency-a.govt.nz:s1:`+keyFile+`", "agency-g.govt.nz:s1:`+keyFile+`"]`)
	if _, err := st.SMIME.Store.Add("agency-b.govt.nz", certOf(t, "agency-b")); err != nil {
		t.Fatal(err)
	}
	return st, g
}

// R64: one gateway, two Secure Email domains, one certificate each. Mail
// from each domain to a peer is signed with that domain's certificate (the
// S/MIME form opened with the peer's key and its signature verified), and
// mail encrypted to either domain's certificate is decrypted and verified.
func TestSMIMETwoOwnDomains(t *testing.T) {
	st, g := twoDomains(t)
	a := fxID(t, "agency-a.govt.nz", "agency-a-new")
	peer := fxID(t, "agency-b.govt.nz", "agency-b")
	for _, c := range []struct {
		from string
		want *smime.Identity
	}{{"ann@agency-a.govt.nz", a}, {"gus@agency-g.govt.nz", g}} {
		t.Run("out/"+c.from, func(t *testing.T) {
			tx, v := runOutboundFrom(t, st, c.from, "[IN-CONFIDENCE] plans", "bob@agency-b.govt.nz")
			if v.Action != policy.Accept || v.MainForm() != policy.FormSMIME {
				t.Fatalf("action %s form %s reasons %q", v.Action, v.MainForm(), v.Reasons)
			}
			forms, err := tx.Forms(v)
			if err != nil || len(forms) != 1 {
				t.Fatalf("forms %+v %v", forms, err)
			}
			_, signed := openSMIME(t, render(t, forms[0].Output), peer)
			if !signed.Signer.Equal(c.want.Cert) {
				t.Errorf("signed by %v, want %v's certificate", smime.CertEmails(signed.Signer), c.want.Domain)
			}
			if !bytes.HasSuffix(signed.Content, []byte(smimeBody)) {
				t.Errorf("inner entity %q", signed.Content)
			}
		})
	}
	for _, c := range []struct {
		rcpt string
		to   *smime.Identity
	}{{"user@agency-a.govt.nz", a}, {"user@agency-g.govt.nz", g}} {
		t.Run("in/"+c.rcpt, func(t *testing.T) {
			msg := outerMessage("officer@agency-b.govt.nz", signEncrypt(t, innerText, peer, false, c.to.Cert))
			tx, v := runTo(t, st, "officer@agency-b.govt.nz", c.rcpt, msg)
			f := tx.smimeIn.facts
			if !f.Encrypted || !f.Decrypted || !f.Verified() || v.WarningCode != "" || v.Action != policy.Accept {
				t.Fatalf("encrypted %v decrypted %v verified %v warning %q action %s; reasons %q", f.Encrypted, f.Decrypted, f.Verified(), v.WarningCode, v.Action, v.Reasons)
			}
			o, err := tx.Output(v)
			if err != nil {
				t.Fatal(err)
			}
			if out := render(t, o); !bytes.Contains(out, []byte("[SECRET] until Friday")) || bytes.Contains(bytes.ToLower(out), []byte("pkcs7")) {
				t.Errorf("delivered message is not the decrypted inner entity:\n%.400s", out)
			}
		})
	}
}

// runOutboundFrom is runOutbound for another authenticated sender.
func runOutboundFrom(t *testing.T, st State, from, subject string, rcpts ...string) (*Transaction, policy.Verdict) {
	t.Helper()
	tx, v, err := Begin(st, policy.Conn{TLS: policy.TLSInfo{Version: "TLSv1.3"}}, policy.Envelope{From: from, AuthUser: from, QueueID: "Q1"}, time.Now())
	if err != nil || v.Final() {
		t.Fatalf("begin: %v %v", v.Action, err)
	}
	t.Cleanup(func() { tx.Close() })
	for _, r := range rcpts {
		tx.Rcpt(r)
	}
	for _, h := range [][2]string{{"From", " <" + from + ">"}, {"To", " " + strings.Join(rcpts, ", ")}, {"Subject", " " + subject},
		{"MIME-Version", " 1.0"}, {"Content-Type", " text/plain; charset=us-ascii"}, {"Content-Transfer-Encoding", " 7bit"}} {
		tx.Header(h[0], h[1])
	}
	if v := tx.EndOfHeaders(); v.Final() {
		t.Fatalf("eoh: %v", v.Action)
	}
	tx.BodyChunk([]byte(smimeBody))
	return tx, tx.EndOfMessage()
}
