// Package spf evaluates SPF (RFC 7208: "v=spf1", MAIL FROM and HELO
// identities) and Sender ID (RFC 4406: "spf2.0/mfrom", "spf2.0/pra",
// falling back to "v=spf1") with one check_host() engine, and selects the
// Purported Responsible Address of a message (RFC 4407 section 2).
//
// DNS lookups go through the small Resolver interface, so the evaluator
// runs against the project's caching resolver (auth/dnsresolver), an
// in-memory zone (auth/dnstest) or anything else.
package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
)

// Result is the outcome of check_host() (RFC 7208 section 2.6).
type Result string

// Results of RFC 7208 section 2.6 (the same names in RFC 4406).
const (
	None      Result = "none"
	Neutral   Result = "neutral"
	Pass      Result = "pass"
	Fail      Result = "fail"
	SoftFail  Result = "softfail"
	TempError Result = "temperror"
	PermError Result = "permerror"
)

// Scope is the identity being checked.
type Scope string

// Scopes: RFC 7208 section 2.3 (helo), 2.4 (mfrom); RFC 4406 section 3.2
// (mfrom, pra).
const (
	ScopeHELO  Scope = "helo"
	ScopeMFrom Scope = "mfrom"
	ScopePRA   Scope = "pra"
)

// Resolver is the DNS access the evaluator needs. Errors must wrap
// ErrNotFound for NXDOMAIN and NODATA (a "void lookup", RFC 7208 section
// 4.6.4) and ErrTemporary (or anything else) for failures, which become
// temperror. Names may be given or returned with or without a trailing dot.
type Resolver interface {
	// LookupTXT returns one string per TXT RR, its character-strings
	// concatenated without separator (RFC 7208 section 3.3).
	LookupTXT(ctx context.Context, name string) ([]string, error)
	// LookupIP returns the A ("ip4") or AAAA ("ip6") addresses of host.
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
	// LookupMX returns the MX RRs of name.
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupAddr returns the PTR names of the address addr (textual form).
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Lookup error classes, shared with auth/dnsresolver and auth/dnstest.
var (
	ErrNotFound  = dnserr.ErrNotFound
	ErrTemporary = dnserr.ErrTemporary
)

// Errors carried by Outcome.Err.
var (
	// ErrMultipleRecords: more than one record for the identity (RFC 7208
	// section 4.5; RFC 4408 section 4.5 for Sender ID): permerror.
	ErrMultipleRecords = errors.New("spf: multiple records")
	// ErrTooManyLookups: more than 10 mechanisms or modifiers that query
	// DNS (RFC 7208 section 4.6.4): permerror.
	ErrTooManyLookups = errors.New("spf: more than 10 DNS-querying terms")
	// ErrTooManyVoidLookups: more than the allowed void lookups (RFC 7208
	// section 4.6.4): permerror.
	ErrTooManyVoidLookups = errors.New("spf: too many void lookups")
	// ErrTooManyMX: an "mx" mechanism needing more than 10 address lookups
	// (RFC 7208 section 4.6.4): permerror.
	ErrTooManyMX = errors.New("spf: more than 10 MX records")
	// ErrNoRecord: include or redirect target without a record (RFC 7208
	// sections 5.2 and 6.1): permerror.
	ErrNoRecord = errors.New("spf: target has no record")
	// ErrInvalidDomain: the domain is malformed or not multi-label (RFC
	// 7208 section 4.3): the result is none.
	ErrInvalidDomain = errors.New("spf: invalid domain")
	// ErrTimeout: the evaluation exceeded Evaluator.Timeout (RFC 7208
	// section 4.6.4): temperror.
	ErrTimeout = errors.New("spf: evaluation timed out")
	// ErrInvalidIP: the client address is not an IP address.
	ErrInvalidIP = errors.New("spf: invalid client IP")
)

// DefaultVoidLookupLimit is the RECOMMENDED limit of RFC 7208 section
// 4.6.4.
const DefaultVoidLookupLimit = 2

// DefaultTimeout bounds one evaluation; RFC 7208 section 4.6.4 asks for at
// least 20 seconds.
const DefaultTimeout = 20 * time.Second

// Evaluator runs SPF and Sender ID checks. The zero value is not usable:
// Resolver must be set. An Evaluator is safe for concurrent use.
type Evaluator struct {
	Resolver Resolver
	// Receiver is the %{r} macro, the receiving MTA's domain (RFC 7208
	// section 7.3); "unknown" when empty.
	Receiver string
	// Now supplies the %{t} macro; time.Now when nil.
	Now func() time.Time
	// Timeout bounds one evaluation; DefaultTimeout when zero.
	Timeout time.Duration
	// VoidLookupLimit is the number of void lookups allowed (RFC 7208
	// section 4.6.4); DefaultVoidLookupLimit when zero, no limit when
	// negative (RFC 4408 had none).
	VoidLookupLimit int
}

// Outcome is everything one check found out.
type Outcome struct {
	Result Result
	Scope  Scope
	// Identity is the checked identity: the sender, or postmaster@<HELO>
	// for the HELO identity and a null MAIL FROM (RFC 7208 section 2.4).
	Identity string
	// Domain is the <domain> given to check_host().
	Domain string
	// Record is the record published at Domain and RecordType its syntax;
	// both empty when none was selected.
	Record     string
	RecordType RecordType
	// AllQualifier is the qualifier of the terminal "all" mechanism of
	// Record, or of the record reached through its redirect= modifier when
	// it has none; "" if there is no "all". The SecureMail rule M-SEC
	// requires "-".
	AllQualifier Qualifier
	// OtherScopeRecord (Sender ID only): Domain publishes spf2.0 records,
	// none of them for Scope (e.g. "spf2.0/pra ... -all" alone, the usual
	// form, at an mfrom check). Record is then empty and Result none; the
	// record is still a Sender ID record (M-SEC).
	OtherScopeRecord bool
	// SenderIDSame (SPF only): no domain whose record the evaluation
	// looked up publishes an spf2.0 record. Sender ID then selects the
	// v=spf1 record SPF selected at every step (RFC 4406 section 3.4), so
	// a Sender ID check of the same identity, from the same IP address
	// and HELO, has this outcome in either scope (issue 13 point 7: one
	// evaluation instead of three for the usual sender).
	SenderIDSame bool
	// Mechanism is the directive that matched (for an include, the include
	// directive itself), "" for the default result.
	Mechanism string
	// Explanation is the expanded exp= text, for fail only (RFC 7208
	// section 6.2); empty when there is none or it could not be used.
	Explanation string
	// Err details permerror, temperror and (for a malformed domain) none.
	Err error
	// Lookups is the number of Resolver calls made (cache hits included).
	Lookups int
	// Terms counts mechanisms and modifiers that caused DNS queries
	// (limit 10) and VoidLookups the void lookups among them.
	Terms       int
	VoidLookups int
}

// CheckMailFrom checks the MAIL FROM identity (RFC 7208 section 2.4). A
// null sender is checked as postmaster@<helo>.
func (e *Evaluator) CheckMailFrom(ctx context.Context, ip net.IP, sender, helo string) (Outcome, error) {
	return e.checkIdentity(ctx, ip, ScopeMFrom, sender, helo, false)
}

// CheckHELO checks the HELO identity (RFC 7208 section 2.3) as
// postmaster@<helo>.
func (e *Evaluator) CheckHELO(ctx context.Context, ip net.IP, helo string) (Outcome, error) {
	return e.checkIdentity(ctx, ip, ScopeHELO, "", helo, false)
}

// CheckSenderID checks a Sender ID identity (RFC 4406): the MAIL FROM
// address for ScopeMFrom (a null one is checked as postmaster@<helo>) or
// the Purported Responsible Address for ScopePRA (see PRA). Records are
// selected by RFC 4406 section 3.4: spf2.0 records for the scope, or
// v=spf1 when the domain publishes no spf2.0 record.
func (e *Evaluator) CheckSenderID(ctx context.Context, ip net.IP, scope Scope, address, helo string) (Outcome, error) {
	switch scope {
	case ScopeMFrom:
	case ScopePRA:
		if strings.TrimSpace(address) == "" {
			err := fmt.Errorf("%w: empty address", ErrNoPRA)
			return Outcome{Result: PermError, Scope: scope, Err: err}, err
		}
	default:
		err := fmt.Errorf("spf: Sender ID has no scope %q", scope)
		return Outcome{Result: PermError, Scope: scope, Err: err}, err
	}
	return e.checkIdentity(ctx, ip, scope, address, helo, true)
}

// CheckPRA selects the Purported Responsible Address of a message from
// its header fields (RFC 4407 section 2) and checks it in the Sender ID
// "pra" scope. A message without a PRA is ill-formed (RFC 4407 section 2
// step 6) and gets permerror, wrapping ErrNoPRA.
func (e *Evaluator) CheckPRA(ctx context.Context, ip net.IP, headers []Header, helo string) (Outcome, error) {
	addr, _, err := PRA(headers)
	if err != nil {
		return Outcome{Result: PermError, Scope: ScopePRA, Err: err}, err
	}
	return e.CheckSenderID(ctx, ip, ScopePRA, addr, helo)
}

// CheckHost is check_host(<ip>, <domain>, <sender>) of RFC 7208 section
// 4 with SPF record selection; helo is only the %{h} macro.
func (e *Evaluator) CheckHost(ctx context.Context, ip net.IP, domain, sender, helo string) (Outcome, error) {
	return e.run(ctx, ip, ScopeMFrom, domain, sender, helo, false)
}

func (e *Evaluator) checkIdentity(ctx context.Context, ip net.IP, scope Scope, sender, helo string, sid bool) (Outcome, error) {
	if scope == ScopeHELO || (scope == ScopeMFrom && sender == "") {
		// RFC 7208 section 2.4: a null reverse-path is checked as
		// postmaster@<HELO domain>.
		sender = "postmaster@" + helo
	}
	_, domain := splitSender(sender)
	return e.run(ctx, ip, scope, domain, sender, helo, sid)
}

// splitSender splits an address at its last "@". RFC 7208 section 4.3: a
// missing local-part becomes "postmaster"; an address without "@" is
// taken as a domain.
func splitSender(s string) (local, domain string) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return "postmaster", s
	}
	local, domain = s[:i], s[i+1:]
	if local == "" {
		local = "postmaster"
	}
	return local, domain
}

func (e *Evaluator) run(ctx context.Context, ip net.IP, scope Scope, domain, sender, helo string, sid bool) (Outcome, error) {
	out := Outcome{Scope: scope, Domain: domain}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		out.Result, out.Err = PermError, fmt.Errorf("%w: %v", ErrInvalidIP, ip)
		return out, out.Err
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A caller's deadline that comes first already bounds the evaluation
	// (the milter's per-stage one): no second timer for every message.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	local, _ := splitSender(sender)
	if !strings.Contains(sender, "@") {
		sender = "postmaster@" + sender
	} else if strings.HasPrefix(sender, "@") {
		sender = "postmaster" + sender
	}
	out.Identity = sender
	c := &checker{
		ev:        e,
		ctx:       ctx,
		ip:        addr.Unmap(), // RFC 7208 section 5: IPv4-mapped is IPv4
		sender:    sender,
		local:     local,
		domain:    strings.TrimSuffix(domain, "."),
		helo:      helo,
		scope:     scope,
		sid:       sid,
		voidLimit: e.VoidLookupLimit,
	}
	if c.voidLimit == 0 {
		c.voidLimit = DefaultVoidLookupLimit
	}
	h := c.checkHost(c.domain)
	out.Result, out.Err, out.Mechanism = h.res, h.err, h.mech
	if h.top != nil {
		out.Record, out.RecordType = h.top.Text, h.top.Type
		if out.Result != PermError && out.Result != TempError {
			out.AllQualifier = c.allQualifier(h)
		} else {
			out.AllQualifier = h.top.AllQualifier()
		}
	}
	if out.Result == Fail && h.rec != nil && h.rec.exp != nil {
		out.Explanation = c.explain(h.rec, h.domain)
	}
	out.OtherScopeRecord = c.otherScope && out.Record == ""
	out.SenderIDSame = !sid && !c.spf2Seen
	out.Lookups, out.Terms, out.VoidLookups = c.lookups, c.terms, c.voids
	if out.Result == PermError || out.Result == TempError {
		return out, out.Err
	}
	return out, nil
}
