package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// renewalSetup: agency-a's only identity expires in ten days (the fixture
// key agency-a-old.key); the CA's directory, a real slapd named in
// smime.ca_ldap, holds the CA's renewal of that key. It returns the
// certs/serve arguments, the renewal's fingerprint and the own_dir.
func renewalSetup(t *testing.T) (args []string, renewedFP, ownDir string) {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	dca := smime.DCACommonName + "@agency-a.govt.nz"
	key := fixture(t, "agency-a-old.key")
	expiring := testpki.ReissueDomainCert(t, fixture(t, "ca.crt"), fixture(t, "ca.key"), key, dir, "expiring", now.Add(-300*24*time.Hour), now.Add(10*24*time.Hour), smime.DCACommonName, dca)
	renewed := testpki.ReissueDomainCert(t, fixture(t, "ca.crt"), fixture(t, "ca.key"), key, dir, "renewed", now.Add(-time.Hour), now.Add(700*24*time.Hour), smime.DCACommonName, dca)
	rc, err := smime.ReadCertificatesFile(renewed)
	if err != nil {
		t.Fatal(err)
	}
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+testldap.DCALDIF("c=NZ", "agency-a.govt.nz", rc[0].Raw))
	ownDir = filepath.Join(dir, "own")
	args = []string{
		"--set", `domains=["agency-a.govt.nz"]`,
		"--set", `smime.mode="on"`,
		"--set", `smime.identities=["agency-a.govt.nz:` + expiring + `:` + key + `"]`,
		"--set", `smime.trust_anchors=["` + fixture(t, "ca.crt") + `"]`,
		"--set", `smime.ca_ldap=["` + fixture(t, "ca.crt") + `=ldap://` + srv.Addr + `"]`,
		"--set", `smime.crl_check=false`,
		"--set", `smime.peers="` + filepath.Join(dir, "peers") + `"`,
		"--set", `smime.pending="` + filepath.Join(dir, "pending") + `"`,
		"--set", `smime.own_dir="` + ownDir + `"`,
	}
	return args, smime.Fingerprint(rc[0]), ownDir
}

// `certs renew` (R51): the due certificate is renewed from the CA's
// directory and written to smime.own_dir; the listing then shows the
// renewal as an identity of ours; asked again, nothing is due.
func TestCertsRenew(t *testing.T) {
	args, fp, ownDir := renewalSetup(t)
	code, out, errOut := runCmd(t, append(append([]string{"certs", "--json"}, args...), "renew")...)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	var rs []pipeline.OwnRenewal
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rs) != 1 || rs[0].Action != pipeline.OwnRenewed || rs[0].Fingerprint != fp {
		t.Fatalf("renew: %s", out)
	}
	if _, err := os.Stat(filepath.Join(ownDir, "agency-a.govt.nz", fp+".pem")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, append([]string{"certs"}, args...)...)
	if code != 0 || !strings.Contains(out, fp) {
		t.Fatalf("listing after renewal: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, append(append([]string{"certs"}, args...), "renew")...)
	if code != 0 || !strings.Contains(out, "agency-a.govt.nz: current") {
		t.Fatalf("renew again: exit %d\n%s", code, out)
	}
}

// Nothing in the directory for a due certificate: exit 1, said why, and
// the administrator told what to do.
func TestCertsRenewNothingFound(t *testing.T) {
	args, _, ownDir := renewalSetup(t)
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ"))
	args = append(args, "--set", `smime.ca_ldap=["`+fixture(t, "ca.crt")+`=ldap://`+srv.Addr+`"]`)
	code, out, _ := runCmd(t, append(append([]string{"certs"}, args...), "renew")...)
	if code != 1 || !strings.Contains(out, "agency-a.govt.nz: not renewed") || !strings.Contains(out, "no certificate for domain-confidentiality-authority@agency-a.govt.nz") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, err := os.Stat(ownDir); err == nil {
		t.Fatal("own_dir written though nothing was found")
	}
}

// serve's loop (startOwnRenewal) checks at start and when asked (after a
// SIGHUP), and signals a reload when it wrote a certificate; the reloaded
// env signs with it.
func TestServeRenewsOwnCertificate(t *testing.T) {
	args, fp, _ := renewalSetup(t)
	var sets []string
	for i := 1; i < len(args); i += 2 {
		sets = append(sets, args[i])
	}
	p, err := policy.Load("", sets)
	if err != nil {
		t.Fatal(err)
	}
	env, err := pipeline.NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := metrics.New()
	// S/MIME off first (no env): nothing is checked until asked.
	var on atomic.Bool
	changed, now := startOwnRenewal(ctx, func() (*policy.Policy, *pipeline.SMIMEEnv) {
		if !on.Load() {
			return p, nil
		}
		return p, env
	}, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case <-changed:
		t.Fatal("a reload was signalled with S/MIME off")
	case <-time.After(200 * time.Millisecond):
	}
	// A SIGHUP turns it on and asks for a check at once (smime.renew_check
	// is 6 hours).
	on.Store(true)
	now()
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("no reload signalled within 20s of the check asked for")
	}
	env2, err := pipeline.NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if id := env2.Signer(ctx, "agency-a.govt.nz"); id == nil || smime.Fingerprint(id.Cert) != fp {
		t.Fatalf("after the reload: signer %v, want the renewal %s", id, fp)
	}
	// The metric says when the certificate in use expires: the renewal's
	// date, about two years on.
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range mfs {
		if mf.GetName() == "nzsecure_smime_own_valid_until_timestamp_seconds" {
			for _, mt := range mf.GetMetric() {
				if mt.GetLabel()[0].GetValue() == "agency-a.govt.nz" {
					got = mt.GetGauge().GetValue()
				}
			}
		}
	}
	if want := float64(env2.Signer(ctx, "agency-a.govt.nz").Cert.NotAfter.Unix()); got != want {
		t.Errorf("nzsecure_smime_own_valid_until_timestamp_seconds{domain=agency-a.govt.nz} = %v, want %v", got, want)
	}
}

// The `certs` listing says, per domain of ours, whether our certificate is
// due for renewal, without asking any directory.
func TestCertsListingRenewal(t *testing.T) {
	args, _, ownDir := renewalSetup(t)
	code, out, _ := runCmd(t, append([]string{"certs"}, args...)...)
	if code != 0 || !strings.Contains(out, "renewal (R51): agency-a.govt.nz due: our certificate expires") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, err := os.Stat(ownDir); err == nil {
		t.Fatal("the listing wrote to smime.own_dir")
	}
	code, out, _ = runCmd(t, append([]string{"certs", "--json"}, args...)...)
	var l struct {
		Renewal []pipeline.OwnRenewal `json:"renewal"`
	}
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Renewal) != 1 || l.Renewal[0].Action != "due" {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}
}
