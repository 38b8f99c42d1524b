package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Issue 14: `check --output` shows the signed and encrypted form; with a
// peer and an internet recipient the report says which recipient gets
// which form and the output holds both forms after FormSeparator lines.
// The S/MIME env is read-only: a missing peer store is not created.
func TestCheckSMIMEForms(t *testing.T) {
	dir := t.TempDir()
	fx := "../../testdata/smime/"
	peers := filepath.Join(dir, "peers")
	if err := os.MkdirAll(filepath.Join(peers, "agency-b.govt.nz"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fx + "agency-b.crt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(peers, "agency-b.govt.nz", "b.pem"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(msg, []byte("From: ann@agency-a.govt.nz\nTo: bob@agency-b.govt.nz, x@internet.example\nSubject: lunch\nContent-Type: text/plain\n\nSee you at noon.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sets := []string{"--set", `profile="seemail"`, "--set", `domains=["agency-a.govt.nz"]`, "--set", "record_times=false",
		"--set", `outbound.seemail_domains=["agency-b.govt.nz"]`,
		"--set", `smime.identities=["agency-a.govt.nz:` + fx + `agency-a-new.crt:` + fx + `agency-a-new.key"]`,
		"--set", `smime.trust_anchors=["` + fx + `ca.crt"]`, "--set", `smime.peers="` + peers + `"`, "--set", "smime.crl_check=false",
		"--auth", "ann@agency-a.govt.nz"}
	out := filepath.Join(dir, "out.eml")
	code, stdout, errs := runCmd(t, append(append([]string{"check"}, sets...), "--output", out, msg)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Action string `json:"action"`
		Forms  []struct {
			Form       string   `json:"form"`
			Recipients []string `json:"recipients"`
			Main       bool     `json:"main"`
		} `json:"forms"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Action != "accept" || len(rep.Forms) != 2 || rep.Forms[0].Form != "plain" || !rep.Forms[0].Main ||
		strings.Join(rep.Forms[0].Recipients, ",") != "x@internet.example" || rep.Forms[1].Form != "smime" ||
		strings.Join(rep.Forms[1].Recipients, ",") != "bob@agency-b.govt.nz" {
		t.Fatalf("forms %+v\n%s", rep.Forms, stdout)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(written), FormSeparator+" ")
	if len(parts) != 3 || parts[0] != "" || !strings.HasPrefix(parts[1], "1 plain: x@internet.example\r\n") ||
		!strings.HasPrefix(parts[2], "2 smime: bob@agency-b.govt.nz\r\n") {
		t.Fatalf("output:\n%s", written)
	}
	if !strings.Contains(parts[1], "See you at noon.") || strings.Contains(parts[1], "pkcs7") {
		t.Errorf("plain form:\n%s", parts[1])
	}
	_, body, _ := strings.Cut(parts[2], "\r\n\r\n")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := smime.LoadIdentity("agency-b.govt.nz", fx+"agency-b.crt", fx+"agency-b.key")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := smime.Decrypt(der, []*smime.Identity{peer})
	if err != nil || !bytes.Contains(dec.Content, []byte("smime-type=signed-data")) {
		t.Fatalf("the S/MIME form does not decrypt with the peer key: %v", err)
	}

	// Read-only: a peer store that does not exist is not created.
	missing := filepath.Join(dir, "no-such-peers")
	sets2 := append([]string(nil), sets...)
	for i := range sets2 {
		if strings.HasPrefix(sets2[i], "smime.peers=") {
			sets2[i] = `smime.peers="` + missing + `"`
		}
	}
	code, stdout, errs = runCmd(t, append(append([]string{"check"}, sets2...), msg)...)
	if code != 0 || !strings.Contains(stdout, `"code": "201"`) {
		t.Fatalf("exit %d, want bob held with 201: %s %s", code, stdout, errs)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("check created %s: %v", missing, err)
	}
}

// `check` changes no state (SMIMEEnv.ReadOnly): an inbound signed and
// encrypted message from a peer whose certificate the store does not hold
// yet is verified, the report says what serve would learn (R50, R83-R84),
// and the peer store directory is left exactly as it was.
func TestCheckSMIMEInboundLearnsNothing(t *testing.T) {
	dir := t.TempDir()
	fx := "../../testdata/smime/"
	peers := filepath.Join(dir, "peers")
	if err := os.MkdirAll(peers, 0o755); err != nil {
		t.Fatal(err)
	}
	signer, err := smime.LoadIdentity("agency-b.govt.nz", fx+"agency-b.crt", fx+"agency-b.key")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := smime.LoadIdentity("agency-a.govt.nz", fx+"agency-a-new.crt", fx+"agency-a-new.key")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := smime.Sign([]byte("Content-Type: text/plain\r\n\r\nThe figures.\r\n"), signer, false)
	if err != nil {
		t.Fatal(err)
	}
	env, err := smime.Encrypt(smime.SignedEntity(sig), []*x509.Certificate{ours.Cert}, smime.CipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(dir, "in.eml")
	if err := os.WriteFile(msg, append([]byte("From: bob@agency-b.govt.nz\r\nTo: ann@agency-a.govt.nz\r\nSubject: figures\r\nMIME-Version: 1.0\r\n"), smime.EnvelopedEntity(env)...), 0o644); err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, peers)
	code, stdout, errs := runCmd(t, "check", "--set", `profile="seemail"`, "--set", `domains=["agency-a.govt.nz"]`, "--set", "record_times=false",
		"--set", `outbound.seemail_domains=["agency-b.govt.nz"]`,
		"--set", `smime.identities=["agency-a.govt.nz:`+fx+`agency-a-new.crt:`+fx+`agency-a-new.key"]`,
		"--set", `smime.trust_anchors=["`+fx+`ca.crt"]`, "--set", `smime.peers="`+peers+`"`, "--set", "smime.crl_check=false",
		"--client-ip", "192.0.2.7", "--tls-version", "TLSv1.3", msg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Reasons, "\n")
	if !strings.Contains(all, "would learn the signer certificate "+smime.Fingerprint(signer.Cert)+" for agency-b.govt.nz") ||
		!strings.Contains(all, "would cache the capabilities") || strings.Contains(all, "learned a new peer certificate") {
		t.Errorf("reasons do not say what would be learned:\n%s", all)
	}
	if after := treeOf(t, peers); after != before {
		t.Errorf("check changed the peer store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// treeOf lists every file and directory below dir with its contents.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + "\n")
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
