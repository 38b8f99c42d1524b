// Package dnstest provides DNS data for tests: a Zone of records held in
// memory, usable directly as a resolver (it satisfies spf.Resolver) and
// served over UDP and TCP on loopback by a small authoritative server
// (Start). A name can be made to time out, answer SERVFAIL or always
// truncate UDP answers.
package dnstest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/internal/dnsname"
)

// Fault makes a name misbehave.
type Fault int

// Faults.
const (
	NoFault Fault = iota
	// Timeout: queries for a type the name has no record of get no answer
	// (the server stays silent; the in-memory resolver fails at once with
	// an error wrapping dnserr.ErrTemporary). Types with records are
	// answered, as in the openspf test suite's "TIMEOUT" entries.
	Timeout
	// ServFail: like Timeout, but the answer is SERVFAIL (RCODE 2).
	ServFail
	// TruncateUDP: every UDP answer for the name has the TC bit and no
	// records, so clients retry over TCP. The in-memory resolver ignores it.
	TruncateUDP
)

// DefaultTTL is the TTL of records added without one, and
// DefaultNegativeTTL the SOA minimum of negative answers.
const (
	DefaultTTL         = 300
	DefaultNegativeTTL = 60
)

// record is one RR with raw (unescaped) names and strings.
type record struct {
	owner  string // raw, as added (case kept)
	typ    uint16
	ttl    uint32
	addr   netip.Addr // A, AAAA
	txt    []string   // TXT character-strings
	target string     // CNAME, PTR, NS, MX host
	pref   uint16     // MX
	other  dns.RR     // SOA and any other type, served as is
}

type node struct {
	records []record
	fault   Fault
}

// Zone is a set of records in memory. Its methods are safe for concurrent
// use; the adders return the Zone so calls can be chained.
type Zone struct {
	mu          sync.RWMutex
	nodes       map[string]*node // by dnsname.Key
	ttl         uint32
	negativeTTL uint32
	queries     atomic.Int64
}

// NewZone returns an empty zone.
func NewZone() *Zone {
	return &Zone{nodes: map[string]*node{}, ttl: DefaultTTL, negativeTTL: DefaultNegativeTTL}
}

// SetTTL sets the TTL of the records added after the call.
func (z *Zone) SetTTL(ttl uint32) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.ttl = ttl
	return z
}

// SetNegativeTTL sets the minimum field (and TTL) of the SOA record sent
// with negative answers when the zone holds no SOA of its own.
func (z *Zone) SetNegativeTTL(ttl uint32) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.negativeTTL = ttl
	return z
}

// Queries returns how many questions the zone has received, from its
// resolver methods and over the network.
func (z *Zone) Queries() int64 { return z.queries.Load() }

func (z *Zone) add(r record) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	if r.ttl == 0 && r.other == nil {
		r.ttl = z.ttl
	}
	k := dnsname.Key(r.owner)
	n := z.nodes[k]
	if n == nil {
		n = &node{}
		z.nodes[k] = n
	}
	n.records = append(n.records, r)
	return z
}

func mustAddr(s string, want4 bool) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || (want4 && !a.Unmap().Is4()) {
		panic(fmt.Sprintf("dnstest: bad address %q", s))
	}
	if want4 {
		return a.Unmap()
	}
	return netip.AddrFrom16(a.As16())
}

// A adds A records. It panics on an address that is not IPv4.
func (z *Zone) A(name string, addrs ...string) *Zone {
	for _, s := range addrs {
		z.add(record{owner: name, typ: dns.TypeA, addr: mustAddr(s, true)})
	}
	return z
}

// AAAA adds AAAA records. It panics on an address that does not parse.
func (z *Zone) AAAA(name string, addrs ...string) *Zone {
	for _, s := range addrs {
		z.add(record{owner: name, typ: dns.TypeAAAA, addr: mustAddr(s, false)})
	}
	return z
}

// MX adds an MX record; host "" or "." is a null MX (RFC 7505).
func (z *Zone) MX(name string, pref uint16, host string) *Zone {
	return z.add(record{owner: name, typ: dns.TypeMX, pref: pref, target: host})
}

// TXT adds one TXT record made of the given character-strings (raw bytes;
// strings longer than 255 bytes are split). No string gives an empty RR.
func (z *Zone) TXT(name string, strs ...string) *Zone {
	var parts []string
	for _, s := range strs {
		for len(s) > 255 {
			parts = append(parts, s[:255])
			s = s[255:]
		}
		parts = append(parts, s)
	}
	return z.add(record{owner: name, typ: dns.TypeTXT, txt: parts})
}

// PTR adds a PTR record at name (for example "4.3.2.1.in-addr.arpa").
func (z *Zone) PTR(name, target string) *Zone {
	return z.add(record{owner: name, typ: dns.TypePTR, target: target})
}

// ReversePTR adds the PTR record of an IP address.
func (z *Zone) ReversePTR(ip, target string) *Zone {
	arpa, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(fmt.Sprintf("dnstest: bad address %q", ip))
	}
	return z.PTR(arpa, target)
}

// CNAME adds a CNAME record.
func (z *Zone) CNAME(name, target string) *Zone {
	return z.add(record{owner: name, typ: dns.TypeCNAME, target: target})
}

// AddRR adds records given as miekg/dns values (owner names in
// presentation format).
func (z *Zone) AddRR(rrs ...dns.RR) *Zone {
	for _, rr := range rrs {
		h := rr.Header()
		r := record{owner: dnsname.Unescape(h.Name), typ: h.Rrtype, ttl: h.Ttl}
		switch v := rr.(type) {
		case *dns.A:
			r.addr, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			r.addr, _ = netip.AddrFromSlice(v.AAAA.To16())
		case *dns.MX:
			r.pref, r.target = v.Preference, dnsname.Unescape(v.Mx)
		case *dns.TXT:
			for _, s := range v.Txt {
				r.txt = append(r.txt, dnsname.Unescape(s))
			}
		case *dns.PTR:
			r.target = dnsname.Unescape(v.Ptr)
		case *dns.CNAME:
			r.target = dnsname.Unescape(v.Target)
		case *dns.NS:
			r.target = dnsname.Unescape(v.Ns)
		default:
			r.other = dns.Copy(rr)
		}
		z.add(r)
	}
	return z
}

// SetFault makes name misbehave (see Fault); NoFault restores it.
func (z *Zone) SetFault(name string, f Fault) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := dnsname.Key(name)
	n := z.nodes[k]
	if n == nil {
		n = &node{}
		z.nodes[k] = n
	}
	n.fault = f
	return z
}

// ParseZone reads records in RFC 1035 master-file format (origin ".",
// default TTL DefaultTTL) plus one extra directive per line,
//
//	$FAULT <name> TIMEOUT|SERVFAIL|TRUNCATE
//
// which calls SetFault.
func ParseZone(text string) (*Zone, error) {
	z := NewZone()
	var rest strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], "$FAULT") {
			if len(f) != 3 {
				return nil, fmt.Errorf("dnstest: line %d: $FAULT <name> TIMEOUT|SERVFAIL|TRUNCATE", line)
			}
			fault, ok := map[string]Fault{"TIMEOUT": Timeout, "SERVFAIL": ServFail, "TRUNCATE": TruncateUDP}[strings.ToUpper(f[2])]
			if !ok {
				return nil, fmt.Errorf("dnstest: line %d: unknown fault %q", line, f[2])
			}
			z.SetFault(dnsname.Unescape(f[1]), fault)
			rest.WriteString("\n") // keep line numbers
			continue
		}
		rest.WriteString(l)
		rest.WriteString("\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	zp := dns.NewZoneParser(strings.NewReader(rest.String()), ".", "")
	zp.SetDefaultTTL(DefaultTTL)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.AddRR(rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	return z, nil
}

// MustParseZone is ParseZone that panics on error.
func MustParseZone(text string) *Zone {
	z, err := ParseZone(text)
	if err != nil {
		panic(err)
	}
	return z
}

// status of a resolution.
type status int

const (
	stOK status = iota
	stNXDomain
	stNoData
	stTimeout
	stServFail
)

// resolution is the outcome of resolve: the CNAME records followed, the
// records of the asked type, and the status.
type resolution struct {
	chain   []record
	answers []record
	status  status
	last    string // raw name where the search ended
}

// maxChain bounds CNAME chains; a longer chain or a loop answers SERVFAIL.
const maxChain = 8

func (z *Zone) resolve(name string, qtype uint16) resolution {
	z.queries.Add(1)
	z.mu.RLock()
	defer z.mu.RUnlock()
	var res resolution
	for hop := 0; hop <= maxChain; hop++ {
		res.last = name
		k := dnsname.Key(name)
		n := z.nodes[k]
		if n == nil {
			if z.emptyNonTerminal(k) {
				res.status = stNoData
			} else {
				res.status = stNXDomain
			}
			return res
		}
		var cname *record
		for i := range n.records {
			r := &n.records[i]
			if r.typ == qtype {
				res.answers = append(res.answers, *r)
			} else if r.typ == dns.TypeCNAME && cname == nil {
				cname = r
			}
		}
		if len(res.answers) > 0 {
			return res
		}
		if cname != nil {
			res.chain = append(res.chain, *cname)
			name = cname.target
			continue
		}
		switch n.fault {
		case Timeout:
			res.status = stTimeout
		case ServFail:
			res.status = stServFail
		default:
			res.status = stNoData
		}
		return res
	}
	res.status = stServFail // CNAME loop
	return res
}

// emptyNonTerminal reports whether a name without records has
// descendants (RFC 8020: it exists, so the answer is NODATA).
func (z *Zone) emptyNonTerminal(k string) bool {
	suffix := "." + k
	for other := range z.nodes {
		if strings.HasSuffix(other, suffix) {
			return true
		}
	}
	return false
}

// answerErr converts a failed resolution into the resolver error classes.
func answerErr(res resolution, name string, qtype uint16) error {
	t := dns.TypeToString[qtype]
	switch res.status {
	case stNXDomain:
		return fmt.Errorf("%w: %s %s: NXDOMAIN", dnserr.ErrNotFound, name, t)
	case stNoData:
		return fmt.Errorf("%w: %s %s: no records", dnserr.ErrNotFound, name, t)
	case stTimeout:
		return fmt.Errorf("%w: %s %s: timeout", dnserr.ErrTemporary, name, t)
	case stServFail:
		return fmt.Errorf("%w: %s %s: SERVFAIL", dnserr.ErrTemporary, name, t)
	}
	return nil
}

func (z *Zone) lookup(ctx context.Context, name string, qtype uint16) ([]record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", dnserr.ErrTemporary, err)
	}
	res := z.resolve(name, qtype)
	if res.status != stOK {
		return nil, answerErr(res, name, qtype)
	}
	return res.answers, nil
}

// LookupTXT returns one string per TXT record, its character-strings
// concatenated.
func (z *Zone) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rs, err := z.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strings.Join(r.txt, "")
	}
	return out, nil
}

// LookupIP returns the A ("ip4"), AAAA ("ip6") or both ("ip") addresses.
func (z *Zone) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	types, ok := dnsname.AddressTypes(network)
	if !ok {
		return nil, fmt.Errorf("dnstest: unknown network %q", network)
	}
	var ips []net.IP
	var firstErr error
	for _, t := range types {
		rs, err := z.lookup(ctx, host, t)
		if err != nil {
			if firstErr == nil || dnserr.IsTemporary(err) {
				firstErr = err
			}
			continue
		}
		for _, r := range rs {
			ips = append(ips, net.IP(r.addr.AsSlice()))
		}
	}
	if len(ips) == 0 || dnserr.IsTemporary(firstErr) {
		return nil, firstErr
	}
	return ips, nil
}

// LookupMX returns the MX records, sorted by preference (stable); host
// names carry a trailing dot like the net package's.
func (z *Zone) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rs, err := z.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, len(rs))
	for i, r := range rs {
		out[i] = &net.MX{Host: dns.Fqdn(r.target), Pref: r.pref}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pref < out[j].Pref })
	return out, nil
}

// LookupAddr returns the PTR names of an IP address, with trailing dots.
func (z *Zone) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dnserr.ErrNotFound, err)
	}
	rs, err := z.lookup(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = dns.Fqdn(r.target)
	}
	return out, nil
}
