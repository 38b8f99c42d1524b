// Package dmarc evaluates DMARC (RFC 7489) as a pure function of plain
// values: the From: header field values, the SPF result and the domain it
// authenticated, the DKIM results and their d= domains, plus an injected
// TXT lookup (the project's caching resolver) and random source (for
// pct=). It discovers the policy record at the From: domain and then at
// its organisational domain (RFC 7489 section 6.6.3, the organisational
// domain from the public suffix list, section 3.2), checks relaxed or
// strict identifier alignment (section 3.1), picks p= or sp= and applies
// pct= (section 6.6.4).
//
// Under the SGE framework a disposition of quarantine means an
// administrator-only hold, never a junk folder; reject means refuse. That
// is the caller's business: this package only says which.
package dmarc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// Result is the DMARC result (RFC 7489 section 11.2, the values of the
// Authentication-Results "dmarc" method).
type Result string

// Results.
const (
	Pass      Result = "pass"
	Fail      Result = "fail"
	None      Result = "none"
	TempError Result = "temperror"
	PermError Result = "permerror"
)

// Errors returned by Evaluate (with a complete Evaluation) and the lookup
// helpers. Check with errors.Is.
var (
	// ErrNoFrom: no From: header field, or one without any address (RFC
	// 7489 section 6.6.1: such messages are "typically rejected"; the
	// caller's policy decides). Result PermError.
	ErrNoFrom = errors.New("dmarc: no From: address")
	// ErrMultipleFrom: more than one From: header field (RFC 5322
	// section 3.6 allows one; RFC 7489 section 6.6.1: "typically
	// rejected"). Result PermError.
	ErrMultipleFrom = errors.New("dmarc: several From: header fields")
	// ErrMalformedFrom: the From: field cannot be parsed into addresses
	// with a domain. Result PermError.
	ErrMalformedFrom = errors.New("dmarc: malformed From: header field")
	// ErrTemporary: a DNS lookup failed temporarily. Result TempError.
	ErrTemporary = dnserr.ErrTemporary
	// ErrNoRecord: no DMARC record at the name (FetchRecord).
	ErrNoRecord = errors.New("dmarc: no DMARC record")
	// ErrMultipleRecords: more than one DMARC record at the name (RFC
	// 7489 section 6.6.3 step 5: no DMARC processing).
	ErrMultipleRecords = errors.New("dmarc: several DMARC records")
)

// LookupTXTFunc returns the TXT records at name, one string per record,
// its character-strings concatenated. Errors wrap dnserr.ErrNotFound for
// NXDOMAIN and NODATA; anything else is temporary.
// (*dnsresolver.Resolver).LookupTXT and (*dnstest.Zone).LookupTXT fit.
type LookupTXTFunc func(ctx context.Context, name string) ([]string, error)

// DKIMResult is one DKIM signature's verdict: its d= domain and its
// result ("pass", "fail", ... as in RFC 8601); only "pass" counts (RFC
// 7489 section 4.2).
type DKIMResult struct {
	Domain string
	Result string
}

// Input is what DMARC looks at.
type Input struct {
	// From holds the raw values of every From: header field of the
	// message, in order (RFC 7489 section 6.6.1).
	From []string
	// SPFResult is the SPF result (RFC 7208 section 2.6: "pass", ...);
	// only "pass" counts.
	SPFResult string
	// SPFDomain is the domain SPF authenticated: the RFC5321.MailFrom
	// domain, or the HELO domain when MAIL FROM is null (RFC 7489
	// section 4.1, RFC 7208 section 2.4). A whole address is accepted
	// (its domain is used).
	SPFDomain string
	// DKIM holds the results of every DKIM signature.
	DKIM []DKIMResult
}

// Options injects the environment.
type Options struct {
	// LookupTXT queries _dmarc.<domain>; nil means net.DefaultResolver.
	LookupTXT LookupTXTFunc
	// RandIntN returns a uniform integer in [0, n) for pct= sampling
	// (RFC 7489 section 6.6.4); nil means math/rand/v2.IntN. It is
	// called only when a failing message meets 0 < pct < 100.
	RandIntN func(n int) int
	// OrgDomain returns the organisational domain of a lower-case ASCII
	// domain (RFC 7489 section 3.2); nil means OrganizationalDomain.
	OrgDomain func(domain string) string
}

// Evaluation is the outcome of Evaluate.
type Evaluation struct {
	Result Result
	// Disposition is the policy to apply to this message: none unless
	// the result is fail, then the published policy, one step lower when
	// pct= sampling left the message out (RFC 7489 section 6.6.4).
	Disposition Policy
	// PublishedPolicy is the p= or sp= that applies to FromDomain; ""
	// when there is no usable record.
	PublishedPolicy Policy
	// SubdomainPolicy is true when PublishedPolicy came from sp= (or
	// from p= standing in for an absent sp=): the record was found at the
	// organisational domain and FromDomain is below it.
	SubdomainPolicy bool
	// FromDomain is the RFC5322.From domain evaluated (header.from):
	// lower-case, A-labels. With several authors (FromDomains), the one
	// that decided the result.
	FromDomain string
	// FromDomains lists the distinct domains of a From: field with
	// several mailboxes (RFC 7489 section 6.6.1), or every domain a
	// From: that cannot be parsed names (its candidates, evaluated for
	// the strictest policy; such a From: never gets Pass, at best None);
	// nil with one.
	FromDomains []string
	// OrgDomain is FromDomain's organisational domain (section 3.2).
	OrgDomain string
	// RecordDomain is where the record was found (it lives at
	// "_dmarc."+RecordDomain): FromDomain or OrgDomain.
	RecordDomain string
	// Record is the record used; nil when none.
	Record *Record
	// SPFAligned is true when SPF passed for a domain aligned with
	// FromDomain under SPFAlignment (section 3.1.2).
	SPFAligned   bool
	SPFAlignment Alignment
	// DKIMAligned is true when a passing DKIM signature's d= is aligned
	// with FromDomain under DKIMAlignment (section 3.1.1); DKIMDomain is
	// the first such d=.
	DKIMAligned   bool
	DKIMAlignment Alignment
	DKIMDomain    string
	// Percent is the record's pct=; Sampled is false only when pct=
	// sampling lowered the disposition (section 6.6.4).
	Percent int
	Sampled bool
	// Reason says why, for logs and Authentication-Results comments.
	Reason string
}

// Evaluate runs DMARC for a message. It always returns a complete
// Evaluation; the error is nil for pass, fail and none, wraps
// ErrTemporary for temperror, and ErrNoFrom, ErrMultipleFrom or
// ErrMalformedFrom for permerror.
func Evaluate(ctx context.Context, in Input, opts Options) (Evaluation, error) {
	if opts.LookupTXT == nil {
		opts.LookupTXT = dnserr.SystemLookupTXT
	}
	if opts.RandIntN == nil {
		opts.RandIntN = rand.IntN
	}
	if opts.OrgDomain == nil {
		opts.OrgDomain = OrganizationalDomain
	}
	domains, err := FromDomains(in.From)
	unparsed := ""
	if errors.Is(err, ErrMalformedFrom) {
		// RFC 7489 section 6.6.1 leaves a From: that cannot be parsed to
		// the receiver. Fail safe (issue 12 point 1): when it names
		// domains (after an "@" anywhere, or in a display name), each is
		// evaluated and the strictest policy applies, so a domain that
		// says reject is refused; only a From: naming none is a permerror.
		if c := message.Authors(in.From).Candidates; len(c) > 0 {
			domains, unparsed, err = c, err.Error(), nil
		}
	}
	if err != nil {
		return Evaluation{Result: PermError, Disposition: PolicyNone, Sampled: true, Reason: err.Error()}, err
	}
	var best Evaluation
	var bestErr error
	for i, d := range domains {
		ev, err := evaluateDomain(ctx, d, in, opts)
		if i == 0 || rank(ev) > rank(best) {
			best, bestErr = ev, err
		}
	}
	if len(domains) > 1 {
		// RFC 7489 section 6.6.1: a single From: field with several
		// addresses: evaluate each domain and apply the strictest policy
		// among those that fail.
		best.FromDomains = domains
	}
	if unparsed != "" {
		best.FromDomains = domains
		if best.Result == Pass {
			// No pass is claimed for an author nobody can tell.
			best.Result = None
		}
		best.Reason = fmt.Sprintf("%s; evaluated every domain it names (%s), the strictest applies: %s", unparsed, strings.Join(domains, ", "), best.Reason)
	}
	return best, bestErr
}

// rank orders evaluations for section 6.6.1: a temporary error first,
// then failures by disposition, then no policy, then pass.
func rank(ev Evaluation) int {
	switch ev.Result {
	case TempError:
		return 6
	case Fail:
		switch ev.Disposition {
		case PolicyReject:
			return 5
		case PolicyQuarantine:
			return 4
		}
		return 3
	case None, PermError:
		return 2
	}
	return 1
}

func evaluateDomain(ctx context.Context, from string, in Input, opts Options) (Evaluation, error) {
	ev := Evaluation{FromDomain: from, OrgDomain: opts.OrgDomain(from), Disposition: PolicyNone, Sampled: true}

	// RFC 7489 section 6.6.3 steps 1-2: the record at the From domain.
	rec, err := FetchRecord(ctx, opts.LookupTXT, from)
	ev.RecordDomain = from
	// Step 3: none there (no DMARC record at all): the organisational
	// domain, if different.
	if errors.Is(err, ErrNoRecord) && ev.OrgDomain != from {
		rec, err = FetchRecord(ctx, opts.LookupTXT, ev.OrgDomain)
		ev.RecordDomain = ev.OrgDomain
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrTemporary):
		ev.Result = TempError
		ev.Reason = fmt.Sprintf("DNS lookup of _dmarc.%s failed temporarily", ev.RecordDomain)
		ev.RecordDomain = ""
		return ev, err
	case errors.Is(err, ErrNoRecord):
		ev.Result, ev.RecordDomain = None, ""
		ev.Reason = fmt.Sprintf("no DMARC record for %s", from)
		return ev, nil
	case errors.Is(err, ErrMultipleRecords):
		// Step 5: several records: DMARC does not apply.
		ev.Result = None
		ev.Reason = fmt.Sprintf("several DMARC records at _dmarc.%s (RFC 7489 section 6.6.3)", ev.RecordDomain)
		return ev, nil
	case errors.Is(err, ErrInvalidRecord) && rec != nil && len(rec.AggregateReportURIs) > 0:
		// Step 6.1: no valid p= but a valid rua=: act as if p=none.
		rec.Policy, rec.SubdomainPolicy = PolicyNone, ""
		ev.Reason = fmt.Sprintf("invalid DMARC record at _dmarc.%s, read as p=none (RFC 7489 section 6.6.3): %v", ev.RecordDomain, err)
	default:
		// Step 6.2: an invalid record: no DMARC processing.
		ev.Result = None
		ev.Reason = fmt.Sprintf("invalid DMARC record at _dmarc.%s: %v", ev.RecordDomain, err)
		return ev, nil
	}
	ev.Record = rec
	ev.Percent = rec.Percent
	ev.SPFAlignment, ev.DKIMAlignment = rec.SPFAlignment, rec.DKIMAlignment
	// RFC 7489 section 6.3, sp=: the policy for subdomains, when the
	// record came from the organisational domain.
	ev.SubdomainPolicy = ev.RecordDomain != from
	ev.PublishedPolicy = rec.PolicyFor(ev.SubdomainPolicy)

	// Section 3.1.2 and 4.2: an SPF pass for an aligned domain.
	if strings.EqualFold(strings.TrimSpace(in.SPFResult), "pass") {
		spfDomain := in.SPFDomain
		if at := strings.LastIndexByte(spfDomain, '@'); at >= 0 {
			spfDomain = spfDomain[at+1:] // given as the MAIL FROM address
		}
		if d, ok := normalize(spfDomain); ok && aligned(d, from, rec.SPFAlignment, opts.OrgDomain) {
			ev.SPFAligned = true
		}
	}
	// Section 3.1.1 and 4.2: a DKIM pass for an aligned d=.
	for _, r := range in.DKIM {
		if !strings.EqualFold(strings.TrimSpace(r.Result), "pass") {
			continue
		}
		if d, ok := normalize(r.Domain); ok && aligned(d, from, rec.DKIMAlignment, opts.OrgDomain) {
			ev.DKIMAligned, ev.DKIMDomain = true, d
			break
		}
	}
	if ev.SPFAligned || ev.DKIMAligned {
		ev.Result = Pass
		if ev.Reason == "" {
			ev.Reason = "aligned " + alignedWhat(ev)
		}
		return ev, nil
	}
	ev.Result = Fail
	ev.Disposition = ev.PublishedPolicy
	// Section 6.6.4 and 6.3 pct=: a message left out of the sample gets
	// the next policy down (reject -> quarantine, quarantine -> none).
	if ev.Disposition != PolicyNone && rec.Percent < 100 {
		if rec.Percent <= 0 || opts.RandIntN(100) >= rec.Percent {
			ev.Sampled = false
			if ev.Disposition == PolicyReject {
				ev.Disposition = PolicyQuarantine
			} else {
				ev.Disposition = PolicyNone
			}
		}
	}
	if ev.Reason == "" {
		ev.Reason = "no aligned SPF or DKIM pass"
	}
	return ev, nil
}

func alignedWhat(ev Evaluation) string {
	var parts []string
	if ev.SPFAligned {
		parts = append(parts, "spf ("+modeName(ev.SPFAlignment)+")")
	}
	if ev.DKIMAligned {
		parts = append(parts, "dkim d="+ev.DKIMDomain+" ("+modeName(ev.DKIMAlignment)+")")
	}
	return strings.Join(parts, ", ")
}

func modeName(a Alignment) string {
	if a == Strict {
		return "strict"
	}
	return "relaxed"
}

// aligned compares an authenticated domain with the From domain (RFC 7489
// section 3.1): strict mode wants the same name, relaxed mode the same
// organisational domain.
func aligned(id, from string, mode Alignment, org func(string) string) bool {
	if id == from {
		return true
	}
	return mode != Strict && org(id) == org(from)
}

// FetchRecord looks up the DMARC record of one domain (RFC 7489 section
// 6.6.3 steps 1, 2 and 5): TXT at "_dmarc."+domain, records that do not
// start with "v=DMARC1" dropped. It returns the parsed record or an
// error wrapping ErrNoRecord (none left, NXDOMAIN, NODATA),
// ErrMultipleRecords, ErrInvalidRecord (with the partial record) or
// ErrTemporary.
func FetchRecord(ctx context.Context, lookup LookupTXTFunc, domain string) (*Record, error) {
	name := "_dmarc." + domain
	txts, err := lookup(ctx, name)
	if err != nil {
		if dnserr.IsNotFound(err) {
			return nil, fmt.Errorf("%w at %s", ErrNoRecord, name)
		}
		if dnserr.IsTemporary(err) {
			return nil, fmt.Errorf("dmarc: %s: %w", name, err)
		}
		return nil, fmt.Errorf("dmarc: %s: %w: %v", name, ErrTemporary, err)
	}
	var recs []*Record
	var errs []error
	for _, txt := range txts {
		rec, err := ParseRecord(txt)
		if errors.Is(err, ErrNotDMARC) {
			continue
		}
		recs = append(recs, rec)
		errs = append(errs, err)
	}
	switch len(recs) {
	case 0:
		return nil, fmt.Errorf("%w at %s", ErrNoRecord, name)
	case 1:
		if errs[0] != nil {
			return recs[0], fmt.Errorf("%w at %s", errs[0], name)
		}
		return recs[0], nil
	}
	return nil, fmt.Errorf("%w at %s (%d)", ErrMultipleRecords, name, len(recs))
}

// OrganizationalDomain returns the organisational domain of a lower-case
// domain (RFC 7489 section 3.2): the public suffix (golang.org/x/net's
// copy of the Public Suffix List) plus one label; the domain itself when
// it is a public suffix or has no suffix match.
func OrganizationalDomain(domain string) string {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// FromDomains returns the distinct domains of the author addresses in
// the From: header field values (RFC 7489 section 6.6.1), read by the
// gateway's one author parser (message.Authors: unfolded first, so a From:
// folded with a comment on the next line is one author, issue 12 point 10),
// lower-case, internationalised names as A-labels. Errors wrap ErrNoFrom,
// ErrMultipleFrom or ErrMalformedFrom.
func FromDomains(values []string) ([]string, error) {
	r := message.Authors(values)
	switch r.Status {
	case message.StatusAbsent:
		return nil, fmt.Errorf("%w: %s", ErrNoFrom, r.Problem)
	case message.StatusRepeated:
		return nil, fmt.Errorf("%w (%d)", ErrMultipleFrom, len(values))
	case message.StatusUnparseable:
		return nil, fmt.Errorf("%w: %s", ErrMalformedFrom, r.Problem)
	}
	var domains []string
	for _, a := range r.Authors {
		if !slices.Contains(domains, a.Domain) {
			domains = append(domains, a.Domain)
		}
	}
	return domains, nil
}

// normalize is message.NormalizeDomain: the same normalisation for the
// From: domain and the SPF and DKIM domains aligned with it.
func normalize(d string) (string, bool) { return message.NormalizeDomain(d) }
