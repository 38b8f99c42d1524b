package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

const ownDomain = "agency-a.govt.nz"

var ownDCA = smime.DCACommonName + "@" + ownDomain

// ownPKI: our agency-a key (the fixture agency-a-old.key) with a
// certificate that expires in ten days, and the CA's renewal of the same
// key, valid for two years from yesterday.
type ownPKI struct {
	dir                 string
	expiring, renewed   string // certificate files
	key                 string // agency-a-old.key
	rogueSameKey        string // the same key, issued by a CA nobody trusts
	now                 time.Time
	expiringNA, renewNA time.Time
}

func newOwnPKI(t *testing.T) ownPKI {
	t.Helper()
	o := ownPKI{dir: t.TempDir(), key: fx("agency-a-old.key"), now: time.Now()}
	o.expiringNA, o.renewNA = o.now.Add(10*24*time.Hour), o.now.Add(730*24*time.Hour)
	o.expiring = testpki.ReissueDomainCert(t, fx("ca.crt"), fx("ca.key"), o.key, o.dir, "expiring", o.now.Add(-300*24*time.Hour), o.expiringNA, smime.DCACommonName, ownDCA)
	o.renewed = testpki.ReissueDomainCert(t, fx("ca.crt"), fx("ca.key"), o.key, o.dir, "renewed", o.now.Add(-24*time.Hour), o.renewNA, smime.DCACommonName, ownDCA)
	o.rogueSameKey = testpki.ReissueDomainCert(t, fx("rogue-ca.crt"), fx("rogue-ca.key"), o.key, o.dir, "rogue", o.now.Add(-24*time.Hour), o.now.Add(3000*24*time.Hour), smime.DCACommonName, ownDCA)
	return o
}

func readCert(t *testing.T, file string) []byte {
	t.Helper()
	cs, err := smime.ReadCertificatesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0].Raw
}

func fpOf(t *testing.T, file string) string {
	t.Helper()
	cs, err := smime.ReadCertificatesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return smime.Fingerprint(cs[0])
}

// ownPolicy: agency-a's expiring identity, the own_dir and peers under a
// temporary directory, the directories given.
func ownPolicy(t *testing.T, o ownPKI, extra ...string) *policy.Policy {
	t.Helper()
	sets := append([]string{
		`smime.mode="on"`,
		`smime.identities=["` + ownDomain + `:` + o.expiring + `:` + o.key + `"]`,
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
		`smime.peers="` + filepath.Join(o.dir, "peers") + `"`,
		`smime.own_dir="` + filepath.Join(o.dir, "own") + `"`,
		`smime.pending="` + filepath.Join(o.dir, "pending") + `"`,
		`smime.crl_check=false`,
	}, extra...)
	p, err := policy.Parse("t", nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ownEnv(t *testing.T, p *policy.Policy) *SMIMEEnv {
	t.Helper()
	env, err := NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func signerFP(t *testing.T, env *SMIMEEnv) string {
	t.Helper()
	id := env.Signer(context.Background(), ownDomain)
	if id == nil {
		t.Fatalf("no signer for %s: %+v", ownDomain, env.Own(context.Background(), ownDomain))
	}
	return smime.Fingerprint(id.Cert)
}

func oneRenewal(t *testing.T, out []OwnRenewal) OwnRenewal {
	t.Helper()
	if len(out) != 1 || out[0].Domain != ownDomain {
		t.Fatalf("renewal results: %+v", out)
	}
	return out[0]
}

// R51, "when it needs a new valid public key certificate from its CA": our
// certificate expires within smime.renew_before; the CA's directory (a
// real slapd, smime.ca_ldap) holds its renewal of our key and a rogue CA's
// certificate for the same key. The renewal is fetched, written to
// smime.own_dir, and a reload signs with it (R37); the rogue one is not
// used. Checked again, the new certificate is current: nothing is asked.
func TestRenewOwnSameKey(t *testing.T) {
	o := newOwnPKI(t)
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+
		testldap.DCALDIF("c=NZ", ownDomain, readCert(t, o.rogueSameKey), readCert(t, o.renewed)))
	caFile, _ := filepath.Abs(fx("ca.crt"))
	p := ownPolicy(t, o, `smime.ca_ldap=["`+caFile+`=ldap://`+srv.Addr+`"]`)
	env := ownEnv(t, p)
	if got := signerFP(t, env); got != fpOf(t, o.expiring) {
		t.Fatalf("before: signing with %s, want the expiring certificate", got)
	}
	out, changed, err := OwnRenewalCheck(context.Background(), p, env, o.now)
	if err != nil {
		t.Fatal(err)
	}
	r := oneRenewal(t, out)
	if !changed || r.Action != OwnRenewed || r.Fingerprint != fpOf(t, o.renewed) {
		t.Fatalf("renewal: changed=%v %+v", changed, r)
	}
	if !strings.Contains(r.Due, "within smime.renew_before") {
		t.Errorf("due: %q", r.Due)
	}
	if want := filepath.Join(o.dir, "own", ownDomain, r.Fingerprint+".pem"); r.File != want {
		t.Errorf("file %s, want %s", r.File, want)
	}
	if !strings.Contains(strings.Join(r.Problems, "\n"), "untrusted") {
		t.Errorf("the rogue CA's certificate is not reported as untrusted: %q", r.Problems)
	}
	// Nothing of ours goes into the peer store.
	if cs, _ := env.Store.Certificates(ownDomain); len(cs) != 0 {
		t.Errorf("our certificate was put in the peer store: %d", len(cs))
	}
	// A reload (a new env from the same policy) signs with the renewal,
	// and decrypts with both (R38).
	env2 := ownEnv(t, p)
	if got := signerFP(t, env2); got != fpOf(t, o.renewed) {
		t.Fatalf("after: signing with %s, want the renewed certificate %s", got, fpOf(t, o.renewed))
	}
	if len(env2.Identities) != 2 || len(env2.IdentityProblems) != 0 {
		t.Fatalf("identities %d, problems %q", len(env2.Identities), env2.IdentityProblems)
	}
	out, changed = RenewOwn(context.Background(), p, env2, failingFinder{t}, o.now)
	if r := oneRenewal(t, out); changed || r.Action != OwnCurrent || !r.ValidUntil.Equal(o.renewNA.Truncate(time.Second)) {
		t.Fatalf("after renewal: changed=%v %+v", changed, r)
	}
}

// A new key pair: the CA issued a certificate for a key the gateway does
// not sign with yet (the fixture agency-a-new.key). No key of ours matches it until it is
// named in smime.renewal_keys: then it is fetched and used.
func TestRenewOwnNewKey(t *testing.T) {
	o := newOwnPKI(t)
	newKey, _ := filepath.Abs(fx("agency-a-new.key"))
	issued := testpki.ReissueDomainCert(t, fx("ca.crt"), fx("ca.key"), newKey, o.dir, "new-key", o.now.Add(-time.Hour), o.renewNA, smime.DCACommonName, ownDCA)
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+
		testldap.DCALDIF("c=NZ", ownDomain, readCert(t, issued)))
	ldapSet := `smime.ldap=["ldap://` + srv.Addr + `"]`
	p := ownPolicy(t, o, ldapSet)
	out, changed, err := OwnRenewalCheck(context.Background(), p, ownEnv(t, p), o.now)
	if err != nil {
		t.Fatal(err)
	}
	r := oneRenewal(t, out)
	if changed || r.Action != OwnNotFound || !strings.Contains(strings.Join(r.Problems, "\n"), "no key of ours matches it: add its key to smime.renewal_keys") {
		t.Fatalf("without the key: changed=%v %+v", changed, r)
	}
	if _, err := os.Stat(filepath.Join(o.dir, "own", ownDomain)); err == nil {
		t.Fatal("a certificate no key matches was written")
	}
	p = ownPolicy(t, o, ldapSet, `smime.renewal_keys=["`+ownDomain+`:`+newKey+`"]`)
	out, changed, err = OwnRenewalCheck(context.Background(), p, ownEnv(t, p), o.now)
	if err != nil {
		t.Fatal(err)
	}
	if r := oneRenewal(t, out); !changed || r.Action != OwnRenewed {
		t.Fatalf("with the key: changed=%v %+v", changed, r)
	}
	if got, want := signerFP(t, ownEnv(t, p)), fpOf(t, issued); got != want {
		t.Fatalf("after: signing with %s, want the new key's certificate %s", got, want)
	}
}

// failingFinder fails the test when a directory is asked.
type failingFinder struct{ t *testing.T }

func (f failingFinder) Find(context.Context, string) (discovery.Found, error) {
	f.t.Helper()
	f.t.Fatal("a directory was asked though nothing is due")
	return discovery.Found{}, nil
}

// emptyFinder: the directories have nothing (or are down, when down).
type emptyFinder struct{ found discovery.Found }

func (f emptyFinder) Find(context.Context, string) (discovery.Found, error) { return f.found, nil }

// Not due, no directory, nothing found, no valid certificate at all: each
// gives its own outcome and writes nothing.
func TestRenewOwnOutcomes(t *testing.T) {
	o := newOwnPKI(t)
	ctx := context.Background()
	// Valid until 2046: not due.
	pCurrent, err := policy.Parse("t", nil, []string{
		`smime.identities=["` + ownDomain + `:../testdata/smime/agency-a-old.crt:../testdata/smime/agency-a-old.key"]`,
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`, `smime.crl_check=false`,
		`smime.peers="` + filepath.Join(o.dir, "peers") + `"`, `smime.own_dir="` + filepath.Join(o.dir, "own") + `"`,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := RenewOwn(ctx, pCurrent, ownEnv(t, pCurrent), failingFinder{t}, o.now)
	if r := oneRenewal(t, out); r.Action != OwnCurrent {
		t.Fatalf("not due: %+v", r)
	}
	// Due, no directory configured: said so.
	p := ownPolicy(t, o)
	out, changed, err := OwnRenewalCheck(ctx, p, ownEnv(t, p), o.now)
	if r := oneRenewal(t, out); err != nil || changed || r.Action != OwnNoSearch || !strings.Contains(strings.Join(r.Problems, "\n"), "smime.ca_ldap") {
		t.Fatalf("no directory: %v %+v", err, r)
	}
	// Due, the directory has nothing.
	out, changed = RenewOwn(ctx, p, ownEnv(t, p), emptyFinder{discovery.Found{}}, o.now)
	if r := oneRenewal(t, out); changed || r.Action != OwnNotFound || len(r.Problems) == 0 {
		t.Fatalf("nothing found: %+v", r)
	}
	// Our only certificate expired: due, whatever renew_before says.
	later := o.expiringNA.Add(time.Hour)
	env := ownEnv(t, p)
	env.Validator.Now = func() time.Time { return later }
	out, _ = RenewOwn(ctx, p, env, emptyFinder{discovery.Found{}}, later)
	if r := oneRenewal(t, out); r.Action != OwnNotFound || !strings.HasPrefix(r.Due, "no valid certificate of ours") || !r.ValidUntil.IsZero() {
		t.Fatalf("expired: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(o.dir, "own")); err == nil {
		t.Fatal("smime.own_dir was written though nothing was renewed")
	}
}

// What lies in smime.own_dir is used only when it is a DCA certificate of
// its domain and one of our keys matches it; anything else is an identity
// problem (`certs` and lint show it), never an identity.
func TestOwnDirLoadRefusesStrangers(t *testing.T) {
	o := newOwnPKI(t)
	p := ownPolicy(t, o)
	dir := filepath.Join(o.dir, "own", ownDomain)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, name string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(fx("agency-a-new.crt"), "nokey.pem") // a key we do not have
	copyFile(fx("agency-b.crt"), "misnamed.pem")  // another domain's DCA
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(o.renewed, "good.pem")
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.pem")); err != nil {
		t.Fatal(err)
	}
	env := ownEnv(t, p)
	if len(env.Identities) != 2 {
		t.Fatalf("identities: %d, want the configured one and good.pem", len(env.Identities))
	}
	probs := strings.Join(env.IdentityProblems, "\n")
	for _, want := range []string{"nokey.pem: no key in smime.identities or smime.renewal_keys matches it", "misnamed.pem", "garbage.pem", "zero.pem: not a regular file"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems lack %q:\n%s", want, probs)
		}
	}
	if got := signerFP(t, env); got != fpOf(t, o.renewed) {
		t.Fatalf("signing with %s, want good.pem", got)
	}
}

// The directory holds only the certificate we already have (the CA has
// not renewed it yet): not renewed, and said why.
func TestRenewOwnNothingNewer(t *testing.T) {
	o := newOwnPKI(t)
	p := ownPolicy(t, o)
	env := ownEnv(t, p)
	cs, err := smime.ReadCertificatesFile(o.expiring)
	if err != nil {
		t.Fatal(err)
	}
	c := discovery.Candidate{Fingerprint: smime.Fingerprint(cs[0]), State: smime.StateValid, NotAfter: cs[0].NotAfter, Cert: cs[0]}
	out, changed := RenewOwn(context.Background(), p, env, emptyFinder{discovery.Found{Candidates: []discovery.Candidate{c}}}, o.now)
	r := oneRenewal(t, out)
	if changed || r.Action != OwnNotFound || !strings.Contains(strings.Join(r.Problems, "\n"), "none valid, newer than ours") {
		t.Fatalf("%+v", r)
	}
}

// A new gateway: no identity yet, only a key whose certificate request
// went to the CA (smime.renewal_keys). The first certificate is fetched
// like a renewal, and then signs.
func TestRenewOwnFirstCertificate(t *testing.T) {
	o := newOwnPKI(t)
	newKey, _ := filepath.Abs(fx("agency-a-new.key"))
	issued := testpki.ReissueDomainCert(t, fx("ca.crt"), fx("ca.key"), newKey, o.dir, "first", o.now.Add(-time.Hour), o.renewNA, smime.DCACommonName, ownDCA)
	srv := testldap.Start(t, "c=NZ", testldap.CountryLDIF("c=NZ")+testldap.DCALDIF("c=NZ", ownDomain, readCert(t, issued)))
	p, err := policy.Parse("t", nil, []string{
		`smime.mode="on"`,
		`smime.renewal_keys=["` + ownDomain + `:` + newKey + `"]`,
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
		`smime.peers="` + filepath.Join(o.dir, "peers") + `"`,
		`smime.own_dir="` + filepath.Join(o.dir, "own") + `"`,
		`smime.pending="` + filepath.Join(o.dir, "pending") + `"`,
		`smime.crl_check=false`,
		`smime.ldap=["ldap://` + srv.Addr + `"]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(p.Warnings), "until a certificate for a key of smime.renewal_keys is fetched") {
		t.Errorf("lint warnings: %v", p.Warnings)
	}
	env := ownEnv(t, p)
	if id := env.Signer(context.Background(), ownDomain); id != nil {
		t.Fatal("a signer before any certificate")
	}
	out, changed, err := OwnRenewalCheck(context.Background(), p, env, o.now)
	if err != nil {
		t.Fatal(err)
	}
	if r := oneRenewal(t, out); !changed || r.Action != OwnRenewed || !strings.HasPrefix(r.Due, "no valid certificate of ours") {
		t.Fatalf("first certificate: changed=%v %+v", changed, r)
	}
	if got := signerFP(t, ownEnv(t, p)); got != fpOf(t, issued) {
		t.Fatalf("signing with %s, want the first certificate", got)
	}
}
