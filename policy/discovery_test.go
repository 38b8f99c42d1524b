package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

func TestDiscoveryKeys(t *testing.T) {
	p, err := Parse("t", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := p.SMIME.Discovery
	if d.Enabled() || d.Base != "c=NZ" || d.Mode != discovery.ModeAuto || d.Timeout != 5*time.Second || d.Retry != 5*time.Minute {
		t.Fatalf("defaults: %+v", d)
	}
	p, err = Parse("t", nil, []string{
		`smime.ldap=["ldap://dir.example/", "ldaps://dir2.example/o=x,c=NZ"]`,
		`smime.ca_ldap=["/etc/ca.pem=ldap://ca.example/c=NZ", "AB:` + strings.Repeat("cd", 31) + `=ldaps://ca2.example"]`,
		`smime.discovery="approve"`, `smime.ldap_timeout="2s"`, `smime.ldap_base="o=gov,c=NZ"`,
	})
	if err != nil {
		t.Fatal(err)
	}
	d = p.SMIME.Discovery
	if !d.Enabled() || len(d.LDAP) != 2 || d.Mode != discovery.ModeApprove || d.Timeout != 2*time.Second || d.Base != "o=gov,c=NZ" ||
		len(d.CALDAP) != 2 || d.CALDAP[0].Anchor != "/etc/ca.pem" || d.CALDAP[1].Anchor != "ab"+strings.Repeat("cd", 31) || d.CALDAP[1].URL != "ldaps://ca2.example" {
		t.Fatalf("parsed: %+v", d)
	}
	for _, bad := range []string{
		`smime.ldap=["http://dir.example/"]`,
		`smime.ldap=["ldap://user:pw@dir.example/"]`,
		`smime.ca_ldap=["ldap://ca.example/"]`,
		`smime.ca_ldap=["relative.pem=ldap://ca.example/"]`,
		`smime.discovery="sometimes"`,
		`smime.pending="relative"`,
		`lists.seemail_ldap="ldap://dir.example"`,
		`lists.refresh="1s"`,
		`smime.ldap_ca=["/nonexistent/ca.pem"]`,
		`smime.ldap_ca=["discovery_test.go"]`, // not a certificate
		`smime.renewal_keys=["agency.govt.nz"]`,
		`smime.renewal_keys=["agency.govt.nz:/nonexistent/key.pem"]`,
		`smime.renewal_keys=["agency.govt.nz:../testdata/smime/ca.crt"]`, // not a key
		`smime.own_dir="relative"`,
		`smime.renew_before="1m"`,
		`smime.renew_check="1s"`,
	} {
		if _, err := Parse("t", nil, []string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// R55, R108: the last good copy of a list read from LDAP joins the key
// that holds the list; a list not fetched yet is a warning.
func TestListFilesApplied(t *testing.T) {
	dir := t.TempDir()
	sets := []string{
		`lists.dir="` + dir + `"`,
		`lists.seemail_ldap="ldap://dir.example/ou=SEEMail,c=NZ"`,
		`lists.securemail_ldap="ldap://dir.example/ou=SecureMail,c=NZ"`,
		`lists.workspace_ldap="ldap://dir.example/ou=WORKSPACE,c=NZ?mail"`,
		`outbound.seemail_domains=["configured.govt.nz"]`,
	}
	p, err := Parse("t", nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.Warnings.Error(), "no copy of the list yet"); n != 3 {
		t.Fatalf("warnings: %v", p.Warnings)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(ListSEEMail, "# from LDAP\nagency-a.govt.nz\n*.mil.govt.nz\n")
	write(ListSecureMail, "bank.co.nz\n")
	write(ListWorkspace, "workspace.govt.nz\n")
	p, err = Parse("t", nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Outbound.SEEMailDomains.Match("agency-a.govt.nz") || !p.Outbound.SEEMailDomains.Match("x.mil.govt.nz") || !p.Outbound.SEEMailDomains.Match("configured.govt.nz") {
		t.Errorf("SEEMail list: %v", p.Outbound.SEEMailDomains.Entries())
	}
	for domain, want := range map[string]string{
		"agency-a.govt.nz":  "SEEMail",
		"bank.co.nz":        "SecureMail",
		"workspace.govt.nz": "WORKSPACE",
		"other.example":     "",
	} {
		if got := strings.Join(p.AccreditedLists(domain), ","); got != want {
			t.Errorf("AccreditedLists(%s) = %q, want %q", domain, got, want)
		}
	}
	if len(p.ListSources()) != 3 || p.ListSources()[2].Wildcards {
		t.Errorf("ListSources: %+v", p.ListSources())
	}
	write(ListSecureMail, "not a domain\n")
	if _, err := Parse("t", nil, sets); err == nil || !strings.Contains(err.Error(), "lists.securemail_ldap") {
		t.Fatalf("a bad list copy: %v", err)
	}
}
