package tlspolicy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// MTA-STS modes (RFC 8461 section 3.2).
const (
	ModeEnforce = "enforce"
	ModeTesting = "testing"
	ModeNone    = "none"
)

var (
	// ErrNoPolicy: the domain publishes no (valid) MTA-STS policy.
	ErrNoPolicy = errors.New("no MTA-STS policy")
	// ErrBadPolicy is wrapped by parse errors of the TXT record or the policy file.
	ErrBadPolicy = errors.New("invalid MTA-STS policy")
)

// STSPolicy is a fetched MTA-STS policy.
type STSPolicy struct {
	Mode    string
	MX      []string // patterns: "mx.example.com" or "*.example.com"
	MaxAge  time.Duration
	ID      string    // the TXT record's id when fetched
	Expires time.Time // fetch time + max_age
}

// MatchMX reports whether an MX host name matches one of the policy's
// patterns (RFC 8461 section 4.1): a "*." wildcard stands for exactly one
// left-most label.
func (p *STSPolicy) MatchMX(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, pat := range p.MX {
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			if label, rest, ok := strings.Cut(host, "."); ok && label != "" && rest == suffix {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// ParseSTSRecord checks the _mta-sts TXT records of a domain and returns the
// policy id (RFC 8461 section 3.1). Records not starting with "v=STSv1" are
// ignored; more than one STSv1 record means no policy.
func ParseSTSRecord(txts []string) (string, error) {
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNoPolicy
	case 1:
	default:
		return "", fmt.Errorf("%w: %d STSv1 TXT records", ErrBadPolicy, len(found))
	}
	id := ""
	for i, field := range strings.Split(found[0], ";") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return "", fmt.Errorf("%w: TXT field %q", ErrBadPolicy, field)
		}
		if i == 0 && (k != "v" || v != "STSv1") {
			return "", fmt.Errorf("%w: TXT version %q", ErrBadPolicy, field)
		}
		if k == "id" {
			id = v
		}
	}
	if id == "" || len(id) > 32 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return "", fmt.Errorf("%w: TXT id %q must be 1-32 letters and digits", ErrBadPolicy, id)
	}
	return id, nil
}

// maxPolicySize bounds the policy file (RFC 8461 section 3.3 suggests 64 KiB).
const maxPolicySize = 64 << 10

// maxMaxAge is RFC 8461's upper bound for max_age (about one year).
const maxMaxAge = 31557600

// ParseSTSPolicy parses a policy file (RFC 8461 section 3.2).
func ParseSTSPolicy(text string) (*STSPolicy, error) {
	p := &STSPolicy{}
	version := ""
	maxAge := -1
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %q", ErrBadPolicy, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			version = v
		case "mode":
			p.Mode = v
		case "max_age":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxMaxAge || len(v) > 10 {
				return nil, fmt.Errorf("%w: max_age %q", ErrBadPolicy, v)
			}
			maxAge = n
		case "mx":
			p.MX = append(p.MX, strings.TrimSuffix(strings.ToLower(v), "."))
		}
	}
	switch {
	case version != "STSv1":
		return nil, fmt.Errorf("%w: version %q", ErrBadPolicy, version)
	case p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone:
		return nil, fmt.Errorf("%w: mode %q", ErrBadPolicy, p.Mode)
	case maxAge < 0:
		return nil, fmt.Errorf("%w: no max_age", ErrBadPolicy)
	case len(p.MX) == 0 && p.Mode != ModeNone:
		return nil, fmt.Errorf("%w: no mx", ErrBadPolicy)
	}
	p.MaxAge = time.Duration(maxAge) * time.Second
	return p, nil
}

// TXTLookup looks up the TXT records of a name. It returns an error wrapping
// a "not found" sentinel the caller gives as NotFound for NXDOMAIN/NODATA.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// STSCache discovers, fetches and caches MTA-STS policies (RFC 8461
// section 5): a policy is used until it expires, even when its TXT record
// or web server is unreachable; a changed TXT id makes it fetched again.
type STSCache struct {
	LookupTXT TXTLookup
	// NotFound is the error LookupTXT wraps for "no such record".
	NotFound error
	// HTTP fetches the policy; it must verify certificates (RFC 8461
	// section 3.3) and is given CheckRedirect refusing redirects.
	HTTP *http.Client
	Now  func() time.Time
	// Recheck is how often the TXT record of a cached policy is looked at
	// again (default 5 minutes).
	Recheck time.Duration

	once  sync.Once
	cache *lru.Cache[string, *cached]
}

type cached struct {
	policy  *STSPolicy
	checked time.Time
}

func (c *STSCache) init() {
	c.once.Do(func() {
		c.cache, _ = lru.New[string, *cached](10000)
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Recheck == 0 {
			c.Recheck = 5 * time.Minute
		}
		if c.HTTP == nil {
			c.HTTP = &http.Client{Timeout: 20 * time.Second}
		}
	})
}

// Get returns the domain's policy in force, or ErrNoPolicy.
func (c *STSCache) Get(ctx context.Context, domain string) (*STSPolicy, error) {
	c.init()
	now := c.Now()
	old, _ := c.cache.Get(domain)
	if old != nil && !now.Before(old.policy.Expires) {
		c.cache.Remove(domain)
		old = nil
	}
	if old != nil && now.Sub(old.checked) < c.Recheck {
		return old.policy, nil
	}
	txts, err := c.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil && (c.NotFound == nil || !errors.Is(err, c.NotFound)) {
		// Temporary failure: keep what we have (section 5.1).
		if old != nil {
			return old.policy, nil
		}
		return nil, fmt.Errorf("looking up _mta-sts.%s: %w", domain, err)
	}
	id, perr := ParseSTSRecord(txts)
	if err != nil || perr != nil {
		if old != nil {
			old.checked = now
			return old.policy, nil
		}
		if perr != nil && !errors.Is(perr, ErrNoPolicy) {
			return nil, perr
		}
		return nil, ErrNoPolicy
	}
	if old != nil && old.policy.ID == id {
		old.checked = now
		return old.policy, nil
	}
	p, ferr := c.fetch(ctx, domain)
	if ferr != nil {
		if old != nil {
			old.checked = now
			return old.policy, nil
		}
		return nil, ferr
	}
	p.ID = id
	p.Expires = now.Add(p.MaxAge)
	c.cache.Add(domain, &cached{policy: p, checked: now})
	return p, nil
}

// fetch gets https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461
// section 3.3): HTTPS with a valid certificate, no redirects, status 200,
// text/plain, at most 64 KiB.
func (c *STSCache) fetch(ctx context.Context, domain string) (*STSPolicy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := *c.HTTP
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: HTTP %d", url, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return nil, fmt.Errorf("fetching %s: %w: media type %q, want text/plain", url, ErrBadPolicy, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if len(body) > maxPolicySize {
		return nil, fmt.Errorf("fetching %s: %w: larger than %d bytes", url, ErrBadPolicy, maxPolicySize)
	}
	return ParseSTSPolicy(string(body))
}
