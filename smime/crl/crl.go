// Package crl is the CRL cache of the domain S/MIME gateway (R36, R39-R40,
// R49, R59): CRLs fetched from a certificate's distribution points (http
// and ldap URLs) with a timeout, their signature checked against the
// issuer, kept until nextUpdate in memory and on disk (so a restart does
// not refetch), the last good one used when the distribution point is
// down, and refreshed in the background before they expire.
//
// A distribution point that fails (timeout, refused, HTTP error, a CRL
// that does not parse or is not the issuer's) is left alone for a back-off
// that doubles from BackoffMin to BackoffMax and resets on success;
// meanwhile lookups answer at once from the last good CRL, or "unknown
// status" when there is none. Concurrent lookups of one distribution point
// share one fetch. So a hanging distribution point costs at most one
// smime.crl_timeout per back-off, not one per message (R59).
package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Sentinel errors.
var (
	ErrNoDistributionPoint = errors.New("crl: certificate names no usable CRL distribution point")
	ErrFetch               = errors.New("crl: fetching the CRL failed")
	ErrBadCRL              = errors.New("crl: the CRL is malformed or not signed by the issuer")
	// ErrBackoff: the distribution point failed recently and is not
	// asked again before its back-off ends (R59).
	ErrBackoff = errors.New("crl: distribution point failed recently; not fetched again before its back-off ends")
	// ErrOlder: the distribution point served a CRL older than the one
	// cached (a replayed CRL must not lift a revocation).
	ErrOlder = errors.New("crl: the CRL is older than the cached one")
	// ErrExpired: the distribution point served no CRL current now.
	ErrExpired = errors.New("crl: the distribution point serves no current CRL")
)

// MaxCRL bounds a fetched CRL (a national CA's CRL is well under this).
const MaxCRL = 16 << 20

// Defaults of the Cache's knobs.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultBackoffMin = time.Minute
	DefaultBackoffMax = 30 * time.Minute
	// DefaultRefreshInterval and DefaultRefreshMargin are what serve runs
	// Run with: a look every minute, a refresh from an hour before
	// nextUpdate (or half the CRL's validity when that is shorter).
	DefaultRefreshInterval = time.Minute
	DefaultRefreshMargin   = time.Hour
)

// Fetcher fetches the raw CRL (DER, or PEM) at a distribution point URL.
type Fetcher interface {
	Fetch(ctx context.Context, u *url.URL) ([]byte, error)
}

// HTTPFetcher fetches http:// (and https://) distribution points.
type HTTPFetcher struct {
	// Client is the HTTP client; nil means a client with no proxy and
	// the context's deadline only. Tests inject one whose transport dials
	// a loopback server.
	Client *http.Client
}

// defaultClient is shared by every HTTPFetcher without a Client: one
// transport, no proxy, no idle connections kept (a CRL is fetched at most
// a few times a day; a transport per fetch would leak its idle
// connections).
var defaultClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// Fetch GETs u, at most MaxCRL bytes.
func (h HTTPFetcher) Fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRL+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCRL {
		return nil, fmt.Errorf("CRL larger than %d bytes", MaxCRL)
	}
	return data, nil
}

// Cache is the CRL cache. It implements smime.RevocationChecker. The zero
// value is not usable: set Dir (or leave it empty for memory only) and
// Fetchers, or use New. The fields are set before the first use.
type Cache struct {
	// Dir holds one file per distribution point (smime.crl_dir); "" keeps
	// CRLs in memory only.
	Dir string
	// Fetchers by URL scheme ("http", "https", "ldap").
	Fetchers map[string]Fetcher
	// Timeout bounds one fetch (smime.crl_timeout, R59: a hanging
	// distribution point never holds mail longer); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the back-off after a failure: the
	// first is BackoffMin, each further failure doubles it, up to
	// BackoffMax; a success resets it. 0 means the defaults.
	BackoffMin, BackoffMax time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log, when set, receives one line per fetch, failure, back-off and
	// stale use (not per lookup answered from the cache).
	Log func(msg string, args ...any)

	mu      sync.Mutex
	points  map[string]*point // by distribution point URL
	flights sync.WaitGroup    // fetches running (run), for Wait
}

// Wait blocks until every fetch in progress has ended, the disk copy of
// its CRL written. A fetch outlives the lookup or refresh that started it
// (a lookup gives up at its deadline, the fetch goes on until Timeout),
// so whoever removes Dir waits first. Call it once no more lookups or
// refreshes start.
func (c *Cache) Wait() { c.flights.Wait() }

// point is one distribution point: its last good CRL, its back-off and the
// fetch in flight. Its fields are guarded by mu.
type point struct {
	mu       sync.Mutex
	entry    *entry // the last good CRL, nil when none
	diskRead bool   // the disk copy was looked for (once per point)
	fails    int    // consecutive failures since the last success
	retryAt  time.Time
	lastErr  error
	flight   *flight // the fetch in flight, shared by every lookup
}

type entry struct {
	list    *x509.RevocationList
	issuer  *x509.Certificate // the issuer whose signature was checked
	fetched time.Time
}

// flight is one fetch; done closes when it has ended and the point is
// updated; err is its failure (nil: the point holds the fetched CRL).
type flight struct {
	done chan struct{}
	err  error
}

// New returns a cache in dir with the HTTP and LDAP fetchers and the given
// timeout.
func New(dir string, timeout time.Duration) *Cache {
	return &Cache{Dir: dir, Timeout: timeout, Fetchers: map[string]Fetcher{"http": HTTPFetcher{}, "https": HTTPFetcher{}, "ldap": LDAPFetcher{}}}
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) log(msg string, args ...any) {
	if c.Log != nil {
		c.Log(msg, args...)
	}
}

func (c *Cache) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (c *Cache) backoff(n int) time.Duration {
	lo, hi := c.BackoffMin, c.BackoffMax
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (c *Cache) point(key string) *point {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.points == nil {
		c.points = map[string]*point{}
	}
	p := c.points[key]
	if p == nil {
		p = &point{}
		c.points[key] = p
	}
	return p
}

// Status reports whether cert, issued by issuer, is revoked, from the first
// distribution point that yields a CRL signed by issuer. A CRL past its
// nextUpdate is refetched; if that fails, the last good one is used (R40).
// RevocationUnknown, with the reasons, when no CRL can be had at all.
func (c *Cache) Status(ctx context.Context, cert, issuer *x509.Certificate) (smime.Revocation, error) {
	var errs []error
	tried := false
	for _, dp := range cert.CRLDistributionPoints {
		u, err := url.Parse(dp)
		if err != nil || c.Fetchers[strings.ToLower(u.Scheme)] == nil {
			continue
		}
		tried = true
		list, err := c.get(ctx, u, issuer)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dp, err))
			continue
		}
		for _, rc := range list.RevokedCertificateEntries {
			if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return smime.Revoked, nil
			}
		}
		return smime.NotRevoked, nil
	}
	if !tried {
		return smime.RevocationUnknown, ErrNoDistributionPoint
	}
	// Every reason stays matchable (errors.Is ErrBackoff, a deadline).
	format, args := "%w: ", []any{ErrFetch}
	for i, e := range errs {
		if i > 0 {
			format += "; "
		}
		format += "%w"
		args = append(args, e)
	}
	return smime.RevocationUnknown, fmt.Errorf(format, args...)
}

// get returns a CRL for u: the cached one while it is current, else a
// fresh one, else the last good one (stale). It never waits for a
// distribution point in back-off, and waits for one in flight at most
// until the fetch's timeout or ctx ends.
func (c *Cache) get(ctx context.Context, u *url.URL, issuer *x509.Certificate) (*x509.RevocationList, error) {
	key := u.String()
	p := c.point(key)
	p.mu.Lock()
	e := c.usable(p, key, issuer)
	now := c.now()
	if e != nil && now.Before(e.list.NextUpdate) {
		p.mu.Unlock()
		return e.list, nil
	}
	if p.flight == nil && now.Before(p.retryAt) {
		err := fmt.Errorf("%w (%v; next attempt after %s)", ErrBackoff, p.lastErr, p.retryAt.UTC().Format(time.RFC3339))
		p.mu.Unlock()
		if e != nil {
			return e.list, nil // R40: the last good CRL, quietly (logged when the fetch failed)
		}
		return nil, err
	}
	f := c.start(p, key, u, issuer)
	p.mu.Unlock()

	var ferr error
	select {
	case <-f.done:
		ferr = f.err
	case <-ctx.Done():
		ferr = ctx.Err()
	}
	p.mu.Lock()
	if ferr == nil {
		if e := c.usable(p, key, issuer); e != nil {
			p.mu.Unlock()
			return e.list, nil
		}
		ferr = fmt.Errorf("%w: the CRL fetched is not signed by %q", ErrBadCRL, issuer.Subject.CommonName)
	}
	if e := c.usable(p, key, issuer); e != nil {
		p.mu.Unlock()
		return e.list, nil // R40: the last good CRL (run logged the failure once)
	}
	if !p.retryAt.IsZero() {
		ferr = fmt.Errorf("%w (no attempt before %s)", ferr, p.retryAt.UTC().Format(time.RFC3339))
	}
	p.mu.Unlock()
	return nil, ferr
}

// usable returns p's CRL if it is issuer's, reading the disk copy the
// first time (after a restart). Callers hold p.mu.
func (c *Cache) usable(p *point, key string, issuer *x509.Certificate) *entry {
	if p.entry == nil && !p.diskRead {
		p.diskRead = true
		p.entry = c.loadDisk(key, issuer)
	}
	e := p.entry
	if e == nil {
		return nil
	}
	// Another certificate of the same CA (re-issued, same key) is as good
	// as the one the signature was checked with.
	if !e.issuer.Equal(issuer) && e.list.CheckSignatureFrom(issuer) != nil {
		return nil
	}
	return e
}

// start returns p's fetch in flight, starting one when there is none.
// Callers hold p.mu. The fetch does not end with any one caller's
// context: its timeout bounds it, and every caller waits on its own.
func (c *Cache) start(p *point, key string, u *url.URL, issuer *x509.Certificate) *flight {
	if p.flight != nil {
		return p.flight
	}
	f := &flight{done: make(chan struct{})}
	p.flight = f
	c.flights.Add(1)
	go c.run(p, f, key, u, issuer)
	return f
}

// run is one fetch: get, check, compare with the cached CRL, store, and
// set the back-off.
func (c *Cache) run(p *point, f *flight, key string, u *url.URL, issuer *x509.Certificate) {
	defer c.flights.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	var list *x509.RevocationList
	var der []byte
	raw, err := c.Fetchers[strings.ToLower(u.Scheme)].Fetch(ctx, u)
	if err == nil {
		list, der, err = parseAndCheck(raw, issuer)
	} else {
		err = fmt.Errorf("fetching: %w", err)
	}
	now := c.now()
	p.mu.Lock()
	prev := p.entry
	if err == nil && prev != nil && list.ThisUpdate.Before(prev.list.ThisUpdate) {
		err = fmt.Errorf("%w: thisUpdate %s, cached %s", ErrOlder,
			list.ThisUpdate.UTC().Format(time.RFC3339), prev.list.ThisUpdate.UTC().Format(time.RFC3339))
	}
	var problem error // a CRL was had, but the point is to be left alone a while
	if err == nil {
		p.entry = &entry{list: list, issuer: issuer, fetched: now}
		switch {
		case !now.Before(list.NextUpdate):
			problem = fmt.Errorf("%w: nextUpdate %s has passed", ErrExpired, list.NextUpdate.UTC().Format(time.RFC3339))
		case prev != nil && !list.NextUpdate.After(prev.list.NextUpdate):
			// A refresh before expiry found nothing newer: try again
			// later, not at every tick.
			problem = fmt.Errorf("no newer CRL published yet (nextUpdate %s)", list.NextUpdate.UTC().Format(time.RFC3339))
		}
	}
	fail := err
	if fail == nil {
		fail = problem
	}
	if fail != nil {
		p.fails++
		p.retryAt, p.lastErr = now.Add(c.backoff(p.fails)), fail
	} else {
		p.fails, p.retryAt, p.lastErr = 0, time.Time{}, nil
	}
	fails, retryAt := p.fails, p.retryAt
	p.mu.Unlock()

	switch {
	case err != nil && prev != nil:
		c.log("CRL fetch failed; distribution point left alone until retry_at, the last good CRL used meanwhile (R40)",
			"url", key, "error", err.Error(), "failures", fails, "retry_at", retryAt.UTC().Format(time.RFC3339),
			"next_update", prev.list.NextUpdate.UTC().Format(time.RFC3339), "fetched", prev.fetched.UTC().Format(time.RFC3339))
	case err != nil:
		c.log("CRL fetch failed; distribution point left alone until retry_at, revocation status unknown meanwhile",
			"url", key, "error", err.Error(), "failures", fails, "retry_at", retryAt.UTC().Format(time.RFC3339))
	default:
		if serr := c.saveDisk(key, der); serr != nil {
			c.log("CRL not saved to disk", "url", key, "error", serr.Error())
		}
		args := []any{"url", key, "entries", len(list.RevokedCertificateEntries), "next_update", list.NextUpdate.UTC().Format(time.RFC3339)}
		if problem != nil {
			args = append(args, "note", problem.Error(), "retry_at", retryAt.UTC().Format(time.RFC3339))
		}
		c.log("CRL fetched", args...)
	}
	p.mu.Lock()
	f.err = err
	p.flight = nil
	p.mu.Unlock()
	close(f.done)
}

// parseAndCheck parses a DER or PEM CRL and checks it is issuer's.
func parseAndCheck(raw []byte, issuer *x509.Certificate) (*x509.RevocationList, []byte, error) {
	der := raw
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("-----BEGIN")) {
		der = pemBody(raw)
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadCRL, err)
	}
	if err := list.CheckSignatureFrom(issuer); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadCRL, err)
	}
	return list, der, nil
}

func pemBody(raw []byte) []byte {
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return nil
		}
		if b.Type == "X509 CRL" {
			return b.Bytes
		}
	}
}

// diskName is the file of a distribution point in Dir.
func diskName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16]) + ".crl"
}

// loadDisk reads the disk copy of key, checked against issuer; nil when
// there is none or it is not issuer's.
func (c *Cache) loadDisk(key string, issuer *x509.Certificate) *entry {
	if c.Dir == "" {
		return nil
	}
	p := filepath.Join(c.Dir, diskName(key))
	der, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	list, _, err := parseAndCheck(der, issuer)
	if err != nil {
		c.log("CRL on disk rejected", "file", p, "error", err.Error())
		return nil
	}
	e := &entry{list: list, issuer: issuer}
	if fi, err := os.Stat(p); err == nil {
		e.fetched = fi.ModTime()
	}
	return e
}

// saveDisk writes the CRL atomically (temporary file and rename), so two
// gateways sharing the directory never read half a file.
func (c *Cache) saveDisk(key string, der []byte) error {
	if c.Dir == "" {
		return nil
	}
	return smime.WriteFileAtomic(c.Dir, filepath.Join(c.Dir, diskName(key)), der)
}

// Refresh refetches every cached CRL due: within margin of its nextUpdate
// (or within half its validity, when that is shorter than margin), and
// not in back-off. A failed refresh keeps the old CRL and backs off.
// issuers, when set, gives the issuer to check a CRL against by its
// RawSubject; nil (or a nil answer) means the issuer the CRL was last
// checked with. Refresh returns when ctx ends, leaving a fetch in flight
// to end by its timeout.
func (c *Cache) Refresh(ctx context.Context, margin time.Duration, issuers func(rawSubject []byte) *x509.Certificate) {
	c.mu.Lock()
	keys := make([]string, 0, len(c.points))
	pts := make([]*point, 0, len(c.points))
	for k, p := range c.points {
		keys, pts = append(keys, k), append(pts, p)
	}
	c.mu.Unlock()
	for i, p := range pts {
		if ctx.Err() != nil {
			return
		}
		key := keys[i]
		u, err := url.Parse(key)
		if err != nil || c.Fetchers[strings.ToLower(u.Scheme)] == nil {
			continue
		}
		p.mu.Lock()
		e, now := p.entry, c.now()
		if e == nil || p.flight != nil || now.Before(p.retryAt) {
			p.mu.Unlock()
			continue
		}
		m := min(margin, e.list.NextUpdate.Sub(e.list.ThisUpdate)/2)
		if now.Add(m).Before(e.list.NextUpdate) {
			p.mu.Unlock()
			continue
		}
		iss := e.issuer
		if issuers != nil {
			if x := issuers(e.issuer.RawSubject); x != nil {
				iss = x
			}
		}
		f := c.start(p, key, u, iss)
		p.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return
		}
	}
}

// Run refreshes CRLs every interval (0: DefaultRefreshInterval) until ctx
// ends, margin before they expire, so that no message waits for a fetch
// (R39-R40).
func (c *Cache) Run(ctx context.Context, interval, margin time.Duration, issuers func(rawSubject []byte) *x509.Certificate) {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Refresh(ctx, margin, issuers)
		}
	}
}
