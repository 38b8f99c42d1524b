// Package crl is the CRL cache of the domain S/MIME gateway (R36, R39-R40,
// R49, R59): CRLs fetched from a certificate's distribution points (http
// and ldap URLs) with a timeout, their signature checked against the
// issuer, kept until nextUpdate in memory and on disk (so a restart does
// not refetch), the last good one used when the distribution point is
// down, and refreshed in the background before they expire.
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
)

// MaxCRL bounds a fetched CRL (a national CA's CRL is well under this).
const MaxCRL = 16 << 20

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

// Fetch GETs u, at most MaxCRL bytes.
func (h HTTPFetcher) Fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Transport: &http.Transport{Proxy: nil}}
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
// Fetchers, or use New.
type Cache struct {
	// Dir holds one file per distribution point (smime.crl_dir); "" keeps
	// CRLs in memory only.
	Dir string
	// Fetchers by URL scheme ("http", "https", "ldap").
	Fetchers map[string]Fetcher
	// Timeout bounds one fetch (smime.crl_timeout, R59: a hanging
	// distribution point never holds mail longer).
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log, when set, receives one line per fetch, failure and stale use.
	Log func(msg string, args ...any)

	mu      sync.Mutex
	entries map[string]*entry // by distribution point URL
	fetchMu sync.Map          // URL -> *sync.Mutex: one fetch per URL at a time
}

type entry struct {
	list    *x509.RevocationList
	issuer  []byte // RawSubject of the issuer whose signature was checked
	fetched time.Time
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

// Status reports whether cert, issued by issuer, is revoked, from the first
// distribution point that yields a CRL signed by issuer. A CRL past its
// nextUpdate is refetched; if that fails, the last good one is used (R40).
// RevocationUnknown, with the reason, when no CRL can be had at all.
func (c *Cache) Status(ctx context.Context, cert, issuer *x509.Certificate) (smime.Revocation, error) {
	var errs []string
	tried := false
	for _, dp := range cert.CRLDistributionPoints {
		u, err := url.Parse(dp)
		if err != nil || c.Fetchers[strings.ToLower(u.Scheme)] == nil {
			continue
		}
		tried = true
		list, err := c.get(ctx, u, issuer)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", dp, err))
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
	return smime.RevocationUnknown, fmt.Errorf("%w: %s", ErrFetch, strings.Join(errs, "; "))
}

// get returns a CRL for u: the cached one while it is current, else a
// fresh one, else the last good one (stale).
func (c *Cache) get(ctx context.Context, u *url.URL, issuer *x509.Certificate) (*x509.RevocationList, error) {
	key := u.String()
	if e := c.lookup(key, issuer); e != nil && c.now().Before(e.list.NextUpdate) {
		return e.list, nil
	}
	// One fetch per URL at a time: the others wait and reuse its result.
	m, _ := c.fetchMu.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	if e := c.lookup(key, issuer); e != nil && c.now().Before(e.list.NextUpdate) {
		return e.list, nil
	}
	list, ferr := c.fetch(ctx, u, issuer)
	if ferr == nil {
		return list, nil
	}
	if e := c.lookup(key, issuer); e != nil {
		c.log("CRL distribution point unavailable; using the last good CRL (R40)", "url", key, "error", ferr.Error(),
			"next_update", e.list.NextUpdate.UTC().Format(time.RFC3339), "fetched", e.fetched.UTC().Format(time.RFC3339))
		return e.list, nil
	}
	return nil, ferr
}

// lookup returns the cached entry for key signed by issuer, from memory or
// (after a restart) from disk.
func (c *Cache) lookup(key string, issuer *x509.Certificate) *entry {
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil {
		e = c.loadDisk(key, issuer)
	}
	if e == nil || !bytes.Equal(e.issuer, issuer.RawSubject) {
		return nil
	}
	return e
}

func (c *Cache) store(key string, e *entry) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*entry{}
	}
	c.entries[key] = e
	c.mu.Unlock()
}

// fetch gets, checks and stores a CRL.
func (c *Cache) fetch(ctx context.Context, u *url.URL, issuer *x509.Certificate) (*x509.RevocationList, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := c.Fetchers[strings.ToLower(u.Scheme)].Fetch(fctx, u)
	if err != nil {
		c.log("CRL fetch failed", "url", u.String(), "error", err.Error())
		return nil, err
	}
	list, der, err := parseAndCheck(raw, issuer)
	if err != nil {
		c.log("CRL rejected", "url", u.String(), "error", err.Error())
		return nil, err
	}
	e := &entry{list: list, issuer: issuer.RawSubject, fetched: c.now()}
	c.store(u.String(), e)
	if err := c.saveDisk(u.String(), der); err != nil {
		c.log("CRL not saved to disk", "url", u.String(), "error", err.Error())
	}
	c.log("CRL fetched", "url", u.String(), "entries", len(list.RevokedCertificateEntries),
		"next_update", list.NextUpdate.UTC().Format(time.RFC3339))
	return list, nil
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
	fi, _ := os.Stat(p)
	e := &entry{list: list, issuer: issuer.RawSubject}
	if fi != nil {
		e.fetched = fi.ModTime()
	}
	c.store(key, e)
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

// Refresh refetches every cached CRL whose nextUpdate is within margin,
// keeping the old one when the fetch fails. Run calls it on a schedule.
func (c *Cache) Refresh(ctx context.Context, margin time.Duration, issuers func(rawSubject []byte) *x509.Certificate) {
	c.mu.Lock()
	due := map[string]*entry{}
	for k, e := range c.entries {
		if c.now().Add(margin).After(e.list.NextUpdate) {
			due[k] = e
		}
	}
	c.mu.Unlock()
	for k, e := range due {
		u, err := url.Parse(k)
		if err != nil || c.Fetchers[strings.ToLower(u.Scheme)] == nil {
			continue
		}
		iss := issuers(e.issuer)
		if iss == nil {
			continue
		}
		m, _ := c.fetchMu.LoadOrStore(k, &sync.Mutex{})
		mu := m.(*sync.Mutex)
		mu.Lock()
		_, _ = c.fetch(ctx, u, iss)
		mu.Unlock()
	}
}

// Run refreshes CRLs every interval until ctx ends, margin before they
// expire, so that no message waits for a fetch (R39-R40).
func (c *Cache) Run(ctx context.Context, interval, margin time.Duration, issuers func(rawSubject []byte) *x509.Certificate) {
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
