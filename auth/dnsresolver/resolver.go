// Package dnsresolver is the project's DNS stub resolver: it asks the
// configured recursive servers (or those of /etc/resolv.conf) over UDP,
// retries over TCP when an answer is truncated, caches answers in a
// bounded LRU honouring TTLs (negative answers per RFC 2308), and
// classifies every failure as dnserr.ErrNotFound (NXDOMAIN, NODATA) or
// dnserr.ErrTemporary (SERVFAIL, timeout, network).
//
// *Resolver satisfies spf.Resolver.
package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/internal/dnsname"
)

// Lookup error classes (the same values as in auth/dnserr and auth/spf).
var (
	ErrNotFound  = dnserr.ErrNotFound
	ErrTemporary = dnserr.ErrTemporary
)

// Defaults of Config.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultAttempts       = 2
	DefaultCacheSize      = 10000
	DefaultMaxTTL         = 24 * time.Hour
	DefaultMaxNegativeTTL = 15 * time.Minute
	DefaultUDPSize        = 1232 // EDNS0 payload size (DNS flag day 2020)
	DefaultResolvConf     = "/etc/resolv.conf"
)

// Config configures a Resolver. Zero fields take the defaults above.
type Config struct {
	// Servers are the recursive servers as "host:port". When empty, the
	// nameservers of ResolvConf are used.
	Servers    []string
	ResolvConf string
	// Timeout bounds one exchange with one server; Attempts is the number
	// of passes over the server list before giving up.
	Timeout  time.Duration
	Attempts int
	// CacheSize bounds the cache in entries (one per name and type); a
	// negative value disables the cache.
	CacheSize int
	// MaxTTL caps how long an answer is cached (its TTL is the smallest
	// TTL of its records); MaxNegativeTTL caps NXDOMAIN and NODATA
	// entries (their TTL is the SOA's, RFC 2308 section 5).
	MaxTTL         time.Duration
	MaxNegativeTTL time.Duration
	// UDPSize is the EDNS0 payload size advertised.
	UDPSize uint16
	// Now is the cache's clock; time.Now when nil.
	Now func() time.Time
}

// Answer is the positive answer to one question.
type Answer struct {
	// Records are the answer RRs of the asked type (CNAMEs left out).
	Records []dns.RR
	// Authenticated is the AD bit of the response (RFC 4035 section
	// 3.2.3): the recursive server validated it with DNSSEC. Only
	// meaningful when the path to that server is trusted.
	Authenticated bool
}

// Stats counts the resolver's work.
type Stats struct {
	Queries     int64 // messages sent (UDP and TCP)
	CacheHits   int64
	CacheMisses int64
}

type cacheKey struct {
	name  string // lower-case FQDN, presentation format
	qtype uint16
}

type cacheEntry struct {
	answer  Answer
	err     error // non-nil: negative entry (wraps ErrNotFound)
	expires time.Time
}

// Resolver is a caching stub resolver; safe for concurrent use.
type Resolver struct {
	servers        []string
	timeout        time.Duration
	attempts       int
	maxTTL, maxNeg time.Duration
	udpSize        uint16
	now            func() time.Time
	cache          *lru.Cache[cacheKey, cacheEntry]

	queries, hits, misses atomic.Int64
}

// New returns a Resolver for cfg.
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{
		servers:  cfg.Servers,
		timeout:  cfg.Timeout,
		attempts: cfg.Attempts,
		maxTTL:   cfg.MaxTTL,
		maxNeg:   cfg.MaxNegativeTTL,
		udpSize:  cfg.UDPSize,
		now:      cfg.Now,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.attempts <= 0 {
		r.attempts = DefaultAttempts
	}
	if r.maxTTL <= 0 {
		r.maxTTL = DefaultMaxTTL
	}
	if r.maxNeg <= 0 {
		r.maxNeg = DefaultMaxNegativeTTL
	}
	if r.udpSize < dns.MinMsgSize {
		r.udpSize = DefaultUDPSize
	}
	if r.now == nil {
		r.now = time.Now
	}
	if len(r.servers) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		cc, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("dnsresolver: %w", err)
		}
		for _, s := range cc.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
		}
		if len(r.servers) == 0 {
			return nil, fmt.Errorf("dnsresolver: no nameserver in %s", path)
		}
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		c, err := lru.New[cacheKey, cacheEntry](size)
		if err != nil {
			return nil, fmt.Errorf("dnsresolver: %w", err)
		}
		r.cache = c
	}
	return r, nil
}

// Servers returns the servers asked, in order.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	return Stats{Queries: r.queries.Load(), CacheHits: r.hits.Load(), CacheMisses: r.misses.Load()}
}

// Queries returns the number of DNS messages sent so far.
func (r *Resolver) Queries() int64 { return r.queries.Load() }

// CacheLen returns the number of cached entries (expired ones included
// until they are looked up or evicted).
func (r *Resolver) CacheLen() int {
	if r.cache == nil {
		return 0
	}
	return r.cache.Len()
}

// Query asks for the records of type qtype at name (a raw name: bytes
// such as spaces are escaped for the wire). It returns an error wrapping
// ErrNotFound for NXDOMAIN and NODATA, ErrTemporary otherwise.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (Answer, error) {
	fqdn := dns.Fqdn(dnsname.Escape(strings.TrimSuffix(name, ".")))
	key := cacheKey{name: strings.ToLower(fqdn), qtype: qtype}
	if r.cache != nil {
		if e, ok := r.cache.Get(key); ok {
			if r.now().Before(e.expires) {
				r.hits.Add(1)
				return e.answer, e.err
			}
			r.cache.Remove(key)
		}
		r.misses.Add(1)
	}
	if _, ok := dns.IsDomainName(fqdn); !ok || len(fqdn) > 255 {
		return Answer{}, fmt.Errorf("%w: %q is not a valid domain name", ErrNotFound, name)
	}
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true // RFC 6840 section 5.7: ask for the AD bit
	m.SetEdns0(r.udpSize, false)

	resp, err := r.exchange(ctx, m)
	if err != nil {
		return Answer{}, err
	}
	ans, ttl, err := r.interpret(resp, fqdn, qtype)
	if r.cache != nil && ttl > 0 {
		r.cache.Add(key, cacheEntry{answer: ans, err: err, expires: r.now().Add(ttl)})
	}
	return ans, err
}

// interpret classifies a response (RCODE NOERROR or NXDOMAIN) and returns
// how long it may be cached.
func (r *Resolver) interpret(resp *dns.Msg, fqdn string, qtype uint16) (Answer, time.Duration, error) {
	t := dns.TypeToString[qtype]
	if resp.Rcode == dns.RcodeNameError {
		return Answer{}, r.negativeTTL(resp), fmt.Errorf("%w: %s %s: NXDOMAIN", ErrNotFound, fqdn, t)
	}
	ans := Answer{Authenticated: resp.AuthenticatedData}
	minTTL := uint32(1<<32 - 1)
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		if h.Rrtype == qtype {
			ans.Records = append(ans.Records, rr)
		}
		if h.Rrtype == qtype || h.Rrtype == dns.TypeCNAME {
			minTTL = min(minTTL, h.Ttl)
		}
	}
	if len(ans.Records) == 0 {
		// NODATA (RFC 2308 section 2.2), or a CNAME whose target has no
		// record of the type.
		return Answer{}, r.negativeTTL(resp), fmt.Errorf("%w: %s %s: no records", ErrNotFound, fqdn, t)
	}
	return ans, min(time.Duration(minTTL)*time.Second, r.maxTTL), nil
}

// negativeTTL is the TTL of a negative answer: the smaller of the SOA's
// TTL and minimum field (RFC 2308 section 5), capped; 0 (do not cache)
// without an SOA.
func (r *Resolver) negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			return min(ttl, r.maxNeg)
		}
	}
	return 0
}

// exchange sends m to the servers in turn, Attempts times over, until one
// gives NOERROR or NXDOMAIN.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	q := m.Question[0]
	var last error
	for attempt := 0; attempt < r.attempts; attempt++ {
		for _, srv := range r.servers {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%w: %s %s: %v", ErrTemporary, q.Name, dns.TypeToString[q.Qtype], err)
			}
			resp, err := r.exchangeOne(ctx, m, srv)
			if err != nil {
				last = err
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return resp, nil
			}
			last = fmt.Errorf("%s from %s", dns.RcodeToString[resp.Rcode], srv)
		}
	}
	return nil, fmt.Errorf("%w: %s %s: %v", ErrTemporary, q.Name, dns.TypeToString[q.Qtype], last)
}

// exchangeOne asks one server over UDP, then over TCP if the answer is
// truncated (RFC 1035 section 4.2.1, RFC 7766).
func (r *Resolver) exchangeOne(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	r.queries.Add(1)
	resp, _, err := c.ExchangeContext(ctx, m, srv)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		r.queries.Add(1)
		resp, _, err = c.ExchangeContext(ctx, m, srv)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) ||
		resp.Question[0].Qtype != m.Question[0].Qtype {
		return nil, errors.New("answer does not match the question")
	}
	return resp, nil
}

func (r *Resolver) records(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	ans, err := r.Query(ctx, name, qtype)
	return ans.Records, err
}

// LookupTXT returns one string per TXT RR, its character-strings
// concatenated without separator (RFC 7208 section 3.3), as raw bytes.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.records(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(dnsname.Unescape(s))
		}
		out = append(out, b.String())
	}
	return out, nil
}

// LookupIP returns the A ("ip4"), AAAA ("ip6") or both ("ip") addresses
// of host.
func (r *Resolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	types, ok := dnsname.AddressTypes(network)
	if !ok {
		return nil, fmt.Errorf("dnsresolver: unknown network %q", network)
	}
	var ips []net.IP
	var firstErr error
	for _, t := range types {
		rrs, err := r.records(ctx, host, t)
		if err != nil {
			if firstErr == nil || dnserr.IsTemporary(err) {
				firstErr = err
			}
			continue
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				ips = append(ips, v.A)
			case *dns.AAAA:
				ips = append(ips, v.AAAA)
			}
		}
	}
	if len(ips) == 0 || dnserr.IsTemporary(firstErr) {
		return nil, firstErr
	}
	return ips, nil
}

// LookupMX returns the MX RRs of name in the order received; hosts are
// raw names with a trailing dot.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.records(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: dnsname.Unescape(mx.Mx), Pref: mx.Preference})
	}
	return out, nil
}

// LookupAddr returns the PTR names of the IP address addr, raw names with
// a trailing dot.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("dnsresolver: %w", err)
	}
	rrs, err := r.records(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, dnsname.Unescape(rr.(*dns.PTR).Ptr))
	}
	return out, nil
}
