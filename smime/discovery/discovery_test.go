package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

func loadCert(t testing.TB, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

// fakeRevocation revokes by serial (the CRL cache has its own tests; here
// only the state matters).
type fakeRevocation map[string]bool

func (f fakeRevocation) Status(_ context.Context, c, _ *x509.Certificate) (smime.Revocation, error) {
	if f[c.SerialNumber.String()] {
		return smime.Revoked, nil
	}
	return smime.NotRevoked, nil
}

// validator: the test CA is the anchor; agency-a-old and revoked.crt
// (agency-r) are revoked.
func validator(t testing.TB) *smime.Validator {
	pool := x509.NewCertPool()
	pool.AddCert(loadCert(t, "ca"))
	return &smime.Validator{Anchors: pool, Revocation: fakeRevocation{
		loadCert(t, "agency-a-old").SerialNumber.String(): true,
		loadCert(t, "revoked").SerialNumber.String():      true,
	}}
}

func dcaEntry(t testing.TB, org, domain string, certs ...string) string {
	var b strings.Builder
	b.WriteString("dn: cn=domain-confidentiality-authority,o=" + org + ",c=NZ\nobjectClass: inetOrgPerson\ncn: domain-confidentiality-authority\nsn: DCA\n")
	b.WriteString("mail: domain-confidentiality-authority@" + domain + "\n")
	for _, c := range certs {
		b.WriteString("userCertificate;binary:: " + base64.StdEncoding.EncodeToString(loadCert(t, c).Raw) + "\n")
	}
	return b.String() + "\n"
}

// directoryLDIF: c=NZ with agency-a (the renewed certificate only: the
// directory holds the current one), agency-b, agency-r (a revoked
// certificate), and the accredited lists.
func directoryLDIF(t testing.TB) string {
	return "dn: c=NZ\nobjectClass: country\nc: NZ\n\n" +
		"dn: o=agency-a.govt.nz,c=NZ\nobjectClass: organization\no: agency-a.govt.nz\n\n" +
		"dn: o=agency-b.govt.nz,c=NZ\nobjectClass: organization\no: agency-b.govt.nz\n\n" +
		"dn: o=agency-r.govt.nz,c=NZ\nobjectClass: organization\no: agency-r.govt.nz\n\n" +
		dcaEntry(t, "agency-a.govt.nz", "agency-a.govt.nz", "agency-a-new") +
		dcaEntry(t, "agency-b.govt.nz", "agency-b.govt.nz", "agency-b") +
		dcaEntry(t, "agency-r.govt.nz", "agency-r.govt.nz", "revoked") +
		"dn: ou=lists,c=NZ\nobjectClass: organizationalUnit\nou: lists\n\n" +
		"dn: ou=SEEMail,ou=lists,c=NZ\nobjectClass: organizationalUnit\nou: SEEMail\n\n" +
		"dn: cn=agency-a,ou=SEEMail,ou=lists,c=NZ\nobjectClass: inetOrgPerson\ncn: agency-a\nsn: list\nmail: *@agency-a.govt.nz\n\n" +
		"dn: cn=agency-b,ou=SEEMail,ou=lists,c=NZ\nobjectClass: inetOrgPerson\ncn: agency-b\nsn: list\nmail: *@Agency-B.govt.nz\nmail: @sub.agency-b.govt.nz\n\n"
}

func newDiscoverer(t *testing.T, urls ...string) *Discoverer {
	t.Helper()
	store, err := smime.NewPeerStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := &Discoverer{Base: "c=NZ", Timeout: 3 * time.Second, RetryAfter: time.Minute, Mode: ModeAuto,
		Validator: validator(t), Store: store, Pending: &Pending{Dir: t.TempDir()},
		Classify: func(domain string) []string {
			if domain == "agency-b.govt.nz" {
				return []string{"SEEMail"}
			}
			return nil
		}}
	for _, s := range urls {
		u, err := ParseURL(s)
		if err != nil {
			t.Fatal(err)
		}
		d.Directories = append(d.Directories, Directory{URL: u})
	}
	return d
}

func startDirectory(t *testing.T) *testldap.Server {
	return testldap.Start(t, "c=NZ", directoryLDIF(t))
}

// R43, R53: the DCA entry is found under c=NZ by its address, the
// certificate validated and stored (R54 auto), and classified (R55).
func TestLookupDiscoversAndStores(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t, "ldap://"+srv.Addr)
	res, err := d.Lookup(context.Background(), "Agency-B.govt.nz.")
	if err != nil {
		t.Fatalf("Lookup: %v (%+v)", err, res)
	}
	want := smime.Fingerprint(loadCert(t, "agency-b"))
	if res.Cert == nil || smime.Fingerprint(res.Cert) != want {
		t.Fatalf("Cert = %v, want agency-b", res.Cert)
	}
	if len(res.Candidates) != 1 || res.Candidates[0].Action != ActionStored || res.Candidates[0].State != smime.StateValid {
		t.Fatalf("candidates = %+v", res.Candidates)
	}
	if strings.Join(res.Lists, ",") != "SEEMail" {
		t.Errorf("Lists = %v, want SEEMail", res.Lists)
	}
	stored, _ := d.Store.Certificates("agency-b.govt.nz")
	if len(stored) != 1 || smime.Fingerprint(stored[0]) != want {
		t.Fatalf("peer store holds %d certificates", len(stored))
	}
	// Asked again: found in the store, nothing stored twice.
	res, err = d.Lookup(context.Background(), "agency-b.govt.nz")
	if err != nil || res.Candidates[0].Action != ActionKnown {
		t.Fatalf("second lookup: %v %+v", err, res.Candidates)
	}
}

// R58: the stored certificate is revoked; the directory has the renewed
// one, which is discovered, stored and chosen.
func TestLookupRenewalAfterRevocation(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t, "ldap://"+srv.Addr)
	if _, err := d.Store.Add("agency-a.govt.nz", loadCert(t, "agency-a-old")); err != nil {
		t.Fatal(err)
	}
	if pv := d.Store.Peer(context.Background(), d.Validator, "agency-a.govt.nz"); pv.State != smime.StateRevoked {
		t.Fatalf("before: state %s, want revoked", pv.State)
	}
	res, err := d.Lookup(context.Background(), "agency-a.govt.nz")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if got, want := smime.Fingerprint(res.Cert), smime.Fingerprint(loadCert(t, "agency-a-new")); got != want {
		t.Fatalf("Cert %s, want agency-a-new %s", got, want)
	}
	pv := d.Store.Peer(context.Background(), d.Validator, "agency-a.govt.nz")
	if pv.Cert == nil || !pv.Cert.Equal(loadCert(t, "agency-a-new")) {
		t.Fatalf("store's choice after discovery: %+v", pv)
	}
}

// R67: a certificate found that is not valid is not stored nor used; the
// answer is cached (no second search).
func TestLookupRevokedNotUsedAndCached(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t, "ldap://"+srv.Addr)
	var searches atomic.Int32
	d.search = func(ctx context.Context, u URL, tc *tls.Config, q query) ([][]byte, error) {
		searches.Add(1)
		return search(ctx, u, tc, q)
	}
	res, err := d.Lookup(context.Background(), "agency-r.govt.nz")
	if !errors.Is(err, ErrNotFound) || res.Cert != nil {
		t.Fatalf("Lookup = %v, %v; want ErrNotFound", res.Cert, err)
	}
	if len(res.Candidates) != 1 || res.Candidates[0].State != smime.StateRevoked || res.Candidates[0].Action != ActionNotUsed {
		t.Fatalf("candidates = %+v", res.Candidates)
	}
	if c, _ := d.Store.Certificates("agency-r.govt.nz"); len(c) != 0 {
		t.Fatal("a revoked certificate was stored")
	}
	res, err = d.Lookup(context.Background(), "agency-r.govt.nz")
	if !errors.Is(err, ErrNotFound) || !res.Cached || searches.Load() != 1 {
		t.Fatalf("second lookup: cached=%v searches=%d err=%v", res.Cached, searches.Load(), err)
	}
	d.Forget("agency-r.govt.nz")
	if _, err := d.Lookup(context.Background(), "agency-r.govt.nz"); !errors.Is(err, ErrNotFound) || searches.Load() != 2 {
		t.Fatalf("after Forget: searches=%d err=%v", searches.Load(), err)
	}
	// A domain without an entry: nothing found, no error from the search.
	res, err = d.Lookup(context.Background(), "agency-z.govt.nz")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || len(res.Errors) != 0 {
		t.Fatalf("absent domain: %v %v", err, res.Errors)
	}
}

// The directory goes down: the lookup fails as unavailable, and neither
// the domain nor the directory is asked again within RetryAfter.
func TestLookupDirectoryDown(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t, "ldap://"+srv.Addr)
	srv.Stop(t)
	var searches atomic.Int32
	d.search = func(ctx context.Context, u URL, tc *tls.Config, q query) ([][]byte, error) {
		searches.Add(1)
		return search(ctx, u, tc, q)
	}
	_, err := d.Lookup(context.Background(), "agency-b.govt.nz")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup with the directory down = %v", err)
	}
	if res, err := d.Lookup(context.Background(), "agency-b.govt.nz"); !res.Cached || err == nil {
		t.Fatalf("second lookup not answered from the negative cache: %+v", res)
	}
	// Another domain: the down directory is skipped, not dialled.
	res, err := d.Lookup(context.Background(), "agency-a.govt.nz")
	if !errors.Is(err, ErrUnavailable) || searches.Load() != 1 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "skipped") {
		t.Fatalf("other domain: searches=%d errors=%v err=%v", searches.Load(), res.Errors, err)
	}
}

// A directory that accepts the connection and never answers holds a
// lookup no longer than Timeout (smime.ldap_timeout).
func TestLookupTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); <-stop; c.Close() }()
		}
	}()
	t.Cleanup(func() { close(stop); l.Close(); conns.Wait() })
	d := newDiscoverer(t, "ldap://"+l.Addr().String())
	d.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = d.Lookup(context.Background(), "agency-b.govt.nz")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("lookup took %s with a 300ms timeout", took)
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "smime.ldap_timeout") {
		t.Fatalf("err = %v, want the timeout", err)
	}
}

// R54: in approve mode a valid certificate found waits in the pending
// directory, is not used, and is moved into the peer store by Approve;
// Reject keeps it from being queued again.
func TestApprovalFlow(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t, "ldap://"+srv.Addr)
	d.Mode = ModeApprove
	res, err := d.Lookup(context.Background(), "agency-b.govt.nz")
	if !errors.Is(err, ErrNotFound) || res.Cert != nil || len(res.Candidates) != 1 || res.Candidates[0].Action != ActionPending {
		t.Fatalf("approve mode lookup: %v %+v", err, res.Candidates)
	}
	if c, _ := d.Store.Certificates("agency-b.govt.nz"); len(c) != 0 {
		t.Fatal("stored before approval")
	}
	list, err := d.Pending.List()
	if err != nil || len(list) != 1 || list[0].Domain != "agency-b.govt.nz" || list[0].Rejected {
		t.Fatalf("pending = %+v, %v", list, err)
	}
	fp := list[0].Fingerprint
	if _, err := d.Pending.Approve(context.Background(), d.Validator, d.Store, "0000000000"); !errors.Is(err, ErrNoSuchPending) {
		t.Fatalf("approving an unknown fingerprint: %v", err)
	}
	pc, err := d.Pending.Approve(context.Background(), d.Validator, d.Store, fp[:12])
	if err != nil || pc.Fingerprint != fp {
		t.Fatalf("Approve: %v", err)
	}
	if pv := d.Store.Peer(context.Background(), d.Validator, "agency-b.govt.nz"); pv.Cert == nil || smime.Fingerprint(pv.Cert) != fp {
		t.Fatalf("after approval the store gives %+v", pv)
	}
	if list, _ := d.Pending.List(); len(list) != 0 {
		t.Fatalf("still pending after approval: %+v", list)
	}

	// Reject: agency-a's renewed certificate.
	res, _ = d.Lookup(context.Background(), "agency-a.govt.nz")
	if len(res.Candidates) != 1 || res.Candidates[0].Action != ActionPending {
		t.Fatalf("agency-a: %+v", res.Candidates)
	}
	if _, err := d.Pending.Reject(res.Candidates[0].Fingerprint); err != nil {
		t.Fatal(err)
	}
	d.Forget("agency-a.govt.nz")
	res, _ = d.Lookup(context.Background(), "agency-a.govt.nz")
	if res.Candidates[0].Action != ActionRejected {
		t.Fatalf("after reject: %+v", res.Candidates)
	}
	if list, _ := d.Pending.List(); len(list) != 1 || !list[0].Rejected {
		t.Fatalf("pending after reject: %+v", list)
	}
	// A certificate that became invalid while it waited is not approved.
	if _, err := d.Pending.Add("agency-r.govt.nz", loadCert(t, "revoked")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pending.Approve(context.Background(), d.Validator, d.Store, smime.Fingerprint(loadCert(t, "revoked"))); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("approving a revoked certificate: %v", err)
	}
}

// R58: a CA's directory vouches only for certificates under that CA.
func TestCADirectoryOnlyItsCA(t *testing.T) {
	srv := startDirectory(t)
	d := newDiscoverer(t)
	u, _ := ParseURL("ldap://" + srv.Addr + "/c=NZ")
	d.Directories = []Directory{{URL: u, Anchors: []*x509.Certificate{loadCert(t, "rogue-ca")}}}
	res, err := d.Lookup(context.Background(), "agency-b.govt.nz")
	if err == nil || len(res.Candidates) != 1 || res.Candidates[0].State != smime.StateUntrusted || !strings.Contains(res.Candidates[0].Reason, "R58") {
		t.Fatalf("rogue CA directory: %v %+v", err, res.Candidates)
	}
	d.Forget("agency-b.govt.nz")
	d.Directories[0].Anchors = []*x509.Certificate{loadCert(t, "ca")}
	if res, err := d.Lookup(context.Background(), "agency-b.govt.nz"); err != nil {
		t.Fatalf("the CA's own directory: %v %+v", err, res.Candidates)
	}
}

func TestLookupRefusesBadDomain(t *testing.T) {
	d := newDiscoverer(t, "ldap://127.0.0.1:1")
	for _, dom := range []string{"", "*", "a)(mail=*", "../x", "x/y"} {
		if _, err := d.Lookup(context.Background(), dom); !errors.Is(err, smime.ErrBadDomain) {
			t.Errorf("Lookup(%q) = %v, want ErrBadDomain", dom, err)
		}
	}
}

// Concurrent lookups of one domain ask the directory once.
func TestLookupOncePerDomain(t *testing.T) {
	d := newDiscoverer(t, "ldap://127.0.0.1:1")
	var searches atomic.Int32
	release := make(chan struct{})
	d.search = func(ctx context.Context, u URL, tc *tls.Config, q query) ([][]byte, error) {
		searches.Add(1)
		<-release
		return nil, nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = d.Lookup(context.Background(), "agency-b.govt.nz") }()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := searches.Load(); n != 1 {
		t.Fatalf("%d searches for 8 concurrent lookups", n)
	}
}

// The query: the URL's base, scope, attribute and filter, the DCA address
// filter ANDed to it (the address is escaped, RFC 4515, though checkDomain
// already refuses the characters that would need it).
func TestFilterEscaped(t *testing.T) {
	d := newDiscoverer(t, "ldap://127.0.0.1:1/o=x,c=NZ?userCertificate?one?(objectClass=inetOrgPerson)")
	var got query
	d.search = func(ctx context.Context, u URL, tc *tls.Config, q query) ([][]byte, error) {
		got = q
		return nil, nil
	}
	_, _ = d.Lookup(context.Background(), "a_b.govt.nz")
	want := "(&(objectClass=inetOrgPerson)(|(mail=domain-confidentiality-authority@a_b.govt.nz)(rfc822Mailbox=domain-confidentiality-authority@a_b.govt.nz)))"
	if got.filter != want || got.base != "o=x,c=NZ" || got.scope != ScopeOne || strings.Join(got.attrs, ",") != "userCertificate" {
		t.Fatalf("query = %+v", got)
	}
}

// A directory's answer is bounded in bytes read, not only in entries and
// values kept: past the limit the search fails as unavailable.
func TestSearchByteLimit(t *testing.T) {
	srv := startDirectory(t)
	u, err := ParseURL("ldap://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	q := query{base: "c=NZ", scope: ScopeSub, filter: "(objectClass=*)", attrs: []string{"userCertificate;binary"},
		sizeLimit: maxCertEntries, maxValues: maxCertValues, maxValue: maxCertValue, maxBytes: maxCertBytes}
	vals, err := search(ctx, u, nil, q)
	if err != nil || len(vals) != 3 {
		t.Fatalf("within the limit: %d values, %v", len(vals), err)
	}
	q.maxBytes = 2000 // less than one certificate
	if _, err := search(ctx, u, nil, q); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past the byte limit: %v, want ErrUnavailable", err)
	}
}

// ldaps:// (R52 over TLS): the certificate is found through a TLS
// connection verified against the configured roots; an untrusted server
// certificate fails the directory.
func TestLookupLDAPS(t *testing.T) {
	srv := testldap.StartLDAPS(t, "c=NZ", directoryLDIF(t))
	d := newDiscoverer(t, "ldaps://"+srv.Addr)
	d.TLS = &tls.Config{RootCAs: srv.Roots, MinVersion: tls.VersionTLS12}
	if res, err := d.Lookup(context.Background(), "agency-b.govt.nz"); err != nil || res.Cert == nil {
		t.Fatalf("ldaps lookup: %v %+v", err, res.Errors)
	}
	d2 := newDiscoverer(t, "ldaps://"+srv.Addr) // system roots: the test certificate is not trusted
	if _, err := d2.Lookup(context.Background(), "agency-b.govt.nz"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("untrusted ldaps server: %v", err)
	}
}
