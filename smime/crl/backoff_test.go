package crl

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// clock is a settable fake clock, safe for the cache's fetch goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (s *crlServer) cacheClock(dir string, clk *clock) *Cache {
	c := s.cache(dir, nil)
	c.Now = clk.now
	return c
}

// fetched is a cache on a fake clock at 2030 that has fetched ca.crl once
// (revoked.crt listed), with the server, the clock and the certificates.
type fetched struct {
	srv         *crlServer
	clk         *clock
	c           *Cache
	ca, revoked *x509.Certificate
}

func newFetched(t *testing.T) fetched {
	t.Helper()
	f := fetched{srv: newCRLServer(t, "ca.crl"), clk: &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, ca: cert(t, "ca"), revoked: cert(t, "revoked")}
	f.c = f.srv.cacheClock(t.TempDir(), f.clk)
	if st, err := f.c.Status(context.Background(), f.revoked, f.ca); st != smime.Revoked {
		t.Fatalf("first fetch: %v %v", st, err)
	}
	return f
}

// R59: a hanging distribution point costs one smime.crl_timeout, not one
// per message: the first lookup gives up at the timeout with unknown
// status, the next 50 answer at once without connecting again.
func TestHangingDistributionPointBacksOff(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	srv.set(func(s *crlServer) { s.hang = make(chan struct{}) })
	c := srv.cache(t.TempDir(), nil)
	var logMu sync.Mutex
	var lines []string
	c.Log = func(msg string, args ...any) {
		logMu.Lock()
		lines = append(lines, fmt.Sprint(append([]any{msg}, args...)...))
		logMu.Unlock()
	}
	ca, good := cert(t, "ca"), cert(t, "agency-b")
	ctx := context.Background()
	start := time.Now()
	st, err := c.Status(ctx, good, ca)
	if d := time.Since(start); d > c.Timeout+time.Second {
		t.Fatalf("first lookup took %v with a %v timeout", d, c.Timeout)
	}
	if st != smime.RevocationUnknown || !errors.Is(err, ErrFetch) {
		t.Fatalf("first lookup: %v %v, want unknown status with ErrFetch", st, err)
	}
	start = time.Now()
	for i := range 50 {
		st, err := c.Status(ctx, good, ca)
		if st != smime.RevocationUnknown || !errors.Is(err, ErrBackoff) {
			t.Fatalf("lookup %d in back-off: %v %v, want unknown status with ErrBackoff", i, st, err)
		}
	}
	if d := time.Since(start); d > c.Timeout/2 {
		t.Errorf("50 lookups in back-off took %v; each must answer at once", d)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections to the hanging distribution point, want 1", n)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d requests to the hanging distribution point, want 1", n)
	}
	// Why the status is unknown is logged once, with the retry time; the
	// lookups in back-off carry it in their error (the validator's reason).
	// (The fetch logs before it ends the lookups waiting for it.)
	logMu.Lock()
	defer logMu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], "status unknown") || !strings.Contains(lines[0], "retry_at") {
		t.Errorf("log lines %q, want one saying the status is unknown until retry_at", lines)
	}
	if _, err := c.Status(ctx, good, ca); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("the back-off error does not say why: %v", err)
	}
}

// The back-off doubles from BackoffMin to BackoffMax per failure and a
// success resets it.
func TestBackoffDoublesAndResets(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	srv.set(func(s *crlServer) { s.down = true })
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := srv.cacheClock(t.TempDir(), clk)
	c.BackoffMin, c.BackoffMax = time.Minute, 5*time.Minute
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	ctx := context.Background()
	lookup := func(step string, wantHits int32) (smime.Revocation, error) {
		t.Helper()
		st, err := c.Status(ctx, revoked, ca)
		if n := srv.hits.Load(); n != wantHits {
			t.Fatalf("%s: %d fetches, want %d", step, n, wantHits)
		}
		return st, err
	}
	hits := int32(0)
	// Failures at 0, then after 1, 2, 4, 5 (capped), 5 minutes.
	for i, wait := range []time.Duration{0, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		if wait > 0 {
			clk.add(wait - time.Second)
			if _, err := lookup("just before the back-off ends", hits); !errors.Is(err, ErrBackoff) {
				t.Fatalf("failure %d: %v, want ErrBackoff", i, err)
			}
			clk.add(time.Second)
		}
		hits++
		if st, err := lookup("back-off ended", hits); st != smime.RevocationUnknown || errors.Is(err, ErrBackoff) {
			t.Fatalf("failure %d: %v %v, want a fetch failure", i, st, err)
		}
	}
	// Back up: the next attempt succeeds and resets the back-off.
	srv.set(func(s *crlServer) { s.down = false })
	clk.add(5 * time.Minute)
	hits++
	if st, err := lookup("distribution point back", hits); st != smime.Revoked {
		t.Fatalf("after recovery: %v %v", st, err)
	}
	// Down again once the CRL has expired: the stale CRL answers, and the
	// back-off starts again at BackoffMin.
	srv.set(func(s *crlServer) { s.down = true })
	clk.set(time.Date(2045, 2, 1, 0, 0, 0, 0, time.UTC))
	hits++
	if st, err := lookup("expired, down", hits); st != smime.Revoked || err != nil {
		t.Fatalf("expired CRL, down: %v %v, want the last good CRL (R40)", st, err)
	}
	clk.add(59 * time.Second)
	if st, err := lookup("expired, in back-off", hits); st != smime.Revoked || err != nil {
		t.Fatalf("in back-off: %v %v, want the last good CRL without a fetch", st, err)
	}
	clk.add(time.Second)
	hits++
	lookup("back-off after the reset is BackoffMin", hits)
}

// gatedCache is a cache whose server holds every request until its gate
// is closed (srv.set(... close(s.gate) ...)).
func gatedCache(t *testing.T) (*crlServer, *Cache) {
	srv := newCRLServer(t, "ca.crl")
	srv.set(func(s *crlServer) { s.gate = make(chan struct{}) })
	c := srv.cache(t.TempDir(), nil)
	c.Timeout = 10 * time.Second
	return srv, c
}

// Concurrent lookups of one distribution point share one fetch.
func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	srv, c := gatedCache(t)
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	const n = 20
	var wg sync.WaitGroup
	results := make([]smime.Revocation, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = c.Status(context.Background(), revoked, ca)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the other lookups arrive at the flight
	srv.set(func(s *crlServer) { close(s.gate); s.gate = nil })
	wg.Wait()
	for i, st := range results {
		if st != smime.Revoked {
			t.Errorf("lookup %d: %v, want revoked", i, st)
		}
	}
	if h := srv.hits.Load(); h != 1 {
		t.Errorf("%d fetches for %d concurrent lookups, want 1", h, n)
	}
}

// A caller whose context ends stops waiting, but the shared fetch goes on
// for the others and is cached.
func TestCallerContextDoesNotCancelSharedFetch(t *testing.T) {
	srv, c := gatedCache(t)
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if st, err := c.Status(ctx, revoked, ca); st != smime.RevocationUnknown || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller gave up: %v %v", st, err)
	}
	srv.set(func(s *crlServer) { close(s.gate); s.gate = nil })
	if st, err := c.Status(context.Background(), revoked, ca); st != smime.Revoked {
		t.Fatalf("after the shared fetch: %v %v", st, err)
	}
	if h := srv.hits.Load(); h != 1 {
		t.Errorf("%d fetches, want 1 (the second lookup joins the first fetch)", h)
	}
}

// After a restart with the CRL on disk expired and the distribution point
// down, the disk copy answers (R40) and the point backs off.
func TestStaleDiskCopyAfterRestart(t *testing.T) {
	srv := newCRLServer(t, "ca.crl")
	dir := t.TempDir()
	ca, revoked := cert(t, "ca"), cert(t, "revoked")
	if st, _ := srv.cache(dir, nil).Status(context.Background(), revoked, ca); st != smime.Revoked {
		t.Fatalf("first fetch: %v", st)
	}
	srv.set(func(s *crlServer) { s.down = true })
	clk := &clock{t: time.Date(2045, 3, 1, 0, 0, 0, 0, time.UTC)} // past nextUpdate
	restarted := srv.cacheClock(dir, clk)
	for i := range 5 {
		if st, err := restarted.Status(context.Background(), revoked, ca); st != smime.Revoked || err != nil {
			t.Fatalf("lookup %d: %v %v, want the stale disk copy", i, st, err)
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (one before the restart, one after, then back-off)", n)
	}
}

// A replayed older CRL does not replace the cached one (it could lift a
// revocation); an expired one is used only when nothing better is cached.
func TestOlderCRLRejected(t *testing.T) {
	f := newFetched(t)
	srv, clk, c, ca, revoked := f.srv, f.clk, f.c, f.ca, f.revoked
	srv.set(func(s *crlServer) { s.serve = "ca-expired.crl" }) // 2020, lists nothing
	clk.set(time.Date(2045, 3, 1, 0, 0, 0, 0, time.UTC))
	if st, err := c.Status(context.Background(), revoked, ca); st != smime.Revoked || err != nil {
		t.Fatalf("older CRL served: %v %v, want the cached CRL kept (revoked)", st, err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// Refresh fetches a CRL due, honours the back-off when the distribution
// point fails, and Run stops with its context.
func TestRefreshHonoursBackoffAndStops(t *testing.T) {
	f := newFetched(t)
	srv, clk, c, ca, revoked := f.srv, f.clk, f.c, f.ca, f.revoked
	ctx := context.Background()
	srv.set(func(s *crlServer) { s.down = true })
	clk.set(time.Date(2044, 12, 31, 23, 30, 0, 0, time.UTC)) // 30 minutes before nextUpdate
	c.Refresh(ctx, time.Hour, nil)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("a due CRL was not refreshed: %d fetches", n)
	}
	c.Refresh(ctx, time.Hour, nil)
	clk.add(59 * time.Second)
	c.Refresh(ctx, time.Hour, nil)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("refreshed in back-off: %d fetches", n)
	}
	if st, err := c.Status(ctx, revoked, ca); st != smime.Revoked || err != nil {
		t.Fatalf("the CRL is still current: %v %v", st, err)
	}
	srv.set(func(s *crlServer) { s.down, s.serve = false, "ca-empty.crl" })
	clk.add(time.Second)
	c.Refresh(ctx, time.Hour, nil)
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("not refreshed after the back-off: %d fetches", n)
	}
	if st, _ := c.Status(ctx, revoked, ca); st != smime.NotRevoked {
		t.Fatalf("after the refresh: %v", st)
	}
	// The refresh found nothing newer (same nextUpdate): it is not
	// repeated at once.
	c.Refresh(ctx, time.Hour, nil)
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("a refresh that found nothing newer was repeated at once: %d fetches", n)
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx, time.Millisecond, time.Hour, nil); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

// Run refreshes by itself, before nextUpdate.
func TestRunRefreshesBeforeExpiry(t *testing.T) {
	f := newFetched(t)
	srv, clk, c, ca, revoked := f.srv, f.clk, f.c, f.ca, f.revoked
	srv.set(func(s *crlServer) { s.serve = "ca-empty.crl" })
	clk.set(time.Date(2044, 12, 31, 23, 30, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { c.Run(ctx, 5*time.Millisecond, time.Hour, nil); close(ran) }()
	// Before nextUpdate, the refreshed CRL (no longer listing it) answers.
	// (Not "the server saw a second request": the fetch goes on after
	// that, checking and storing what it got.)
	st := smime.Revoked
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st, _ = c.Status(context.Background(), revoked, ca); st == smime.NotRevoked {
			break
		}
	}
	cancel()
	<-ran
	if st != smime.NotRevoked {
		t.Fatalf("Run did not refresh before nextUpdate: %v (%d fetches)", st, srv.hits.Load())
	}
}
