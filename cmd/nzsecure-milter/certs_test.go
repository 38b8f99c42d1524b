package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/crl"
)

func fixture(t *testing.T, name string) string { return testpki.Fixture(name) }

// fixtureCert is the first certificate of the fixture file name ("x.crt").
func fixtureCert(t *testing.T, name string) *x509.Certificate {
	return testpki.FixtureCert(t, strings.TrimSuffix(name, ".crt"))
}

// crlServer serves the fixtures' CRL for http://crl.test/ca.crl on
// loopback and points the certs subcommand's CRL cache at it; failing
// makes it answer 500 (a distribution point that is down).
func crlServer(t *testing.T, file string) *atomic.Bool {
	t.Helper()
	data, err := os.ReadFile(fixture(t, file))
	if err != nil {
		t.Fatal(err)
	}
	failing := &atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() || r.URL.Path != "/ca.crl" {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}}}
	pipeline.CRLFetchers = map[string]crl.Fetcher{"http": crl.HTTPFetcher{Client: client}}
	t.Cleanup(func() { pipeline.CRLFetchers = nil })
	return failing
}

// peerStore fills a temporary store: a valid peer with capabilities, and
// one peer per bad state (the fixtures of testdata/smime/make-fixtures.sh).
func peerStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := smime.NewPeerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for domain, file := range map[string]string{
		"agency-b.govt.nz": "agency-b.crt", "agency-r.govt.nz": "revoked.crt", "agency-e.govt.nz": "expired.crt",
		"agency-f.govt.nz": "future.crt", "agency-u.govt.nz": "untrusted.crt", "agency-x.govt.nz": "agency-b.crt",
	} {
		if _, err := s.Add(domain, fixtureCert(t, file)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetCapabilities("agency-b.govt.nz", smime.OurCapabilities); err != nil {
		t.Fatal(err)
	}
	return dir
}

func certsArgs(t *testing.T, peers string, extra ...string) []string {
	id := func(name string) string {
		return "agency-a.govt.nz:" + fixture(t, name+".crt") + ":" + fixture(t, name+".key")
	}
	args := []string{
		"--set", `domains=["agency-a.govt.nz"]`,
		"--set", `smime.identities=["` + id("agency-a-old") + `", "` + id("agency-a-new") + `"]`,
		"--set", `smime.trust_anchors=["` + fixture(t, "ca.crt") + `"]`,
		"--set", `smime.peers="` + peers + `"`,
		"--set", `smime.crl_dir="` + t.TempDir() + `"`,
		"--set", `smime.crl_timeout="2s"`,
	}
	return append(args, extra...)
}

func fingerprintOf(t *testing.T, name string) string {
	return smime.Fingerprint(fixtureCert(t, name))
}

// `certs --json` lists our identities and every peer certificate with its
// state (R36: valid, expired, not yet valid, revoked, untrusted, misnamed)
// and the capabilities known (R84), the CRL fetched over HTTP.
func TestCertsList(t *testing.T) {
	crlServer(t, "ca.crl")
	peers := peerStore(t)
	code, out, errOut := runCmd(t, append([]string{"certs", "--json"}, certsArgs(t, peers)...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var l certsListing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(l.Identities) != 2 {
		t.Fatalf("identities %+v", l.Identities)
	}
	for _, id := range l.Identities {
		if id.Domain != "agency-a.govt.nz" || id.State != "valid" || !strings.Contains(id.Subject, "domain-confidentiality-authority") {
			t.Errorf("identity %+v", id)
		}
	}
	want := map[string]string{
		"agency-b.govt.nz": "valid", "agency-r.govt.nz": "revoked", "agency-e.govt.nz": "expired",
		"agency-f.govt.nz": "not yet valid", "agency-u.govt.nz": "untrusted", "agency-x.govt.nz": "misnamed",
	}
	if len(l.Peers) != len(want) {
		t.Fatalf("peers %+v", l.Peers)
	}
	for _, p := range l.Peers {
		if len(p.Certificates) != 1 || p.Certificates[0].State != want[p.Domain] {
			t.Errorf("%s: %+v, want state %q", p.Domain, p.Certificates, want[p.Domain])
		}
		hasCaps := len(p.Capabilities) > 0
		if hasCaps != (p.Domain == "agency-b.govt.nz") || hasCaps && p.Capabilities[0] != "aes256-cbc" {
			t.Errorf("%s: capabilities %q", p.Domain, p.Capabilities)
		}
	}
	// The text form says the same.
	code, out, _ = runCmd(t, append([]string{"certs"}, certsArgs(t, peers)...)...)
	if code != 0 {
		t.Fatalf("text: exit %d", code)
	}
	for _, s := range []string{
		"agency-b.govt.nz  capabilities: aes256-cbc, aes128-cbc",
		fingerprintOf(t, "revoked.crt") + "  revoked",
		fingerprintOf(t, "agency-a-new.crt") + "  valid",
		fingerprintOf(t, "untrusted.crt") + "  untrusted",
		fingerprintOf(t, "future.crt") + "  not yet valid",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
	// With the CRL server down and no CRL cached, the status is unknown.
	crlServer(t, "ca.crl").Store(true)
	_, out, _ = runCmd(t, append([]string{"certs", "--json"}, certsArgs(t, peers)...)...)
	l = certsListing{}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Peers {
		if p.Domain == "agency-b.govt.nz" && p.Certificates[0].State != "unknown status" {
			t.Errorf("CRL down: agency-b %+v, want unknown status", p.Certificates[0])
		}
	}
}

// `certs check DOMAIN` (issue 14 point 7): signed with our newest valid
// certificate (R37) and encrypted to the peer's with its strongest cipher,
// exit 0; held with the Table 1 / Table 3 code otherwise, exit 1.
func TestCertsCheck(t *testing.T) {
	failing := crlServer(t, "ca.crl")
	peers := peerStore(t)
	check := func(domain string, extra ...string) (int, sendCheck) {
		t.Helper()
		args := append([]string{"certs", "check", domain, "--json"}, certsArgs(t, peers, extra...)...)
		code, out, errOut := runCmd(t, args...)
		var sc sendCheck
		if code != 2 {
			if err := json.Unmarshal([]byte(out), &sc); err != nil {
				t.Fatalf("%s: %v\n%s%s", domain, err, out, errOut)
			}
		}
		return code, sc
	}
	code, sc := check("agency-b.govt.nz")
	if code != 0 || sc.Outcome != "signed and encrypted" || sc.SignWith != fingerprintOf(t, "agency-a-new.crt") ||
		sc.EncryptTo != fingerprintOf(t, "agency-b.crt") || sc.Cipher != "aes256-cbc" || !sc.InScope {
		t.Errorf("agency-b: exit %d %+v", code, sc)
	}
	for domain, want := range map[string]struct{ state, code string }{
		"agency-r.govt.nz": {"revoked", "201"}, "agency-e.govt.nz": {"expired", "201"},
		"agency-f.govt.nz": {"not yet valid", "201"}, "agency-u.govt.nz": {"untrusted", "201"},
		"agency-x.govt.nz": {"misnamed", "201"},
	} {
		code, sc := check(domain)
		if code != 1 || sc.Outcome != "held" || sc.PeerState != want.state || sc.Code != want.code ||
			!strings.Contains(sc.Explain, "SECURE DELIVERY DELAYED (code "+want.code+")") {
			t.Errorf("%s: exit %d %+v, want held %s %s", domain, code, sc, want.state, want.code)
		}
	}
	// R59: with CRL checks off, the revoked certificate is used.
	if code, sc := check("agency-r.govt.nz", "--set", "smime.crl_check=false"); code != 0 || sc.EncryptTo != fingerprintOf(t, "revoked.crt") {
		t.Errorf("crl_check=false: exit %d %+v", code, sc)
	}
	// ... and so with the certificate's fingerprint in crl_bypass.
	if code, _ := check("agency-r.govt.nz", "--set", `smime.crl_bypass=["`+fingerprintOf(t, "revoked.crt")+`"]`); code != 0 {
		t.Errorf("crl_bypass: exit %d", code)
	}
	// No certificate and not on any list: not S/MIME, exit 1; on the
	// SEEMail list without a certificate: held, 201.
	if code, sc := check("internet.example"); code != 1 || sc.Outcome != "not S/MIME" || sc.InScope {
		t.Errorf("internet.example: exit %d %+v", code, sc)
	}
	if code, sc := check("agency-n.govt.nz", "--set", `outbound.seemail_domains=["agency-n.govt.nz"]`); code != 1 || sc.Outcome != "held" || sc.Code != "201" || !sc.SEEMailList {
		t.Errorf("SEEMail domain without a certificate: exit %d %+v", code, sc)
	}
	// smime.encrypt_to set and not naming the domain: not S/MIME.
	if code, sc := check("agency-b.govt.nz", "--set", `smime.encrypt_to=["agency-c.govt.nz"]`); code != 1 || sc.Outcome != "not S/MIME" {
		t.Errorf("encrypt_to: exit %d %+v", code, sc)
	}
	// No identity of our own: 211.
	if code, sc := check("agency-b.govt.nz", "--set", "smime.identities=[]"); code != 1 || sc.Code != "211" || sc.SignWith != "" {
		t.Errorf("no identity: exit %d %+v", code, sc)
	}
	// The CRL server down (fresh cache): peer and ours of unknown status,
	// 212 (ours decides first), then 202 for the peer with CRL checks
	// bypassed for our certificates.
	failing.Store(true)
	if code, sc := check("agency-b.govt.nz"); code != 1 || sc.Code != "212" {
		t.Errorf("CRL down: exit %d %+v, want 212", code, sc)
	}
	bypass := `smime.crl_bypass=["` + fingerprintOf(t, "agency-a-new.crt") + `", "` + fingerprintOf(t, "agency-a-old.crt") + `"]`
	if code, sc := check("agency-b.govt.nz", "--set", bypass); code != 1 || sc.Code != "202" || sc.PeerState != "unknown status" {
		t.Errorf("CRL down, ours bypassed: exit %d %+v, want 202", code, sc)
	}
	// The text form.
	failing.Store(false)
	code, out, _ := runCmd(t, append([]string{"certs", "check", "agency-r.govt.nz"}, certsArgs(t, peers)...)...)
	if code != 1 || !strings.Contains(out, "held: SECURE DELIVERY DELAYED (code 201)") || !strings.Contains(out, "peer certificate revoked") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
}

// Usage and policy errors exit 2.
func TestCertsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"certs", "check"}, {"certs", "list", "x"}, {"certs", "check", "a/b"},
		{"certs", "--set", `smime.mode="maybe"`}, {"certs", "--no-such-flag"},
		{"certs", "check", "agency-b.govt.nz", "--set", "smime.identities=[]"}, // no sending domain
	} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
