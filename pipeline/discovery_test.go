package pipeline

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// revokedSerials is a RevocationChecker revoking by serial.
type revokedSerials map[string]bool

func (r revokedSerials) Status(_ context.Context, c, _ *x509.Certificate) (smime.Revocation, error) {
	if r[c.SerialNumber.String()] {
		return smime.Revoked, nil
	}
	return smime.NotRevoked, nil
}

// discoveryEnv: a slapd with agency-a's renewed certificate and agency-b's,
// a policy naming it in smime.ldap, and the env NewSMIMEEnv builds from it
// with agency-a-old revoked.
func discoveryEnv(t *testing.T, extra ...string) *SMIMEEnv {
	t.Helper()
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+
		testldap.DCALDIF("c=NZ", "agency-a.govt.nz", certOf(t, "agency-a-new").Raw)+
		testldap.DCALDIF("c=NZ", "agency-b.govt.nz", certOf(t, "agency-b").Raw))
	dir := t.TempDir()
	sets := append([]string{
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
		`smime.peers="` + filepath.Join(dir, "peers") + `"`,
		`smime.pending="` + filepath.Join(dir, "pending") + `"`,
		`smime.ldap=["ldap://` + srv.Addr + `"]`,
		`smime.crl_check=false`,
		`outbound.seemail_domains=["agency-b.govt.nz", "agency-z.govt.nz"]`,
	}, extra...)
	p, err := policy.Parse("t", nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if env.Discoverer == nil {
		t.Fatal("smime.ldap set but no discoverer")
	}
	env.Validator.Revocation = revokedSerials{certOf(t, "agency-a-old").SerialNumber.String(): true}
	return env
}

// Table 1: "Auto-discover valid public key certificate (LDAP). Success:
// Send message": Peer answers with the discovered certificate, for a
// domain with none and for one whose stored certificate is revoked (R58).
func TestPeerDiscovers(t *testing.T) {
	env := discoveryEnv(t)
	ctx := context.Background()
	got := env.Peer(ctx, "agency-b.govt.nz")
	if got.State != smime.StateValid || !got.HasCerts || got.Fingerprint != smime.Fingerprint(certOf(t, "agency-b")) {
		t.Fatalf("agency-b: %+v", got)
	}
	// agency-a is not on the SEEMail list and has no certificate: it does
	// not get S/MIME, and mail to it never waits for a directory.
	got = env.Peer(ctx, "agency-a.govt.nz")
	if got.State == smime.StateValid || got.HasCerts || !strings.Contains(strings.Join(got.Reasons, "\n"), "no LDAP discovery: not on the SEEMail list") {
		t.Fatalf("agency-a out of scope: %+v", got)
	}
	if c, _ := env.Store.Certificates("agency-a.govt.nz"); len(c) != 0 {
		t.Fatal("an out-of-scope domain was looked up and stored")
	}
	// Its stored certificate is revoked: in scope, and renewed from the
	// directory (R58).
	if _, err := env.Store.Add("agency-a.govt.nz", certOf(t, "agency-a-old")); err != nil {
		t.Fatal(err)
	}
	got = env.Peer(ctx, "agency-a.govt.nz")
	if got.State != smime.StateValid || got.Fingerprint != smime.Fingerprint(certOf(t, "agency-a-new")) {
		t.Fatalf("agency-a after revocation: %+v", got)
	}
	if !strings.Contains(strings.Join(got.Reasons, "\n"), "revoked") || !strings.Contains(strings.Join(got.Reasons, "\n"), "LDAP discovery found") {
		t.Errorf("reasons do not tell the story: %q", got.Reasons)
	}
	// On the list but not in the directory: looked up, nothing found.
	got = env.Peer(ctx, "agency-z.govt.nz")
	if got.State == smime.StateValid || got.HasCerts || !strings.Contains(strings.Join(got.Reasons, "\n"), "LDAP discovery: discovery: no usable certificate found") {
		t.Fatalf("agency-z: %+v", got)
	}
}

// ReadOnly (check): Peer asks no directory, so stores nothing, and says
// it would ask for a domain in scope.
func TestPeerDiscoveryReadOnly(t *testing.T) {
	env := discoveryEnv(t)
	env.ReadOnly = true
	got := env.Peer(context.Background(), "agency-b.govt.nz")
	if got.State == smime.StateValid || got.HasCerts || !strings.Contains(strings.Join(got.Reasons, "\n"), "read-only: the directories would be asked for a certificate of agency-b.govt.nz") {
		t.Fatalf("read-only: %+v", got)
	}
	if c, _ := env.Store.Certificates("agency-b.govt.nz"); len(c) != 0 {
		t.Fatal("a read-only env stored a discovered certificate")
	}
	if got := env.Peer(context.Background(), "agency-a.govt.nz"); !strings.Contains(strings.Join(got.Reasons, "\n"), "no LDAP discovery: not on the SEEMail list") {
		t.Fatalf("out of scope, read-only: %+v", got)
	}
}

// R54 approve: Peer does not use a certificate waiting for approval.
func TestPeerDiscoveryApprove(t *testing.T) {
	env := discoveryEnv(t, `smime.discovery="approve"`)
	got := env.Peer(context.Background(), "agency-b.govt.nz")
	if got.State == smime.StateValid || got.HasCerts || !strings.Contains(strings.Join(got.Reasons, "\n"), "pending approval (nzsecure-milter certs approve "+smime.Fingerprint(certOf(t, "agency-b"))+")") {
		t.Fatalf("approve mode: %+v", got)
	}
}

// smime.ca_ldap names anchors by file or fingerprint; one that is not an
// anchor is refused when the env is built.
func TestCALDAPAnchors(t *testing.T) {
	abs, _ := filepath.Abs("../testdata/smime/ca.crt")
	for _, c := range []struct {
		anchor string
		ok     bool
	}{
		{abs, true},
		{smime.Fingerprint(certOf(t, "ca")), true},
		{smime.Fingerprint(certOf(t, "rogue-ca")), false},
	} {
		p, err := policy.Parse("t", nil, []string{
			`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
			`smime.peers="` + t.TempDir() + `"`,
			`smime.ca_ldap=["` + c.anchor + `=ldap://127.0.0.1:1/c=NZ"]`,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewSMIMEEnv(p, true)
		if (err == nil) != c.ok {
			t.Errorf("anchor %s: err = %v, want ok=%v", c.anchor, err, c.ok)
		}
	}
}

// smime.ldap_ca: an ldaps:// directory whose server certificate is from a
// private CA is asked when that CA is configured, and refused (the
// directory fails, nothing is taken from it) when it is not.
func TestDiscoveryLDAPSWithPolicyCA(t *testing.T) {
	srv := testldap.StartLDAPS(t, "c=NZ", testldap.CountryLDIF("c=NZ")+
		testldap.DCALDIF("c=NZ", "agency-b.govt.nz", certOf(t, "agency-b").Raw))
	for _, c := range []struct {
		name  string
		extra []string
		found bool
	}{
		{"configured CA", []string{`smime.ldap_ca=["` + srv.RootsFile + `"]`}, true},
		{"system roots", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := policy.Parse("t", nil, append([]string{
				`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
				`smime.peers="` + filepath.Join(dir, "peers") + `"`,
				`smime.pending="` + filepath.Join(dir, "pending") + `"`,
				`smime.ldap=["ldaps://` + srv.Addr + `"]`,
				`smime.crl_check=false`,
				`outbound.seemail_domains=["agency-b.govt.nz"]`,
			}, c.extra...))
			if err != nil {
				t.Fatal(err)
			}
			env, err := NewSMIMEEnv(p, true)
			if err != nil {
				t.Fatal(err)
			}
			got := env.Peer(context.Background(), "agency-b.govt.nz")
			if found := got.State == smime.StateValid; found != c.found {
				t.Fatalf("found %v, want %v: %+v", found, c.found, got)
			}
		})
	}
}
