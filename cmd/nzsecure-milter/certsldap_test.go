package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ldapDirectory: agency-b (valid), agency-r (revoked in ca.crl) and a
// SEEMail list.
func ldapDirectory(t *testing.T) *testldap.Server {
	return testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+
		testldap.DCALDIF("c=NZ", "agency-b.govt.nz", fixtureCert(t, "agency-b.crt").Raw)+
		testldap.DCALDIF("c=NZ", "agency-r.govt.nz", fixtureCert(t, "revoked.crt").Raw)+
		"dn: ou=SEEMail,c=NZ\nobjectClass: organizationalUnit\nou: SEEMail\n"+
		"description: the list\n\n"+
		"dn: cn=agency-b,ou=SEEMail,c=NZ\nobjectClass: inetOrgPerson\ncn: agency-b\nsn: list\nmail: *@agency-b.govt.nz\n\n")
}

// `certs discover DOMAIN` looks the DCA certificate up (R43, R53),
// validates it (the CRL over HTTP) and stores it (R54 auto); a revoked one
// is found but not used.
func TestCertsDiscover(t *testing.T) {
	crlServer(t, "ca.crl")
	srv := ldapDirectory(t)
	peers := filepath.Join(t.TempDir(), "peers")
	args := certsArgs(t, peers, "--set", `smime.ldap=["ldap://`+srv.Addr+`"]`, "--set", `outbound.seemail_domains=["agency-b.govt.nz"]`)
	code, out, errOut := runCmd(t, append(append([]string{"certs", "--json"}, args...), "discover", "agency-b.govt.nz")...)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	var d discoverOutput
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fp := fingerprintOf(t, "agency-b.crt")
	if d.Using != fp || len(d.Candidates) != 1 || !strings.HasPrefix(d.Candidates[0].Action, "stored") || strings.Join(d.Lists, ",") != "SEEMail" {
		t.Fatalf("discover: %s", out)
	}
	if _, err := os.Stat(filepath.Join(peers, "agency-b.govt.nz", fp+".pem")); err != nil {
		t.Fatalf("not in the peer store: %v", err)
	}
	code, out, _ = runCmd(t, append(append([]string{"certs"}, args...), "discover", "agency-r.govt.nz")...)
	if code != 1 || !strings.Contains(out, "revoked") || !strings.Contains(out, "not used") {
		t.Fatalf("revoked: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(peers, "agency-r.govt.nz")); err == nil {
		t.Fatal("a revoked certificate was stored")
	}
	// The listing classifies the learned peer (R55).
	code, out, _ = runCmd(t, append([]string{"certs"}, args...)...)
	if code != 0 || !strings.Contains(out, "lists: SEEMail (R55)") || !strings.Contains(out, "certificate discovery (LDAP), smime.discovery = auto") {
		t.Fatalf("listing: exit %d\n%s", code, out)
	}
}

// R54: approval mode, `certs` lists what waits, `certs approve` moves it
// into the peer store, `certs reject` refuses another.
func TestCertsApprove(t *testing.T) {
	crlServer(t, "ca.crl")
	srv := ldapDirectory(t)
	dir := t.TempDir()
	peers, pending := filepath.Join(dir, "peers"), filepath.Join(dir, "pending")
	args := certsArgs(t, peers, "--set", `smime.ldap=["ldap://`+srv.Addr+`"]`, "--set", `smime.discovery="approve"`,
		"--set", `smime.pending="`+pending+`"`, "--set", `outbound.seemail_domains=["agency-b.govt.nz"]`)
	code, out, _ := runCmd(t, append(append([]string{"certs"}, args...), "discover", "agency-b.govt.nz")...)
	fp := fingerprintOf(t, "agency-b.crt")
	if code != 1 || !strings.Contains(out, "pending approval (nzsecure-milter certs approve "+fp+")") {
		t.Fatalf("discover in approve mode: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, append([]string{"certs", "--json"}, args...)...)
	var l certsListing
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
		t.Fatalf("listing: %d %v\n%s", code, err, out)
	}
	if l.Discovery == nil || len(l.Discovery.Pending) != 1 || l.Discovery.Pending[0].Fingerprint != fp || l.Discovery.Pending[0].State != "valid" ||
		strings.Join(l.Discovery.Pending[0].Lists, ",") != "SEEMail" || len(l.Peers) != 0 {
		t.Fatalf("listing: %s", out)
	}
	if code, _, errOut := runCmd(t, append(append([]string{"certs"}, args...), "approve", "deadbeefdeadbeef")...); code != 1 || !strings.Contains(errOut, "no pending certificate") {
		t.Fatalf("approve unknown: exit %d %s", code, errOut)
	}
	code, out, errOut := runCmd(t, append(append([]string{"certs"}, args...), "approve", fp)...)
	if code != 0 || !strings.Contains(out, "approved "+fp) {
		t.Fatalf("approve: exit %d %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(peers, "agency-b.govt.nz", fp+".pem")); err != nil {
		t.Fatalf("approved certificate not in the peer store: %v", err)
	}
	if code, out, _ := runCmd(t, append(append([]string{"certs"}, args...), "check", "agency-b.govt.nz")...); code != 0 || !strings.Contains(out, "encrypted to:  "+fp) {
		t.Fatalf("check after approval: exit %d\n%s", code, out)
	}
	// Reject: a pending certificate put there by hand (a second one).
	pa := filepath.Join(pending, "agency-a.govt.nz")
	if err := os.MkdirAll(pa, 0o750); err != nil {
		t.Fatal(err)
	}
	fpa := fingerprintOf(t, "agency-a-new.crt")
	data, _ := os.ReadFile(fixture(t, "agency-a-new.crt"))
	if err := os.WriteFile(filepath.Join(pa, fpa+".pem"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCmd(t, append(append([]string{"certs"}, args...), "reject", fpa[:16])...); code != 0 || !strings.Contains(out, "rejected "+fpa) {
		t.Fatalf("reject: exit %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(pa, fpa+".rejected")); err != nil {
		t.Fatal("no rejection mark")
	}
}

// R55, R108: `certs lists` reads the list into lists.dir; with the
// directory down the last good copy stays and the exit is 1.
func TestCertsLists(t *testing.T) {
	srv := ldapDirectory(t)
	dir := t.TempDir()
	args := []string{"--set", `lists.dir="` + dir + `"`, "--set", `lists.seemail_ldap="ldap://` + srv.Addr + `/ou=SEEMail,c=NZ?mail?one"`}
	code, out, errOut := runCmd(t, append(append([]string{"certs"}, args...), "lists")...)
	if code != 0 || !strings.Contains(out, "seemail:") || !strings.Contains(out, "1 entries, rewritten") {
		t.Fatalf("lists: exit %d %s%s", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "seemail"))
	if err != nil || !strings.Contains(string(data), "\nagency-b.govt.nz\n") {
		t.Fatalf("list file: %q %v", data, err)
	}
	srv.Stop(t)
	code, out, _ = runCmd(t, append(append([]string{"certs"}, args...), "lists")...)
	if code != 1 || !strings.Contains(out, "last good copy (1 entries) is kept") {
		t.Fatalf("lists with the directory down: exit %d %s", code, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "seemail")); string(again) != string(data) {
		t.Fatal("the last good copy changed")
	}
	// The policy reads the copy: agency-b is on the SEEMail list.
	code, out, _ = runCmd(t, append(append([]string{"certs", "--from", "agency-a.govt.nz"}, args...), "check", "agency-b.govt.nz")...)
	if !strings.Contains(out, "SEEMail list:  yes") {
		t.Fatalf("check: exit %d %s", code, out)
	}
}

// serve's refresher (R55, R108): the first round writes the copy and
// signals; the reload that follows puts the list into the running policy.
func TestListRefresherReloads(t *testing.T) {
	srv := ldapDirectory(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.toml")
	body := "domains = [\"agency-a.govt.nz\"]\nauthserv_id = \"mx.agency-a.govt.nz\"\n[lists]\ndir = \"" + dir + "\"\n" +
		"seemail_ldap = \"ldap://" + srv.Addr + "/ou=SEEMail,c=NZ?mail?one\"\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Outbound.SEEMailDomains.Match("agency-b.govt.nz") {
		t.Fatal("on the list before any refresh")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := milter.NewServer(p, runner, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := startListRefresher(ctx, p, log)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no refresh signalled\n%s", logs.String())
	}
	reload(ms, &policyFlags{path: path}, new(slog.LevelVar), log)
	if !ms.Policy().Outbound.SEEMailDomains.Match("agency-b.govt.nz") {
		t.Fatalf("the reloaded policy lacks the LDAP list\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "accredited list refreshed") {
		t.Errorf("refresh not logged:\n%s", logs.String())
	}
}
