package dmarc

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	def := func(mod func(r *Record)) *Record {
		r := &Record{Policy: PolicyNone, Percent: 100, DKIMAlignment: Relaxed, SPFAlignment: Relaxed,
			FailureOptions: []string{"0"}, ReportFormats: []string{"afrf"}, ReportInterval: 86400}
		if mod != nil {
			mod(r)
		}
		return r
	}
	cases := []struct {
		name string
		txt  string
		want *Record
		err  error
	}{
		// RFC 7489 section 6.3: defaults for everything but v= and p=.
		{"6.3 minimal", "v=DMARC1; p=none", def(nil), nil},
		{"6.4 trailing separator and spaces", " v = DMARC1 ;p = reject ; ", def(func(r *Record) { r.Policy = PolicyReject }), nil},
		{"6.3 every tag", "v=DMARC1; p=quarantine; sp=reject; pct=25; adkim=s; aspf=s; rua=mailto:a@x.example!10m,mailto:b@y.example; ruf=mailto:f@x.example; fo=1:d:s; rf=afrf:iodef; ri=3600",
			&Record{Policy: PolicyQuarantine, SubdomainPolicy: PolicyReject, Percent: 25, DKIMAlignment: Strict, SPFAlignment: Strict,
				AggregateReportURIs: []string{"mailto:a@x.example!10m", "mailto:b@y.example"}, FailureReportURIs: []string{"mailto:f@x.example"},
				FailureOptions: []string{"1", "d", "s"}, ReportFormats: []string{"afrf", "iodef"}, ReportInterval: 3600}, nil},
		// RFC 7489 section 6.4: tag names and keyword values are ABNF
		// literals, so case-insensitive; "DMARC1" is %x-coded, exact.
		{"6.4 case of tags and values", "v=DMARC1; P=Reject; ADKIM=S", def(func(r *Record) { r.Policy = PolicyReject; r.DKIMAlignment = Strict }), nil},
		{"6.3 v must match precisely", "v=dmarc1; p=reject", nil, ErrNotDMARC},
		{"6.3 v must be first", "p=reject; v=DMARC1", nil, ErrNotDMARC},
		{"6.3 v=DMARC2", "v=DMARC2; p=reject", nil, ErrNotDMARC},
		{"not DMARC at all", "v=spf1 -all", nil, ErrNotDMARC},
		{"empty", "", nil, ErrNotDMARC},
		// RFC 7489 section 6.6.3 step 6: p= missing or invalid, sp=
		// invalid: the record is invalid.
		{"6.6.3 no p=", "v=DMARC1; rua=mailto:a@x.example", def(func(r *Record) {
			r.Policy = ""
			r.AggregateReportURIs = []string{"mailto:a@x.example"}
		}), ErrInvalidRecord},
		{"6.6.3 bad p=", "v=DMARC1; p=block", def(func(r *Record) { r.Policy = "" }), ErrInvalidRecord},
		{"6.6.3 bad sp=", "v=DMARC1; p=reject; sp=maybe", def(func(r *Record) { r.Policy = PolicyReject }), ErrInvalidRecord},
		// RFC 7489 section 6.3: other syntax errors fall back to defaults.
		{"6.3 bad pct", "v=DMARC1; p=reject; pct=150", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"pct=150"} }), nil},
		{"6.3 bad adkim", "v=DMARC1; p=reject; adkim=x", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"adkim=x"} }), nil},
		{"6.3 bad fo", "v=DMARC1; p=reject; fo=2", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"fo=2"} }), nil},
		{"6.3 bad ri", "v=DMARC1; p=reject; ri=-1", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"ri=-1"} }), nil},
		{"6.3 bad rua URI kept apart", "v=DMARC1; p=reject; rua=not a uri,mailto:ok@x.example!5", def(func(r *Record) {
			r.Policy = PolicyReject
			r.AggregateReportURIs = []string{"mailto:ok@x.example!5"}
			r.Ignored = []string{"rua=not a uri"}
		}), nil},
		{"6.3 unknown tags ignored", "v=DMARC1; p=reject; np=reject; psd=y", def(func(r *Record) { r.Policy = PolicyReject }), nil},
		{"first of repeated tags wins", "v=DMARC1; p=reject; p=none", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"p"} }), nil},
		{"tag without =", "v=DMARC1; p=reject; junk", def(func(r *Record) { r.Policy = PolicyReject; r.Ignored = []string{"junk"} }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRecord(c.txt)
			if (c.err == nil) != (err == nil) || (c.err != nil && !errors.Is(err, c.err)) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestRecordPolicyForAndString(t *testing.T) {
	r, err := ParseRecord("v=DMARC1; p=quarantine; rua=mailto:a@x.example")
	if err != nil {
		t.Fatal(err)
	}
	if r.PolicyFor(false) != PolicyQuarantine || r.PolicyFor(true) != PolicyQuarantine {
		t.Error("sp absent: p for subdomains")
	}
	r.SubdomainPolicy = PolicyReject
	if r.PolicyFor(true) != PolicyReject {
		t.Error("sp")
	}
	if s := r.String(); s != "v=DMARC1; p=quarantine; sp=reject; pct=100; adkim=r; aspf=r; rua=mailto:a@x.example; fo=0; rf=afrf; ri=86400" {
		t.Error(s)
	}
}

// FuzzParseRecord: no panic; a record either is not DMARC (nil), is
// invalid (a partial record), or is valid with every field in range; a
// valid record formats back to text that parses to the same record.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none", "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; aspf=r; rua=mailto:a@b.example!10m; ruf=mailto:c@d.example; fo=1:d; rf=afrf; ri=3600",
		"v=DMARC1;p=bogus;rua=mailto:x@y", "v=DMARC1", "v=spf1 -all", "v=DMARC1; p=reject; pct=101", "v=DMARC1; p=REJECT; ADKIM=S;;;",
		"v=DMARC1; p=none; rua=mailto:a@b,https://x.example/r!1k", "v=DMARC1; p=reject; ri=4294967296", "v=DMARC1; p=none; fo=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := ParseRecord(txt)
		switch {
		case errors.Is(err, ErrNotDMARC):
			if r != nil {
				t.Fatal("record with ErrNotDMARC")
			}
			return
		case errors.Is(err, ErrInvalidRecord):
			if r == nil {
				t.Fatal("no partial record with ErrInvalidRecord")
			}
			return
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
		if !slices.Contains([]Policy{PolicyNone, PolicyQuarantine, PolicyReject}, r.Policy) ||
			!slices.Contains([]Policy{"", PolicyNone, PolicyQuarantine, PolicyReject}, r.SubdomainPolicy) ||
			r.Percent < 0 || r.Percent > 100 ||
			(r.DKIMAlignment != Relaxed && r.DKIMAlignment != Strict) || (r.SPFAlignment != Relaxed && r.SPFAlignment != Strict) ||
			len(r.FailureOptions) == 0 || len(r.ReportFormats) == 0 {
			t.Fatalf("out of range: %+v", r)
		}
		for _, u := range append(slices.Clone(r.AggregateReportURIs), r.FailureReportURIs...) {
			if strings.ContainsAny(u, ",; \t") {
				t.Fatalf("URI %q", u)
			}
		}
		again, err := ParseRecord(r.String())
		if err != nil {
			t.Fatalf("%q -> %q: %v", txt, r.String(), err)
		}
		r.Ignored, again.Ignored = nil, nil
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip\n%+v\n%+v", r, again)
		}
	})
}
