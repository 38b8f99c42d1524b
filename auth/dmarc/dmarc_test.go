package dmarc

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

func testZone(t *testing.T) *dnstest.Zone {
	t.Helper()
	text, err := os.ReadFile("../../testdata/dmarc/dmarc.zone")
	if err != nil {
		t.Fatal(err)
	}
	z, err := dnstest.ParseZone(string(text))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// fixedRand returns v; noRand fails the test if pct= sampling asks.
func fixedRand(v int) func(int) int { return func(int) int { return v } }

func dkimPass(d string) []DKIMResult { return []DKIMResult{{Domain: d, Result: "pass"}} }

func TestEvaluate(t *testing.T) {
	zone := testZone(t)
	type want struct {
		result      Result
		disposition Policy
		published   Policy
		spf, dkim   bool
		recordAt    string
		sampled     bool
		err         error
	}
	cases := []struct {
		name string
		in   Input
		rand func(int) int
		want want
	}{
		// RFC 7489 section 3.1.1: relaxed DKIM alignment, same
		// organisational domain.
		{"3.1.1 DKIM relaxed: subdomain d= aligns",
			Input{From: []string{"Alice <alice@agency.govt.nz>"}, DKIM: dkimPass("mail.agency.govt.nz")}, nil,
			want{Pass, PolicyNone, PolicyReject, false, true, "agency.govt.nz", true, nil}},
		{"3.1.1 DKIM exact match",
			Input{From: []string{"alice@strict.govt.nz"}, DKIM: dkimPass("Strict.govt.nz.")}, nil,
			want{Pass, PolicyNone, PolicyReject, false, true, "strict.govt.nz", true, nil}},
		// RFC 7489 section 3.1.1: strict mode wants the same name.
		{"3.1.1 DKIM strict: subdomain d= does not align",
			Input{From: []string{"alice@strict.govt.nz"}, DKIM: dkimPass("mail.strict.govt.nz")}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "strict.govt.nz", true, nil}},
		// RFC 7489 section 3.1.1: another organisation's signature
		// (a bulk sender) does not align.
		{"3.1.1 DKIM pass for another domain",
			Input{From: []string{"alice@agency.govt.nz"}, DKIM: dkimPass("mailchimp.example")}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 4.2: only a DKIM pass counts.
		{"4.2 aligned DKIM that failed",
			Input{From: []string{"alice@agency.govt.nz"}, DKIM: []DKIMResult{{Domain: "agency.govt.nz", Result: "fail"}, {Domain: "agency.govt.nz", Result: "temperror"}}}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 3.1.2: relaxed SPF alignment.
		{"3.1.2 SPF relaxed: bounce subdomain aligns",
			Input{From: []string{"alice@agency.govt.nz"}, SPFResult: "pass", SPFDomain: "bounces.agency.govt.nz"}, nil,
			want{Pass, PolicyNone, PolicyReject, true, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 3.1.2: strict SPF alignment.
		{"3.1.2 SPF strict: subdomain does not align",
			Input{From: []string{"alice@strict.govt.nz"}, SPFResult: "pass", SPFDomain: "bounces.strict.govt.nz"}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "strict.govt.nz", true, nil}},
		{"3.1.2 SPF strict: same domain aligns (given as the MAIL FROM address)",
			Input{From: []string{"alice@strict.govt.nz"}, SPFResult: "pass", SPFDomain: "bounce+x@strict.govt.nz"}, nil,
			want{Pass, PolicyNone, PolicyReject, true, false, "strict.govt.nz", true, nil}},
		// RFC 7489 section 4.2: SPF softfail is not an authenticated
		// identifier, even when aligned.
		{"4.2 SPF softfail does not count",
			Input{From: []string{"alice@agency.govt.nz"}, SPFResult: "softfail", SPFDomain: "agency.govt.nz"}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 4.1: with a null MAIL FROM the HELO identity
		// is the SPF-authenticated domain.
		{"4.1 SPF on the HELO domain",
			Input{From: []string{"postmaster@agency.govt.nz"}, SPFResult: "pass", SPFDomain: "mx1.agency.govt.nz"}, nil,
			want{Pass, PolicyNone, PolicyReject, true, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 3 and 6.3 sp=: no record at the
		// subdomain, the organisational domain's sp= applies.
		{"6.6.3 org-domain fallback with sp=",
			Input{From: []string{"bob@payme.agency.govt.nz"}}, nil,
			want{Fail, PolicyQuarantine, PolicyQuarantine, false, false, "agency.govt.nz", true, nil}},
		// RFC 7489 section 6.3: without sp=, p= applies to subdomains.
		{"6.3 no sp=: p= for subdomains",
			Input{From: []string{"bob@x.y.nosp.govt.nz"}}, nil,
			want{Fail, PolicyQuarantine, PolicyQuarantine, false, false, "nosp.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 2: a subdomain's own record wins
		// and its p= applies (not the parent's sp=).
		{"6.6.3 subdomain's own record",
			Input{From: []string{"bob@own.agency.govt.nz"}}, nil,
			want{Fail, PolicyNone, PolicyNone, false, false, "own.agency.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 5: several records, no DMARC.
		{"6.6.3 several records",
			Input{From: []string{"bob@twice.govt.nz"}}, nil,
			want{None, PolicyNone, "", false, false, "twice.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 1: other TXT records are dropped.
		{"6.6.3 DMARC record among other TXT records",
			Input{From: []string{"bob@mixed.govt.nz"}}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "mixed.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 6.2: invalid p=, no DMARC.
		{"6.6.3 invalid record",
			Input{From: []string{"bob@invalid.govt.nz"}}, nil,
			want{None, PolicyNone, "", false, false, "invalid.govt.nz", true, nil}},
		// RFC 7489 section 6.6.3 step 6.1: invalid p= but a valid rua=:
		// as if p=none.
		{"6.6.3 invalid p= with rua=",
			Input{From: []string{"bob@invalidrua.govt.nz"}}, nil,
			want{Fail, PolicyNone, PolicyNone, false, false, "invalidrua.govt.nz", true, nil}},
		// RFC 7489 section 6.3 v=: must be exactly "DMARC1" and first.
		{"6.3 v=dmarc1 is not DMARC",
			Input{From: []string{"bob@lower.govt.nz"}}, nil,
			want{None, PolicyNone, "", false, false, "", true, nil}},
		{"6.3 v= not first",
			Input{From: []string{"bob@vlast.govt.nz"}}, nil,
			want{None, PolicyNone, "", false, false, "", true, nil}},
		// RFC 7489 section 6.6.3: no record at either name.
		{"6.6.3 no record",
			Input{From: []string{"bob@nowhere.example"}, SPFResult: "pass", SPFDomain: "nowhere.example"}, nil,
			want{None, PolicyNone, "", false, false, "", true, nil}},
		// RFC 7208 section 3.3 and RFC 7489 section 6.6.3: the strings of
		// one TXT record are joined.
		{"6.6.3 record in several strings",
			Input{From: []string{"bob@split.govt.nz"}}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "split.govt.nz", true, nil}},
		// RFC 7489 section 6.6.4 and 6.3 pct=: sampled in.
		{"6.6.4 pct=50 sampled",
			Input{From: []string{"bob@half.govt.nz"}}, fixedRand(49),
			want{Fail, PolicyReject, PolicyReject, false, false, "half.govt.nz", true, nil}},
		// ... left out: reject becomes quarantine.
		{"6.6.4 pct=50 not sampled: reject -> quarantine",
			Input{From: []string{"bob@half.govt.nz"}}, fixedRand(50),
			want{Fail, PolicyQuarantine, PolicyReject, false, false, "half.govt.nz", false, nil}},
		// ... and quarantine becomes none.
		{"6.6.4 pct=50 not sampled: quarantine -> none",
			Input{From: []string{"bob@halfq.govt.nz"}}, fixedRand(99),
			want{Fail, PolicyNone, PolicyQuarantine, false, false, "halfq.govt.nz", false, nil}},
		{"6.6.4 pct=0: never sampled",
			Input{From: []string{"bob@zero.govt.nz"}}, noRand(t),
			want{Fail, PolicyQuarantine, PolicyReject, false, false, "zero.govt.nz", false, nil}},
		{"6.6.4 pct=100: no sampling",
			Input{From: []string{"bob@agency.govt.nz"}}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		{"6.6.4 pass is not sampled",
			Input{From: []string{"bob@half.govt.nz"}, DKIM: dkimPass("half.govt.nz")}, noRand(t),
			want{Pass, PolicyNone, PolicyReject, false, true, "half.govt.nz", true, nil}},
		// RFC 7489 section 6.6.1: no From:, several From: fields, an
		// unusable From: are for the receiver's policy: permerror with
		// a distinct error.
		{"6.6.1 no From:",
			Input{}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrNoFrom}},
		{"6.6.1 empty From:",
			Input{From: []string{"  "}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrNoFrom}},
		{"6.6.1 group without members",
			Input{From: []string{"undisclosed-recipients:;"}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrNoFrom}},
		{"6.6.1 two From: fields",
			Input{From: []string{"a@agency.govt.nz", "b@agency.govt.nz"}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrMultipleFrom}},
		{"6.6.1 malformed From:",
			Input{From: []string{"<<<@>>>"}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrMalformedFrom}},
		{"6.6.1 address literal",
			Input{From: []string{"a@[192.0.2.1]"}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrMalformedFrom}},
		// RFC 7489 section 6.6.1: one From: field, several authors in
		// different domains: each is evaluated, the strictest failing
		// policy applies.
		{"6.6.1 several authors: strictest failure wins",
			Input{From: []string{"a@own.agency.govt.nz, b@strict.govt.nz, c@nowhere.example"}, DKIM: dkimPass("own.agency.govt.nz")}, nil,
			want{Fail, PolicyReject, PolicyReject, false, false, "strict.govt.nz", true, nil}},
		{"6.6.1 several authors in one domain",
			Input{From: []string{"a@agency.govt.nz, B <b@Agency.govt.nz>"}, DKIM: dkimPass("agency.govt.nz")}, nil,
			want{Pass, PolicyNone, PolicyReject, false, true, "agency.govt.nz", true, nil}},
		// Issue 12 point 10: From: is unfolded before it is parsed; a
		// fold with a comment on the next line is one author, not a
		// permerror. Point 1: the forms real mail uses are read as
		// clients read them (message.Authors).
		{"issue 12 From: folded with a comment on the next line",
			Input{From: []string{"bob@agency.govt.nz\r\n (Bob Smith)"}}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		{"issue 12 unquoted comma in the display name",
			Input{From: []string{"Smith, Bob <bob@agency.govt.nz>"}}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		{"issue 12 ideographic full stops and a trailing dot",
			Input{From: []string{"bob@Agency\u3002govt\uFF0Enz."}}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		// Issue 12 point 1: a From: that cannot be parsed is evaluated
		// over every domain it names, the strictest policy applies, and
		// it never passes.
		{"issue 12 unclosed quote: the named domain's p=reject applies",
			Input{From: []string{`"Bob <bob@agency.govt.nz>`}}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		{"issue 12 unparseable From: naming a reject domain in its display name",
			Input{From: []string{`"Bob at agency.govt.nz <bob@nowhere.example>`}, DKIM: dkimPass("nowhere.example")}, noRand(t),
			want{Fail, PolicyReject, PolicyReject, false, false, "agency.govt.nz", true, nil}},
		{"issue 12 unparseable From: aligned is no pass",
			Input{From: []string{`"Bob <bob@agency.govt.nz>`}, DKIM: dkimPass("agency.govt.nz")}, noRand(t),
			want{None, PolicyNone, PolicyReject, false, true, "agency.govt.nz", true, nil}},
		{"issue 12 unparseable From: naming no domain is a permerror",
			Input{From: []string{`"Bob (the boss`}}, nil,
			want{PermError, PolicyNone, "", false, false, "", true, ErrMalformedFrom}},
		// A display name that looks like an address does not count.
		{"6.6.1 display name with @",
			Input{From: []string{`"ceo@agency.govt.nz" <mallory@nowhere.example>`}, DKIM: dkimPass("agency.govt.nz")}, nil,
			want{None, PolicyNone, "", false, false, "", true, nil}},
		// RFC 7489 section 6.6.1 and RFC 5890: an internationalised From
		// domain is looked up in A-labels.
		{"6.6.1 IDN From domain",
			Input{From: []string{"=?utf-8?q?J=C3=B6rg?= <jörg@bücher.example>"}, DKIM: dkimPass("xn--bcher-kva.example")}, nil,
			want{Pass, PolicyNone, PolicyReject, false, true, "xn--bcher-kva.example", true, nil}},
		// RFC 7489 section 3.2: the organisational domain comes from the
		// public suffix list (co.uk is a suffix).
		{"3.2 two-label public suffix",
			Input{From: []string{"a@mail.example.co.uk"}, DKIM: dkimPass("other.example.co.uk")}, nil,
			want{Pass, PolicyNone, PolicyQuarantine, false, true, "example.co.uk", true, nil}},
		{"3.2 different registrations under a suffix do not align",
			Input{From: []string{"a@example.co.uk"}, DKIM: dkimPass("evil.co.uk")}, nil,
			want{Fail, PolicyQuarantine, PolicyQuarantine, false, false, "example.co.uk", true, nil}},
		// Temporary DNS failures: temperror, so the caller can answer 4xx.
		{"temperror at the From domain",
			Input{From: []string{"a@servfail.govt.nz"}, DKIM: dkimPass("servfail.govt.nz")}, nil,
			want{TempError, PolicyNone, "", false, false, "", true, ErrTemporary}},
		{"temperror (timeout)",
			Input{From: []string{"a@timeout.govt.nz"}}, nil,
			want{TempError, PolicyNone, "", false, false, "", true, ErrTemporary}},
		{"temperror at the organisational domain",
			Input{From: []string{"a@sub.orgfail.govt.nz"}}, nil,
			want{TempError, PolicyNone, "", false, false, "", true, ErrTemporary}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{LookupTXT: zone.LookupTXT, RandIntN: c.rand}
			if opts.RandIntN == nil {
				opts.RandIntN = noRand(t)
			}
			ev, err := Evaluate(context.Background(), c.in, opts)
			w := c.want
			if (w.err == nil) != (err == nil) || (w.err != nil && !errors.Is(err, w.err)) {
				t.Fatalf("err = %v, want %v", err, w.err)
			}
			if ev.Result != w.result || ev.Disposition != w.disposition || ev.PublishedPolicy != w.published ||
				ev.SPFAligned != w.spf || ev.DKIMAligned != w.dkim || ev.RecordDomain != w.recordAt || ev.Sampled != w.sampled {
				t.Fatalf("got %s/%s published %q spf=%v dkim=%v record@%q sampled=%v (%s)\nwant %+v",
					ev.Result, ev.Disposition, ev.PublishedPolicy, ev.SPFAligned, ev.DKIMAligned, ev.RecordDomain, ev.Sampled, ev.Reason, w)
			}
			if ev.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func noRand(t *testing.T) func(int) int {
	return func(int) int {
		t.Helper()
		t.Error("pct sampling consulted the random source")
		return 0
	}
}

// The evaluation reports what aligned and how (for logs and
// Authentication-Results).
func TestEvaluateDetails(t *testing.T) {
	zone := testZone(t)
	ev, err := Evaluate(context.Background(), Input{
		From:      []string{"alice@payme.agency.govt.nz"},
		SPFResult: "pass", SPFDomain: "agency.govt.nz",
		DKIM: []DKIMResult{{Domain: "other.example", Result: "pass"}, {Domain: "agency.govt.nz", Result: "pass"}},
	}, Options{LookupTXT: zone.LookupTXT})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Result != Pass || ev.FromDomain != "payme.agency.govt.nz" || ev.OrgDomain != "agency.govt.nz" ||
		ev.RecordDomain != "agency.govt.nz" || !ev.SubdomainPolicy || ev.PublishedPolicy != PolicyQuarantine ||
		!ev.SPFAligned || ev.SPFAlignment != Relaxed || !ev.DKIMAligned || ev.DKIMAlignment != Relaxed ||
		ev.DKIMDomain != "agency.govt.nz" || ev.Record == nil || ev.Percent != 100 {
		t.Fatalf("%+v", ev)
	}
	if ev.Reason != "aligned spf (relaxed), dkim d=agency.govt.nz (relaxed)" {
		t.Errorf("reason %q", ev.Reason)
	}
	ev, _ = Evaluate(context.Background(), Input{From: []string{"a@agency.govt.nz, b@strict.govt.nz"}}, Options{LookupTXT: zone.LookupTXT})
	if !slices.Equal(ev.FromDomains, []string{"agency.govt.nz", "strict.govt.nz"}) {
		t.Errorf("FromDomains %v", ev.FromDomains)
	}
}

// Temporary errors come out as temperror through a real DNS server and
// the project's resolver too.
func TestEvaluateThroughDNSServer(t *testing.T) {
	addr := dnstest.MustStart(t, testZone(t))
	res, err := dnsresolver.New(dnsresolver.Config{Servers: []string{addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LookupTXT: res.LookupTXT}
	for _, c := range []struct {
		from string
		want Result
	}{
		{"a@payme.agency.govt.nz", Fail},
		{"a@split.govt.nz", Fail},
		{"a@nowhere.example", None},
		{"a@servfail.govt.nz", TempError},
		{"a@timeout.govt.nz", TempError},
	} {
		ev, err := Evaluate(context.Background(), Input{From: []string{c.from}}, opts)
		if ev.Result != c.want || (c.want == TempError) != errors.Is(err, ErrTemporary) {
			t.Errorf("%s: %s %v (%s)", c.from, ev.Result, err, ev.Reason)
		}
	}
}

func TestOrganizationalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"agency.govt.nz":         "agency.govt.nz",
		"mail.agency.govt.nz":    "agency.govt.nz",
		"govt.nz":                "govt.nz", // a public suffix itself
		"a.b.example.co.uk":      "example.co.uk",
		"Example.COM.":           "example.com",
		"com":                    "com",
		"host.example.invalid":   "example.invalid", // no listed suffix: the "*" rule
		"xn--bcher-kva.example":  "xn--bcher-kva.example",
		"mx.minties.govt.nz":     "minties.govt.nz",
		"payme.minties.govt.nz.": "minties.govt.nz",
	} {
		if got := OrganizationalDomain(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
