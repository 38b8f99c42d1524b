// Package discovery finds peer DCA certificates in LDAP v3 directories
// (issue 15; R43, R52-R54, R58) and reads the accredited gateway lists from
// them (R55, R108).
//
// A lookup searches every configured directory at once, bounded by one
// timeout, for the entry of domain-confidentiality-authority@DOMAIN under
// the search base (R53: "C=NZ") and asks for userCertificate;binary. Every
// certificate found is validated (chain to an accredited CA, dates, CRL,
// RFC 3183 naming R45-R47) before anything is done with it; the valid ones
// go into the peer store (smime.discovery = "auto") or wait for the
// administrator in the pending directory ("approve", R54). A lookup that
// finds nothing usable is remembered for a while (negative cache), and so is
// a directory that is down, so that a directory outage is not asked once per
// message.
package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Mode is smime.discovery.
type Mode string

const (
	// ModeAuto stores a valid discovered certificate and uses it at once
	// (R54: "fully automate certificate discovery").
	ModeAuto Mode = "auto"
	// ModeApprove puts it in the pending directory until `nzsecure-milter
	// certs approve FINGERPRINT` (R54: "a manual approval step").
	ModeApprove Mode = "approve"
)

// DCAAddress is the address a DCA entry is found by (R53, RFC 3183 4.1).
func DCAAddress(domain string) string { return smime.DCACommonName + "@" + domain }

// DefaultBase is the search base of R53.
const DefaultBase = "c=NZ"

// Directory is one directory searched for certificates.
type Directory struct {
	URL URL
	// Anchors, when set, are the accredited CA certificates whose
	// directory this is (R58, smime.ca_ldap): only certificates that chain
	// to one of them are taken from it, so a CA's directory cannot vouch
	// for another CA's certificates.
	Anchors []*x509.Certificate
}

// Discoverer looks certificates up. Set the exported fields, then use it
// from any number of goroutines.
type Discoverer struct {
	Directories []Directory
	// Base is the search base of a URL that names none (smime.ldap_base).
	Base string
	// Timeout bounds the searches of one lookup, all directories together
	// (smime.ldap_timeout).
	Timeout time.Duration
	// RetryAfter is how long a lookup that found nothing usable, and a
	// directory that could not be reached, are not asked again
	// (smime.ldap_retry).
	RetryAfter time.Duration
	Mode       Mode
	Validator  *smime.Validator
	Store      *smime.PeerStore
	// Pending holds certificates waiting for approval; required in
	// ModeApprove.
	Pending *Pending
	// Classify names the accredited lists a domain is on (R55: SEEMail,
	// SecureMail, WORKSPACE); nil names none.
	Classify func(domain string) []string
	// TLS configures ldaps:// (nil: the system roots, TLS 1.2 or later).
	TLS *tls.Config
	// Now is the clock of the caches; nil means time.Now.
	Now func() time.Time

	search searcher // nil means the real LDAP search; tests replace it

	mu       sync.Mutex
	negative map[string]negEntry  // domain -> until when a lookup is not repeated
	down     map[string]time.Time // directory URL -> until when it is skipped
	inflight map[string]*call     // domain -> the lookup under way
}

type negEntry struct {
	until time.Time
	res   Result
	err   error
}

type call struct {
	done chan struct{}
	res  Result
	err  error
}

// Candidate is one certificate a lookup found, and what was done with it.
type Candidate struct {
	Fingerprint string      `json:"fingerprint"`
	Directory   string      `json:"directory"`
	Subject     string      `json:"subject"`
	NotBefore   time.Time   `json:"not_before"`
	NotAfter    time.Time   `json:"not_after"`
	State       smime.State `json:"state"`
	Reason      string      `json:"reason"`
	// Action: what the lookup did (see the Action* constants).
	Action string            `json:"action"`
	Cert   *x509.Certificate `json:"-"`
}

// What a lookup does with a certificate.
const (
	ActionStored   = "stored in the peer store"
	ActionKnown    = "already in the peer store"
	ActionPending  = "pending approval (nzsecure-milter certs approve FINGERPRINT)"
	ActionRejected = "rejected earlier by the administrator (certs reject)"
	ActionNotUsed  = "not used: not valid"
	ActionFailed   = "not stored: "
)

// Result is what one lookup found and did.
type Result struct {
	Domain  string `json:"domain"`
	Address string `json:"address"`
	Mode    Mode   `json:"mode"`
	// Cert is the newest valid certificate of the domain that is in the
	// peer store after the lookup (stored now or before); nil when none
	// (nothing found, nothing valid, or waiting for approval).
	Cert       *x509.Certificate `json:"-"`
	Candidates []Candidate       `json:"candidates"`
	// Lists are the accredited lists the domain is on (R55).
	Lists []string `json:"lists"`
	// Errors are the directories that failed or were skipped as down.
	Errors []string `json:"errors,omitempty"`
	// Cached: the negative cache answered; no directory was asked.
	Cached bool `json:"cached,omitempty"`
}

// ErrNotFound: no valid certificate usable now (nothing in the
// directories, nothing valid, or waiting for approval).
var ErrNotFound = errors.New("discovery: no usable certificate found")

// Lookup searches the directories for domain's DCA certificate (R43, R53,
// R58) unless a recent lookup found nothing (the negative cache), validates
// what it finds and stores or queues the valid ones (R54). The error is nil
// exactly when Result.Cert is set; it wraps ErrNotFound otherwise, and
// ErrUnavailable as well when every directory failed.
func (d *Discoverer) Lookup(ctx context.Context, domain string) (Result, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if err := checkDomain(domain); err != nil {
		return Result{Domain: domain}, err
	}
	now := d.now()
	d.mu.Lock()
	if n, ok := d.negative[domain]; ok && now.Before(n.until) {
		d.mu.Unlock()
		res := n.res
		res.Cached = true
		return res, fmt.Errorf("%w (cached until %s): %w", ErrNotFound, n.until.UTC().Format(time.RFC3339), n.err)
	}
	// One lookup per domain at a time: the other sessions wanting the same
	// domain wait for its answer instead of asking the directories again.
	if c, ok := d.inflight[domain]; ok {
		d.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return Result{Domain: domain}, fmt.Errorf("%w: %w", ErrNotFound, ctx.Err())
		}
	}
	if d.inflight == nil {
		d.inflight = map[string]*call{}
	}
	c := &call{done: make(chan struct{})}
	d.inflight[domain] = c
	d.mu.Unlock()

	c.res, c.err = d.lookup(ctx, domain)

	d.mu.Lock()
	delete(d.inflight, domain)
	if c.err != nil && d.RetryAfter > 0 && ctx.Err() == nil {
		if d.negative == nil {
			d.negative = map[string]negEntry{}
		}
		if len(d.negative) >= maxNegative {
			d.pruneNegative(now)
		}
		d.negative[domain] = negEntry{until: d.now().Add(d.RetryAfter), res: c.res, err: c.err}
	}
	d.mu.Unlock()
	close(c.done)
	return c.res, c.err
}

// maxNegative bounds the negative cache (domains).
const maxNegative = 10_000

func (d *Discoverer) pruneNegative(now time.Time) {
	for k, n := range d.negative {
		if !now.Before(n.until) {
			delete(d.negative, k)
		}
	}
	if len(d.negative) >= maxNegative {
		d.negative = map[string]negEntry{}
	}
}

// Forget drops domain from the negative cache (after `certs approve`, or
// a test).
func (d *Discoverer) Forget(domain string) {
	d.mu.Lock()
	delete(d.negative, strings.ToLower(strings.TrimSuffix(domain, ".")))
	d.mu.Unlock()
}

// Discover is the mail path's question (pipeline.SMIMEEnv.Peer, Table 1
// "Auto-discover valid public key certificate (LDAP)"): whether a valid
// certificate of domain is in the peer store now, with the reasons for the
// decision log.
func (d *Discoverer) Discover(ctx context.Context, domain string) (bool, []string) {
	res, err := d.Lookup(ctx, domain)
	if err == nil {
		return true, []string{fmt.Sprintf("LDAP discovery found %s for %s", smime.Fingerprint(res.Cert)[:16], domain)}
	}
	why := []string{"LDAP discovery: " + err.Error()}
	for _, c := range res.Candidates {
		why = append(why, fmt.Sprintf("  %s from %s: %s (%s); %s", c.Fingerprint[:16], c.Directory, c.State, c.Reason,
			strings.Replace(c.Action, "FINGERPRINT", c.Fingerprint, 1)))
	}
	return false, why
}

func (d *Discoverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

type dirAnswer struct {
	dir    Directory
	values [][]byte
	err    error
}

func (d *Discoverer) lookup(ctx context.Context, domain string) (Result, error) {
	res := Result{Domain: domain, Address: DCAAddress(domain), Mode: d.mode(), Candidates: []Candidate{}, Lists: []string{}}
	if d.Classify != nil {
		res.Lists = append(res.Lists, d.Classify(domain)...)
	}
	if d.Store == nil || d.Validator == nil {
		return res, fmt.Errorf("%w: no peer store or validator", ErrNotFound)
	}
	if res.Mode == ModeApprove && d.Pending == nil {
		return res, fmt.Errorf("%w: approval mode without a pending directory", ErrNotFound)
	}
	found := d.find(ctx, domain)
	res.Candidates, res.Errors = append(res.Candidates, found.Candidates...), found.Errors
	answers, failed := found.asked, found.failed
	for i := range res.Candidates {
		d.act(&res.Candidates[i], domain, res.Mode)
	}
	// What the store holds now decides: a certificate stored before and
	// still valid counts too.
	if pv := d.Store.Peer(ctx, d.Validator, domain); pv.Cert != nil {
		res.Cert = pv.Cert
		return res, nil
	}
	switch {
	case answers > 0 && failed == answers:
		return res, fmt.Errorf("%w for %s: %w: %s", ErrNotFound, res.Address, ErrUnavailable, strings.Join(res.Errors, "; "))
	case answers == 0:
		return res, fmt.Errorf("%w for %s: no directory configured (smime.ldap, smime.ca_ldap)", ErrNotFound, res.Address)
	case len(res.Candidates) == 0:
		return res, fmt.Errorf("%w for %s: no certificate in %d directories", ErrNotFound, res.Address, answers-failed)
	}
	return res, fmt.Errorf("%w for %s: %d certificates found, none usable now", ErrNotFound, res.Address, len(res.Candidates))
}

// Found is what one search of the directories found, judged, and nothing
// done with it.
type Found struct {
	// Candidates are the distinct certificates found, newest valid first.
	Candidates []Candidate
	// Errors are the directories that failed or were skipped as down, and
	// values that were not certificates.
	Errors []string
	// asked and failed count the directories.
	asked, failed int
}

// Unavailable: every directory asked failed, or none is configured.
func (f Found) Unavailable() bool { return f.asked == 0 || f.failed == f.asked }

// Find searches the directories for domain's DCA certificate and judges
// each certificate found (R36, R45-R47, R58), without storing, queueing or
// caching anything: what the renewal of our own certificates asks (R51,
// "when it needs a new valid public key certificate from its CA"), whose
// answers belong with our identities, not in the peer store.
func (d *Discoverer) Find(ctx context.Context, domain string) (Found, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if err := checkDomain(domain); err != nil {
		return Found{}, err
	}
	if d.Validator == nil {
		return Found{}, fmt.Errorf("%w: no validator", ErrNotFound)
	}
	return d.find(ctx, domain), nil
}

func (d *Discoverer) find(ctx context.Context, domain string) Found {
	var f Found
	answers := d.searchAll(ctx, domain)
	f.asked = len(answers)
	seen := map[string]bool{}
	for _, a := range answers {
		if a.err != nil {
			f.failed++
			f.Errors = append(f.Errors, fmt.Sprintf("%s: %v", a.dir.URL.Raw, a.err))
			continue
		}
		for _, v := range a.values {
			certs, err := smime.ParseCertificatesPEM(v)
			if err != nil {
				f.Errors = append(f.Errors, fmt.Sprintf("%s: a userCertificate value is not a certificate: %v", a.dir.URL.Raw, err))
				continue
			}
			for _, cert := range certs[:1] {
				fp := smime.Fingerprint(cert)
				if seen[fp] {
					continue
				}
				seen[fp] = true
				f.Candidates = append(f.Candidates, d.judge(ctx, a.dir, cert, domain))
			}
		}
	}
	// Newest valid first (R37's rule for our own certificates applies to
	// the peer's too: the newest valid one is used).
	sort.SliceStable(f.Candidates, func(i, j int) bool {
		a, b := f.Candidates[i], f.Candidates[j]
		if (a.State == smime.StateValid) != (b.State == smime.StateValid) {
			return a.State == smime.StateValid
		}
		return a.NotBefore.After(b.NotBefore)
	})
	return f
}

func (d *Discoverer) mode() Mode {
	if d.Mode == "" {
		return ModeAuto
	}
	return d.Mode
}

// searchAll asks every directory that is not known to be down at the same
// time, all bounded by d.Timeout together, and returns the answers in the
// configured order.
func (d *Discoverer) searchAll(ctx context.Context, domain string) []dirAnswer {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fn := d.search
	if fn == nil {
		fn = search
	}
	addr := ldap.EscapeFilter(DCAAddress(domain))
	out := make([]dirAnswer, len(d.Directories))
	var wg sync.WaitGroup
	now := d.now()
	for i, dir := range d.Directories {
		out[i].dir = dir
		d.mu.Lock()
		until, isDown := d.down[dir.URL.Raw]
		d.mu.Unlock()
		if isDown && now.Before(until) {
			out[i].err = fmt.Errorf("%w: skipped: it failed recently, asked again after %s", ErrUnavailable, until.UTC().Format(time.RFC3339))
			continue
		}
		q := query{
			base:      dir.URL.Base,
			scope:     dir.URL.Scope,
			filter:    fmt.Sprintf("(|(mail=%s)(rfc822Mailbox=%s))", addr, addr),
			attrs:     []string{"userCertificate;binary", "userCertificate"},
			sizeLimit: maxCertEntries, maxValues: maxCertValues, maxValue: maxCertValue, maxBytes: maxCertBytes,
		}
		if q.base == "" {
			q.base = d.Base
		}
		if q.base == "" {
			q.base = DefaultBase
		}
		if dir.URL.Filter != "" {
			q.filter = "(&" + dir.URL.Filter + q.filter + ")"
		}
		if len(dir.URL.Attrs) > 0 {
			q.attrs = dir.URL.Attrs
		}
		wg.Add(1)
		go func(i int, dir Directory, q query) {
			defer wg.Done()
			vals, err := fn(sctx, dir.URL, d.TLS, q)
			if errors.Is(err, ErrTruncated) {
				err = nil // the part found is judged like the rest
			}
			// The connection's own timeout may fire a moment before the
			// context's: either is the lookup's time running out.
			if dl, _ := sctx.Deadline(); err != nil && (sctx.Err() != nil || time.Until(dl) < 50*time.Millisecond) {
				err = fmt.Errorf("%w: %s: no answer within %s (smime.ldap_timeout)", ErrUnavailable, dir.URL.Raw, timeout)
			}
			out[i].values, out[i].err = vals, err
			if err != nil && d.RetryAfter > 0 {
				d.mu.Lock()
				if d.down == nil {
					d.down = map[string]time.Time{}
				}
				d.down[dir.URL.Raw] = d.now().Add(d.RetryAfter)
				d.mu.Unlock()
			}
		}(i, dir, q)
	}
	wg.Wait()
	return out
}

// judge validates one certificate found (R36, R45-R47, R67: valid before
// it is relied on), and for a CA's own directory (R58) requires the chain
// to end at that CA.
func (d *Discoverer) judge(ctx context.Context, dir Directory, cert *x509.Certificate, domain string) Candidate {
	c := Candidate{Fingerprint: smime.Fingerprint(cert), Directory: dir.URL.Raw, Subject: cert.Subject.String(),
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), Cert: cert}
	vd := d.Validator.Validate(ctx, cert, domain, nil)
	c.State, c.Reason = vd.State, vd.Reason
	if len(dir.Anchors) > 0 && len(vd.Chain) > 0 {
		root := vd.Chain[len(vd.Chain)-1]
		ok := false
		for _, a := range dir.Anchors {
			ok = ok || root.Equal(a)
		}
		if !ok {
			c.State = smime.StateUntrusted
			c.Reason = fmt.Sprintf("found in the directory of CA %q but issued under %q (R58)", dir.Anchors[0].Subject.CommonName, root.Subject.CommonName)
		}
	}
	return c
}

// act stores or queues a valid candidate (R54).
func (d *Discoverer) act(c *Candidate, domain string, mode Mode) {
	if c.State != smime.StateValid {
		c.Action = ActionNotUsed
		return
	}
	if have, _ := d.Store.Certificates(domain); containsFP(have, c.Fingerprint) {
		c.Action = ActionKnown
		return
	}
	if mode == ModeApprove {
		if d.Pending.Rejected(domain, c.Fingerprint) {
			c.Action = ActionRejected
			return
		}
		if _, err := d.Pending.Add(domain, c.Cert); err != nil {
			c.Action = ActionFailed + err.Error()
			return
		}
		c.Action = ActionPending
		return
	}
	if _, err := d.Store.Add(domain, c.Cert); err != nil {
		c.Action = ActionFailed + err.Error()
		return
	}
	c.Action = ActionStored
}

func containsFP(certs []*x509.Certificate, fp string) bool {
	for _, c := range certs {
		if smime.Fingerprint(c) == fp {
			return true
		}
	}
	return false
}

// checkDomain: a DNS name that can be put in a filter and a directory
// name (the filter value is escaped anyway, RFC 4515).
func checkDomain(d string) error {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") {
		return fmt.Errorf("%w: %q is not a domain", smime.ErrBadDomain, d)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: %q is not a domain", smime.ErrBadDomain, d)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%w: %q is not a domain", smime.ErrBadDomain, d)
			}
		}
	}
	return nil
}
