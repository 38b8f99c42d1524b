package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// storingDiscoverer is a PeerDiscoverer that puts cert in the store for
// any domain asked, and counts the questions.
type storingDiscoverer struct {
	store *smime.PeerStore
	cert  *x509.Certificate
	asked []string
}

func (d *storingDiscoverer) Discover(_ context.Context, domain string) (bool, []string) {
	d.asked = append(d.asked, domain)
	if _, err := d.store.Add(domain, d.cert); err != nil {
		return false, []string{err.Error()}
	}
	return true, []string{"LDAP discovery found " + smime.Fingerprint(d.cert)[:16]}
}

// agencyBBy is agency-b's DCA certificate (same names, same key) issued
// again by the CA fixture issuer, with serial; edit, when set, changes the
// template first.
func agencyBBy(t *testing.T, issuer string, serial int64, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	ca, err := smime.LoadIdentity(issuer, fx(issuer+".crt"), fx(issuer+".key"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *certOf(t, "agency-b")
	tmpl.SerialNumber = big.NewInt(serial)
	if edit != nil {
		edit(&tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Cert, tmpl.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certReplacedEnv: an env trusting ca.crt whose peer store holds c for
// agency-b.govt.nz, with a discoverer that stores agency-b's valid one.
func certReplacedEnv(t *testing.T, c *x509.Certificate) (*SMIMEEnv, *storingDiscoverer) {
	t.Helper()
	p, err := policy.Parse("t", nil, []string{
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
		`smime.peers="` + filepath.Join(t.TempDir(), "peers") + `"`,
		`smime.crl_check=false`,
		`outbound.seemail_domains=["agency-b.govt.nz"]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Add("agency-b.govt.nz", c); err != nil {
		t.Fatal(err)
	}
	d := &storingDiscoverer{store: env.Store, cert: certOf(t, "agency-b")}
	env.Discoverer = d
	return env, d
}

// Table 1, sending, "Untrusted / Unknown CA": "Auto-discover valid public
// key certificate (LDAP). Success: Send message. Notify Recipient's
// Postmaster": Peer answers with the discovered certificate and names the
// untrusted one it replaced, once: the next look-up finds the valid one in
// the store and asks no directory.
func TestPeerReplacedUntrusted(t *testing.T) {
	// agency-b's certificate by the rogue CA, which is no trust anchor.
	bad := agencyBBy(t, "rogue-ca", 4242, nil)
	env, d := certReplacedEnv(t, bad)
	ctx := context.Background()
	if st := env.Validator.Validate(ctx, bad, "agency-b.govt.nz", nil).State; st != smime.StateUntrusted {
		t.Fatalf("the rogue-signed certificate is %s, want untrusted", st)
	}
	got := env.Peer(ctx, "agency-b.govt.nz")
	if got.State != smime.StateValid || got.Fingerprint != smime.Fingerprint(certOf(t, "agency-b")) {
		t.Fatalf("after discovery: %+v", got)
	}
	if !slices.Equal(got.ReplacedUntrusted, []string{smime.Fingerprint(bad)}) {
		t.Fatalf("ReplacedUntrusted = %q, want the rogue-signed certificate's fingerprint", got.ReplacedUntrusted)
	}
	again := env.Peer(ctx, "agency-b.govt.nz")
	if again.State != smime.StateValid || len(again.ReplacedUntrusted) != 0 || len(d.asked) != 1 {
		t.Fatalf("second look-up: %+v, directories asked %d times", again, len(d.asked))
	}
}

// A stored certificate that is bad for another reason (expired, R58) is
// renewed by discovery too, but it was not untrusted: nothing to tell.
func TestPeerReplacedNotUntrusted(t *testing.T) {
	old := agencyBBy(t, "ca", 4243, func(c *x509.Certificate) {
		c.NotBefore = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
		c.NotAfter = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	})
	env, d := certReplacedEnv(t, old)
	ctx := context.Background()
	if st := env.Validator.Validate(ctx, old, "agency-b.govt.nz", nil).State; st != smime.StateExpired {
		t.Fatalf("the old certificate is %s, want expired", st)
	}
	got := env.Peer(ctx, "agency-b.govt.nz")
	if got.State != smime.StateValid || len(d.asked) != 1 || len(got.ReplacedUntrusted) != 0 {
		t.Fatalf("expired stored certificate: %+v, asked %d", got, len(d.asked))
	}
}
