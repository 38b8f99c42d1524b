package crl

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testldap"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

const fixtures = "../../testdata/smime"

func cert(t *testing.T, name string) *x509.Certificate { return testpki.FixtureCert(t, name) }

// crlServer is a loopback HTTP server for the fixtures' distribution point
// http://crl.test/ca.crl: it serves the CRL file named in serve, fails
// while down is set, and hangs while hang is set.
type crlServer struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	serve string
	down  bool
	hang  chan struct{}
	hits  atomic.Int32
	conns atomic.Int32 // TCP connections accepted
	// gate, when set, holds every request until it is closed.
	gate chan struct{}
}

func newCRLServer(t *testing.T, file string) *crlServer {
	s := &crlServer{t: t, serve: file}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		file, down, hang, gate := s.serve, s.down, s.hang, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		if down || r.URL.Path != "/ca.crl" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join(fixtures, file))
	}))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	t.Cleanup(func() {
		s.mu.Lock()
		if s.hang != nil {
			close(s.hang)
			s.hang = nil
		}
		if s.gate != nil {
			close(s.gate)
			s.gate = nil
		}
		s.mu.Unlock()
		s.srv.Close()
	})
	return s
}

func (s *crlServer) set(f func(s *crlServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// cache returns a Cache whose HTTP fetcher dials the loopback server
// whatever host the URL names.
func (s *crlServer) cache(dir string, now *time.Time) *Cache {
	addr := s.srv.Listener.Addr().String()
	client := &http.Client{Transport: &http.Transport{Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	// 2 s: a fetch from loopback that must succeed, also on a loaded CI
	// machine under -race.
	c := &Cache{Dir: dir, Timeout: 2 * time.Second, Fetchers: map[string]Fetcher{"http": HTTPFetcher{Client: client}}}
	if now != nil {
		c.Now = func() time.Time { return *now }
	}
	// Registered after the caller's t.TempDir() for dir, so it runs
	// before that directory is removed: no fetch still writing into it.
	s.t.Cleanup(c.Wait)
	return c
}

func TestStatusFetchedOverHTTP(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	c := srv.cache(t.TempDir(), nil)
	ca := cert(t, "ca")
	ctx := context.Background()
	if st, err := c.Status(ctx, cert(t, "revoked"), ca); st != smime.Revoked {
		t.Fatalf("revoked certificate: %v %v", st, err)
	}
	if st, err := c.Status(ctx, cert(t, "agency-b"), ca); st != smime.NotRevoked || err != nil {
		t.Fatalf("good certificate: %v %v", st, err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1: the CRL is cached until nextUpdate (R39)", n)
	}
}

// R40: the last good CRL is used when the distribution point is down, also
// past its nextUpdate; once it is back, the CRL is refreshed.
func TestStaleWhenDownRefreshedAfterNextUpdate(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := srv.cache(t.TempDir(), &now)
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	ctx := context.Background()
	if st, _ := c.Status(ctx, revoked, ca); st != smime.Revoked {
		t.Fatalf("first fetch: %v", st)
	}
	srv.set(func(s *crlServer) { s.down = true })
	now = time.Date(2045, 6, 1, 0, 0, 0, 0, time.UTC) // past nextUpdate (2045-01-01)
	if st, err := c.Status(ctx, revoked, ca); st != smime.Revoked || err != nil {
		t.Fatalf("distribution point down: %v %v, want the last good CRL (revoked)", st, err)
	}
	if srv.hits.Load() != 2 {
		t.Errorf("an expired CRL must be refetched first: %d hits", srv.hits.Load())
	}
	// The CA lifts the revocation; the refreshed CRL no longer lists it.
	srv.set(func(s *crlServer) { s.down, s.serve = false, "ca-empty.crl" })
	now = time.Date(2045, 6, 2, 0, 0, 0, 0, time.UTC)
	if st, err := c.Status(ctx, revoked, ca); st != smime.NotRevoked || err != nil {
		t.Fatalf("after the refresh: %v %v, want not revoked", st, err)
	}
}

// The disk copy serves after a restart, with the distribution point down.
func TestDiskCopySurvivesRestart(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	dir := t.TempDir()
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	if st, _ := srv.cache(dir, nil).Status(context.Background(), revoked, ca); st != smime.Revoked {
		t.Fatalf("first fetch: %v", st)
	}
	srv.set(func(s *crlServer) { s.down = true })
	restarted := srv.cache(dir, nil)
	if st, err := restarted.Status(context.Background(), revoked, ca); st != smime.Revoked || err != nil {
		t.Fatalf("after a restart with the distribution point down: %v %v", st, err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("the current disk copy must be used without a fetch: %d hits", n)
	}
}

// R59: a hanging distribution point never holds a message past the timeout;
// with no CRL at all the status is unknown (Table 1).
func TestHangingDistributionPointTimesOut(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	srv.set(func(s *crlServer) { s.hang = make(chan struct{}) })
	c := srv.cache(t.TempDir(), nil)
	start := time.Now()
	st, err := c.Status(context.Background(), cert(t, "agency-b"), cert(t, "ca"))
	if st != smime.RevocationUnknown || !errors.Is(err, ErrFetch) {
		t.Fatalf("hanging server: %v %v, want unknown with ErrFetch", st, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with a %v timeout", d, c.Timeout)
	}
}

// A CRL not signed by the issuer is not used.
func TestCRLOfAnotherIssuerRejected(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	c := srv.cache(t.TempDir(), nil)
	// Ask with the rogue CA as the issuer: the CRL's signature is the test CA's.
	st, err := c.Status(context.Background(), cert(t, "agency-b"), cert(t, "rogue-ca"))
	if st != smime.RevocationUnknown || !errors.Is(err, ErrFetch) {
		t.Fatalf("CRL signed by another CA: %v %v", st, err)
	}
}

func TestNoDistributionPoint(t *testing.T) {
	c := &Cache{Fetchers: map[string]Fetcher{"http": HTTPFetcher{}}}
	ca := cert(t, "ca") // the CA certificate names no distribution point
	if st, err := c.Status(context.Background(), ca, ca); st != smime.RevocationUnknown || !errors.Is(err, ErrNoDistributionPoint) {
		t.Fatalf("%v %v", st, err)
	}
}

// Refresh fetches a CRL that is about to expire; a failed refresh keeps the
// old one.
func TestBackgroundRefresh(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := srv.cache(t.TempDir(), &now)
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	if st, _ := c.Status(context.Background(), revoked, ca); st != smime.Revoked {
		t.Fatal("first fetch")
	}
	issuers := func([]byte) *x509.Certificate { return ca }
	c.Refresh(context.Background(), time.Hour, issuers)
	if srv.hits.Load() != 1 {
		t.Fatalf("refreshed a CRL that is not due: %d hits", srv.hits.Load())
	}
	srv.set(func(s *crlServer) { s.serve = "ca-empty.crl" })
	now = time.Date(2044, 12, 31, 23, 30, 0, 0, time.UTC) // 30 minutes before nextUpdate
	c.Refresh(context.Background(), time.Hour, issuers)
	if srv.hits.Load() != 2 {
		t.Fatalf("a CRL due within the margin was not refreshed: %d hits", srv.hits.Load())
	}
	if st, _ := c.Status(context.Background(), revoked, ca); st != smime.NotRevoked {
		t.Fatalf("after the background refresh: %v", st)
	}
}

// The cache is the Validator's revocation source (R36).
func TestValidatorWithCache(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	pool := x509.NewCertPool()
	pool.AddCert(cert(t, "ca"))
	v := &smime.Validator{Anchors: pool, Revocation: srv.cache(t.TempDir(), nil)}
	if got := v.Validate(context.Background(), cert(t, "revoked"), "agency-r.govt.nz", nil); got.State != smime.StateRevoked {
		t.Fatalf("revoked: %q %s", got.State, got.Reason)
	}
	if got := v.Validate(context.Background(), cert(t, "agency-b"), "agency-b.govt.nz", nil); got.State != smime.StateValid {
		t.Fatalf("valid: %q %s", got.State, got.Reason)
	}
	srv.set(func(s *crlServer) { s.down = true })
	fresh := &smime.Validator{Anchors: pool, Revocation: srv.cache(t.TempDir(), nil)}
	if got := fresh.Validate(context.Background(), cert(t, "agency-b"), "agency-b.govt.nz", nil); got.State != smime.StateUnknown {
		t.Fatalf("no CRL obtainable: %q, want unknown status (Table 1)", got.State)
	}
}

// R39: a CRL at an ldap:// distribution point, from a private slapd (the
// fixtures name ldap://ldap.test/cn=ca%2Cc=NZ?certificateRevocationList).
func TestStatusFetchedOverLDAP(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join(fixtures, "ca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	srv := testldap.Start(t, "c=NZ", "dn: c=NZ\nobjectClass: country\nc: NZ\n\n"+
		"dn: cn=ca,c=NZ\nobjectClass: cRLDistributionPoint\ncn: ca\ncertificateRevocationList;binary:< file://"+abs+"\n")
	c := &Cache{Dir: t.TempDir(), Timeout: 2 * time.Second, Fetchers: map[string]Fetcher{"ldap": LDAPFetcher{Addr: srv.Addr}}}
	ca := cert(t, "ca")
	if st, err := c.Status(context.Background(), cert(t, "revoked"), ca); st != smime.Revoked {
		t.Fatalf("revoked certificate over LDAP: %v %v", st, err)
	}
	if st, err := c.Status(context.Background(), cert(t, "agency-b"), ca); st != smime.NotRevoked || err != nil {
		t.Fatalf("good certificate over LDAP: %v %v", st, err)
	}
	// The directory goes down: a fresh cache (no copy) cannot tell.
	srv.Stop(t)
	fresh := &Cache{Timeout: time.Second, Fetchers: map[string]Fetcher{"ldap": LDAPFetcher{Addr: srv.Addr}}}
	if st, err := fresh.Status(context.Background(), cert(t, "agency-b"), ca); st != smime.RevocationUnknown || err == nil {
		t.Fatalf("directory down, no copy: %v %v", st, err)
	}
}
