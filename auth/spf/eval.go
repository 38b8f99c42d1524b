package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxDNSTerms is the limit on mechanisms and modifiers that cause DNS
// queries (RFC 7208 section 4.6.4), and maxRR the limit on MX and PTR
// names looked up by one mechanism.
const (
	maxDNSTerms = 10
	maxRR       = 10
)

// checker is the state of one evaluation: the check_host() arguments and
// the counters shared by the whole include/redirect tree.
type checker struct {
	ev        *Evaluator
	ctx       context.Context
	ip        netip.Addr // never IPv4-mapped
	sender    string     // %{s}
	local     string     // %{l}
	domain    string     // the initial <domain>
	helo      string     // %{h}
	scope     Scope
	sid       bool // Sender ID record selection (RFC 4406 section 3.4)
	voidLimit int  // < 0: unlimited

	terms, voids, lookups int

	ptrDone   bool
	validated []string // %{p} candidates, cached per evaluation

	// otherScope: Sender ID, the checked domain publishes spf2.0 records
	// but none for this scope.
	otherScope bool
	// spf2Seen: an SPF (not Sender ID) evaluation looked a record up at a
	// domain that publishes spf2.0 records, where Sender ID would select
	// another record than SPF does.
	spf2Seen bool
}

// evalError carries permerror or temperror up the include tree.
type evalError struct {
	res Result
	err error
}

func (e *evalError) Error() string { return e.err.Error() }
func (e *evalError) Unwrap() error { return e.err }

func permErr(err error) error { return &evalError{PermError, err} }
func tempErr(err error) error { return &evalError{TempError, err} }

// hostResult is the result of one check_host() invocation.
type hostResult struct {
	res  Result
	err  error
	mech string
	// rec and domain identify the record whose directives decided the
	// result (after redirects), for exp= (RFC 7208 section 6.2).
	rec    *Record
	domain string
	// top is the record selected at this invocation's domain topDomain;
	// next is the result of its redirect=, if it was followed.
	top       *Record
	topDomain string
	next      *hostResult
}

func fromError(err error) hostResult {
	var ee *evalError
	if errors.As(err, &ee) {
		return hostResult{res: ee.res, err: ee.err}
	}
	return hostResult{res: TempError, err: err}
}

// checkHost is check_host() of RFC 7208 section 4.
func (c *checker) checkHost(domain string) hostResult {
	// Section 4.3: a malformed or single-label domain gives none.
	if !validDomain(domain) {
		return hostResult{res: None, err: fmt.Errorf("%w: %q", ErrInvalidDomain, domain)}
	}
	rec, err := c.findRecord(domain)
	if err != nil {
		return fromError(err)
	}
	if rec == nil {
		return hostResult{res: None}
	}
	h, err := c.evalRecord(domain, rec)
	if err != nil {
		h = fromError(err)
	}
	h.top, h.topDomain = rec, domain
	return h
}

// validDomain applies the checks of RFC 7208 section 4.3.
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if strings.HasPrefix(d, "[") || !strings.Contains(d, ".") {
		return false // domain literal, or not multi-label
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] <= ' ' || d[i] >= 0x7f {
			return false
		}
	}
	return validLabels(d)
}

// findRecord looks the record of domain up (RFC 7208 sections 4.4, 4.5;
// RFC 4406 section 3.4 for Sender ID). It returns nil, nil for none.
func (c *checker) findRecord(domain string) (*Record, error) {
	txts, err := c.lookupTXT(domain)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		// Section 4.4: any other DNS error gives temperror.
		return nil, tempErr(err)
	}
	text, err := SelectRecord(txts, c.sid, c.scope)
	if c.sid && err == nil && text == "" && domain == c.domain {
		c.otherScope = hasSPF2(txts)
	}
	if !c.sid && !c.spf2Seen {
		c.spf2Seen = hasSPF2(txts)
	}
	if err != nil || text == "" {
		return nil, asPerm(err)
	}
	rec, err := parseCached(text)
	if err != nil {
		return nil, permErr(err)
	}
	return rec, nil
}

// Parsed records are kept by their text: most mail comes from senders
// seen before, and the record's parse was a tenth of an evaluation from
// the DNS cache (issue 13 point 7). A Record is not changed after
// ParseRecord returns it, so one is shared by every evaluation. Only short
// texts are kept, and the map is emptied when full, so memory stays
// bounded whatever the senders publish.
const (
	maxCachedRecords    = 4096
	maxCachedRecordText = 512
)

var recordCache = struct {
	sync.RWMutex
	m map[string]parsedRecord
}{m: map[string]parsedRecord{}}

type parsedRecord struct {
	rec *Record
	err error
}

// parseCached is ParseRecord, memoised.
func parseCached(text string) (*Record, error) {
	if len(text) > maxCachedRecordText {
		return ParseRecord(text)
	}
	recordCache.RLock()
	p, ok := recordCache.m[text]
	recordCache.RUnlock()
	if ok {
		return p.rec, p.err
	}
	rec, err := ParseRecord(text)
	recordCache.Lock()
	if len(recordCache.m) >= maxCachedRecords {
		recordCache.m = map[string]parsedRecord{}
	}
	recordCache.m[text] = parsedRecord{rec, err}
	recordCache.Unlock()
	return rec, err
}

func asPerm(err error) error {
	if err == nil {
		return nil
	}
	return permErr(err)
}

// SelectRecord picks the record to use among the TXT strings of a domain.
//
// SPF (senderID false), RFC 7208 section 4.5: the strings beginning with
// "v=spf1" followed by a space or the end; none gives "", more than one
// gives ErrMultipleRecords.
//
// Sender ID (senderID true): a v=spf1 record is read as
// "spf2.0/mfrom,pra" provided no record starting with "spf2.0" exists (RFC
// 4406 section 3.4). So if the domain publishes any spf2.0 record, the
// v=spf1 records are ignored and the spf2.0 records listing scope are the
// candidates (a domain can publish "spf2.0/pra" alone to keep its v=spf1
// record away from the PRA check); otherwise the v=spf1 records are. No
// candidate gives "", more than one gives ErrMultipleRecords (the rule of
// RFC 4408 section 4.5, which Sender ID uses). Note that Mail::SPF reads
// section 3.4 per scope instead, keeping v=spf1 for a scope that no spf2.0
// record lists; this follows the text.
func SelectRecord(txts []string, senderID bool, scope Scope) (string, error) {
	var v1, v2, v2scope []string
	for _, t := range txts {
		typ, version, _, ok := recordVersion(t)
		switch {
		case !ok:
		case typ == SPF1:
			v1 = append(v1, t)
		case senderID:
			v2 = append(v2, t)
			if listsScope(version, scope) {
				v2scope = append(v2scope, t)
			}
		}
	}
	cand := v1
	if len(v2) > 0 {
		cand = v2scope
	}
	switch len(cand) {
	case 0:
		return "", nil
	case 1:
		return cand[0], nil
	}
	return "", fmt.Errorf("%w: %q", ErrMultipleRecords, cand)
}

// hasSPF2 reports whether any of the TXT strings is an spf2.0 record.
func hasSPF2(txts []string) bool {
	for _, t := range txts {
		if typ, _, _, ok := recordVersion(t); ok && typ == SPF2 {
			return true
		}
	}
	return false
}

// listsScope reports whether the version "spf2.0/<scopes>" lists scope.
func listsScope(version string, scope Scope) bool {
	for _, s := range strings.Split(version[len("spf2.0/"):], ",") {
		if strings.EqualFold(s, string(scope)) {
			return true
		}
	}
	return false
}

// evalRecord evaluates the directives, then redirect= (RFC 7208 sections
// 4.6, 4.7, 6.1).
func (c *checker) evalRecord(domain string, rec *Record) (hostResult, error) {
	for i := range rec.Directives {
		d := &rec.Directives[i]
		match, err := c.match(domain, d)
		if err != nil {
			return hostResult{}, err
		}
		if match {
			return hostResult{res: d.Qualifier.Result(), mech: d.Text, rec: rec, domain: domain}, nil
		}
	}
	if rec.redirect == nil {
		// Section 4.7: no match and no redirect gives neutral.
		return hostResult{res: Neutral, rec: rec, domain: domain}, nil
	}
	// Section 6.1: redirect= counts as a DNS-querying term; the result is
	// that of check_host() on the target, with none turned into permerror.
	// The exp= of this record is not used (section 6.2).
	if err := c.countTerm(); err != nil {
		return hostResult{}, err
	}
	target, ok := domainName(expand(rec.redirect, c, domain))
	if !ok {
		return hostResult{}, permErr(fmt.Errorf("%w: redirect=%s: malformed target %q", ErrNoRecord, rec.Redirect, target))
	}
	sub := c.checkHost(target)
	if sub.res == None {
		return hostResult{}, permErr(fmt.Errorf("%w: redirect=%s (%s)", ErrNoRecord, rec.Redirect, target))
	}
	out := sub
	out.next = &sub
	return out, nil
}

func (c *checker) countTerm() error {
	c.terms++
	if c.terms > maxDNSTerms {
		return permErr(ErrTooManyLookups)
	}
	return nil
}

// void records a void lookup (RFC 7208 section 4.6.4).
func (c *checker) void() error {
	c.voids++
	if c.voidLimit >= 0 && c.voids > c.voidLimit {
		return permErr(fmt.Errorf("%w (%d)", ErrTooManyVoidLookups, c.voids))
	}
	return nil
}

// target expands the domain-spec of d, or returns the current domain.
func (c *checker) target(d *Directive, domain string) (string, bool) {
	if d.domain == nil {
		return domain, true
	}
	return domainName(expand(d.domain, c, domain))
}

func (c *checker) family() string {
	if c.ip.Is4() {
		return "ip4"
	}
	return "ip6"
}

// match evaluates one mechanism (RFC 7208 section 5).
func (c *checker) match(domain string, d *Directive) (bool, error) {
	if err := c.ctx.Err(); err != nil {
		return false, tempErr(fmt.Errorf("%w: %v", ErrTimeout, err))
	}
	switch d.Mechanism {
	case "all": // section 5.1
		return true, nil
	case "ip4", "ip6": // section 5.6: IPv4 only matches ip4, IPv6 ip6
		return d.prefix.Addr().Is4() == c.ip.Is4() && d.prefix.Contains(c.ip), nil
	}
	if err := c.countTerm(); err != nil {
		return false, err
	}
	name, ok := c.target(d, domain)
	switch d.Mechanism {
	case "include": // section 5.2
		if !ok {
			return false, permErr(fmt.Errorf("%w: %s: malformed target %q", ErrNoRecord, d.Text, name))
		}
		sub := c.checkHost(name)
		switch sub.res {
		case Pass:
			return true, nil
		case Fail, SoftFail, Neutral:
			return false, nil
		case TempError:
			return false, tempErr(sub.err)
		case None:
			return false, permErr(fmt.Errorf("%w: %s", ErrNoRecord, d.Text))
		}
		return false, permErr(sub.err)
	case "a": // section 5.3
		if !ok {
			return false, nil // RFC 7208 section 4.8: no query can be made
		}
		ips, err := c.lookupIP(name, c.family())
		if err != nil {
			return false, c.lookupFailed(err)
		}
		return c.anyIn(ips, d), nil
	case "mx": // section 5.4
		if !ok {
			return false, nil
		}
		mxs, err := c.lookupMX(name)
		if err != nil {
			return false, c.lookupFailed(err)
		}
		// Section 4.6.4: evaluating one "mx" MUST NOT query more than 10
		// address records: permerror.
		if len(mxs) > maxRR {
			return false, permErr(fmt.Errorf("%w: %s has %d", ErrTooManyMX, name, len(mxs)))
		}
		for _, mx := range mxs {
			host := strings.TrimSuffix(mx.Host, ".")
			if host == "" {
				continue // null MX (RFC 7505)
			}
			ips, err := c.lookupIP(host, c.family())
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return false, tempErr(err)
			}
			if c.anyIn(ips, d) {
				return true, nil
			}
		}
		return false, nil
	case "ptr": // section 5.5
		if !ok {
			return false, nil
		}
		names, err := c.lookupAddr()
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return false, c.void()
			}
			return false, nil // a DNS error on the PTR lookup: no match
		}
		for _, n := range names {
			if isSubdomain(n, name) && c.validates(n) {
				return true, nil
			}
		}
		return false, nil
	case "exists": // section 5.7: an A query, whatever the IP version
		if !ok {
			return false, nil
		}
		ips, err := c.lookupIP(name, "ip4")
		if err != nil {
			return false, c.lookupFailed(err)
		}
		return len(ips) > 0, nil
	}
	return false, permErr(fmt.Errorf("%w: mechanism %q", ErrSyntax, d.Mechanism))
}

// lookupFailed turns the error of a mechanism's lookup into a void lookup
// (no match) or temperror.
func (c *checker) lookupFailed(err error) error {
	if errors.Is(err, ErrNotFound) {
		return c.void()
	}
	return tempErr(err)
}

// anyIn reports whether an address of ips, widened by the cidr-length of
// d, contains the client (RFC 7208 sections 5.3, 5.6).
func (c *checker) anyIn(ips []net.IP, d *Directive) bool {
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.Is4() != c.ip.Is4() {
			continue
		}
		bits := d.cidr6
		if a.Is4() {
			bits = d.cidr4
		}
		if bits < 0 {
			bits = a.BitLen()
		}
		p, err := a.Prefix(bits)
		if err == nil && p.Contains(c.ip) {
			return true
		}
	}
	return false
}

// lookupAddr returns at most 10 PTR names of the client, lower case and
// without the trailing dot (RFC 7208 section 4.6.4: the others are
// ignored).
func (c *checker) lookupAddr() ([]string, error) {
	c.lookups++
	names, err := c.ev.Resolver.LookupAddr(c.ctx, c.ip.String())
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no PTR for %s", ErrNotFound, c.ip)
	}
	if len(names) > maxRR {
		names = names[:maxRR]
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(strings.TrimSuffix(n, ".")))
	}
	return out, nil
}

// validates reports whether a forward lookup of name gives the client
// address (RFC 7208 section 5.5); lookup errors skip the name.
func (c *checker) validates(name string) bool {
	ips, err := c.lookupIP(name, c.family())
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == c.ip {
			return true
		}
	}
	return false
}

// isSubdomain reports whether name equals parent or is below it, ignoring
// case.
func isSubdomain(name, parent string) bool {
	name, parent = strings.ToLower(name), strings.ToLower(parent)
	return name == parent || strings.HasSuffix(name, "."+parent)
}

func (c *checker) lookupTXT(name string) ([]string, error) {
	c.lookups++
	txts, err := c.ev.Resolver.LookupTXT(c.ctx, name)
	if err == nil && len(txts) == 0 {
		err = fmt.Errorf("%w: no TXT for %s", ErrNotFound, name)
	}
	return txts, err
}

func (c *checker) lookupIP(name, network string) ([]net.IP, error) {
	c.lookups++
	ips, err := c.ev.Resolver.LookupIP(c.ctx, network, name)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("%w: no address for %s", ErrNotFound, name)
	}
	return ips, err
}

func (c *checker) lookupMX(name string) ([]*net.MX, error) {
	c.lookups++
	mxs, err := c.ev.Resolver.LookupMX(c.ctx, name)
	if err == nil && len(mxs) == 0 {
		err = fmt.Errorf("%w: no MX for %s", ErrNotFound, name)
	}
	return mxs, err
}

// macroValue implements macroEnv (RFC 7208 section 7.3).
func (c *checker) macroValue(letter byte, domain string) string {
	switch letter {
	case 's':
		return c.sender
	case 'l':
		return c.local
	case 'o':
		_, o := splitSender(c.sender)
		return o
	case 'd':
		return domain
	case 'i':
		return dotted(c.ip)
	case 'p':
		return c.validatedName(domain)
	case 'v':
		if c.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return c.helo
	case 'c':
		return c.ip.String() // RFC 5952 form for IPv6
	case 'r':
		if c.ev.Receiver != "" {
			return c.ev.Receiver
		}
		return "unknown"
	case 't':
		if c.ev.Now != nil {
			return strconv.FormatInt(c.ev.Now().Unix(), 10)
		}
		return strconv.FormatInt(time.Now().Unix(), 10)
	}
	return ""
}

// dotted is the %{i} form: dotted quad for IPv4, 32 dot-separated nibbles
// for IPv6 (RFC 7208 section 7.3). The nibbles are upper case like the
// reference implementation behind the RFC 7208 test suite (pyspf); DNS
// names are case-insensitive, so queries are unaffected.
func dotted(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789ABCDEF"
	b := ip.As16()
	out := make([]byte, 0, 63)
	for i, x := range b {
		if i > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[x>>4], '.', hex[x&15])
	}
	return string(out)
}

// validatedName is the %{p} macro (RFC 7208 section 7.3): a validated PTR
// name of the client, preferring <domain> itself, then a subdomain of it,
// then any; "unknown" if none validates or DNS fails.
func (c *checker) validatedName(domain string) string {
	if !c.ptrDone {
		c.ptrDone = true
		if names, err := c.lookupAddr(); err == nil {
			for _, n := range names {
				if c.validates(n) {
					c.validated = append(c.validated, n)
				}
			}
		}
	}
	domain = strings.ToLower(domain)
	for _, n := range c.validated {
		if n == domain {
			return n
		}
	}
	for _, n := range c.validated {
		if isSubdomain(n, domain) {
			return n
		}
	}
	if len(c.validated) > 0 {
		return c.validated[0]
	}
	return "unknown"
}

// explain fetches and expands the exp= text of rec (RFC 7208 section 6.2).
// Any problem (bad target, DNS error, not exactly one TXT RR, syntax error
// in the text) means no explanation. The lookup is made once, after the
// result is known, and counts against no limit.
func (c *checker) explain(rec *Record, domain string) string {
	name, ok := domainName(expand(rec.exp, c, domain))
	if !ok {
		return ""
	}
	txts, err := c.lookupTXT(name)
	if err != nil || len(txts) != 1 {
		return ""
	}
	ms, err := parseMacroString(txts[0], macroExplain)
	if err != nil {
		return ""
	}
	return expand(ms, c, domain)
}

// allQualifier returns the qualifier of the terminal "all" of the top
// record, following redirect= when the record has no "all" (the check
// followed it, or it is looked up now, outside the processing limits).
func (c *checker) allQualifier(h hostResult) Qualifier {
	for hops := 0; h.top != nil && hops <= maxDNSTerms; hops++ {
		if q := h.top.AllQualifier(); q != "" || h.top.redirect == nil {
			return q
		}
		if h.next != nil {
			h = *h.next
			continue
		}
		target, ok := domainName(expand(h.top.redirect, c, h.topDomain))
		if !ok {
			return ""
		}
		rec, err := c.findRecord(target)
		if err != nil || rec == nil {
			return ""
		}
		h = hostResult{top: rec, topDomain: target}
	}
	return ""
}
