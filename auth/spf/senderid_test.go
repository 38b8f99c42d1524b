package spf_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

func h(name, value string) spf.Header { return spf.Header{Name: name, Value: value} }

// TestPRA covers the algorithm of RFC 4407 section 2, one case per rule.
func TestPRA(t *testing.T) {
	received := h("Received", "from relay.example.net by mx.example.org; Tue, 1 Jan 2008 00:00:00 +1200")
	tests := []struct {
		name    string
		headers []spf.Header
		want    string // "" means no PRA (ErrNoPRA)
		field   string
	}{
		{
			name: "RFC 4407 section 2 step 1: first non-empty Resent-Sender",
			headers: []spf.Header{
				h("Resent-From", "rf@resent.example"),
				h("Resent-Sender", "rs@resent.example"),
				received,
				h("Sender", "s@sender.example"),
				h("From", "f@from.example"),
			},
			want: "rs@resent.example", field: "Resent-Sender",
		},
		{
			name: "RFC 4407 section 2 step 1: empty Resent-Sender is skipped",
			headers: []spf.Header{
				h("Resent-Sender", "   "),
				h("Resent-Sender", "second@resent.example"),
				h("From", "f@from.example"),
			},
			want: "second@resent.example", field: "Resent-Sender",
		},
		{
			name: "RFC 4407 section 2 step 1: Resent-Sender preceded by a Resent-From of a newer block (Received between) goes to step 2",
			headers: []spf.Header{
				h("Resent-From", "newer@second-hop.example"),
				received,
				h("Resent-Sender", "older@first-hop.example"),
				h("Resent-From", "older-from@first-hop.example"),
				h("From", "f@from.example"),
			},
			want: "newer@second-hop.example", field: "Resent-From",
		},
		{
			name: "RFC 4407 section 2 step 1: a Return-Path between also marks a different block",
			headers: []spf.Header{
				h("Resent-From", "newer@second-hop.example"),
				h("Return-Path", "<bounce@second-hop.example>"),
				h("Resent-Sender", "older@first-hop.example"),
				h("From", "f@from.example"),
			},
			want: "newer@second-hop.example", field: "Resent-From",
		},
		{
			name: "RFC 4407 section 2 step 1: Resent-From after the Resent-Sender does not matter",
			headers: []spf.Header{
				h("Resent-Sender", "rs@resent.example"),
				received,
				h("Resent-From", "rf@resent.example"),
			},
			want: "rs@resent.example", field: "Resent-Sender",
		},
		{
			name: "RFC 4407 section 2 step 2: first Resent-From, several Resent blocks use the first",
			headers: []spf.Header{
				h("Resent-From", "third@hop3.example"),
				h("Resent-Date", "Tue, 1 Jan 2008 00:00:02 +1200"),
				received,
				h("Resent-From", "second@hop2.example"),
				received,
				h("Sender", "s@sender.example"),
				h("From", "f@from.example"),
			},
			want: "third@hop3.example", field: "Resent-From",
		},
		{
			name: "RFC 4407 section 2 step 3: a single Sender",
			headers: []spf.Header{
				h("From", "f@from.example"),
				h("Sender", "Secretary <s@sender.example>"),
			},
			want: "s@sender.example", field: "Sender",
		},
		{
			name: "RFC 4407 section 2 step 3: several Sender fields make the message ill-formed",
			headers: []spf.Header{
				h("Sender", "a@one.example"),
				h("Sender", "b@two.example"),
				h("From", "f@from.example"),
			},
		},
		{
			name: "RFC 4407 section 2 step 4: a single From",
			headers: []spf.Header{
				h("Subject", "x"),
				h("from", "\"Jo Bloggs\" <jo@agency.govt.nz>"),
			},
			want: "jo@agency.govt.nz", field: "from",
		},
		{
			name: "RFC 4407 section 2 step 4: several From fields",
			headers: []spf.Header{
				h("From", "a@one.example"),
				h("From", "b@two.example"),
			},
		},
		{
			name:    "RFC 4407 section 2 step 4: no From at all",
			headers: []spf.Header{h("Subject", "x"), h("From", "  ")},
		},
		{
			name:    "RFC 4407 section 2 step 5: the selected field holds several mailboxes",
			headers: []spf.Header{h("From", "a@one.example, b@two.example")},
		},
		{
			name:    "RFC 4407 section 2 step 5: a group with no mailbox",
			headers: []spf.Header{h("From", "undisclosed-recipients:;")},
		},
		{
			name:    "RFC 4407 section 2 step 5: the mailbox has no domain",
			headers: []spf.Header{h("From", "postmaster")},
		},
		{
			name:    "RFC 4407 section 2 step 5: a hopelessly malformed mailbox",
			headers: []spf.Header{h("From", "<<@@>>")},
		},
		{
			name: "RFC 4407 section 2 step 5: a malformed Sender does not fall back to From",
			headers: []spf.Header{
				h("Sender", "a@one.example, b@two.example"),
				h("From", "f@from.example"),
			},
		},
		{
			name: "RFC 4407 section 2 step 5: a malformed Resent-Sender does not fall back",
			headers: []spf.Header{
				h("Resent-Sender", "not an address"),
				h("From", "f@from.example"),
			},
		},
		{
			name: "RFC 4407 section 2 step 5: folded field and an RFC 2047 display name in an unknown charset",
			headers: []spf.Header{
				h("From", "=?x-unknown?q?J=F6?=\r\n <jo@agency.govt.nz>"),
			},
			want: "jo@agency.govt.nz", field: "From",
		},
		{
			// Read by message.Mailboxes, as DMARC and the warnings read
			// the field (issue 13): an unquoted comma in the display name
			// is part of it, and the domain is normalised for DNS.
			name:    "RFC 4407 section 2 step 5: the gateway's one reading of a mailbox",
			headers: []spf.Header{h("From", "Smith, John <John.Smith@Agency.GOVT.nz.>")},
			want:    "John.Smith@agency.govt.nz", field: "From",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, field, err := spf.PRA(tt.headers)
			if tt.want == "" {
				if !errors.Is(err, spf.ErrNoPRA) {
					t.Fatalf("PRA = %q, %q, %v; want ErrNoPRA", addr, field, err)
				}
				return
			}
			if err != nil || addr != tt.want || field != tt.field {
				t.Fatalf("PRA = %q, %q, %v; want %q from %s", addr, field, err, tt.want, tt.field)
			}
		})
	}
}

// TestSenderIDRecordSelection covers record selection for Sender ID (RFC
// 4406 section 3.4: v=spf1 is read as spf2.0/mfrom,pra only when the
// domain has no spf2.0 record) and for SPF, which ignores spf2.0.
func TestSenderIDRecordSelection(t *testing.T) {
	z := dnstest.NewZone().
		TXT("v1only.example", "v=spf1 ip4:192.0.2.1 -all").
		TXT("pra.example", "v=spf1 -all").
		TXT("pra.example", "spf2.0/pra ip4:192.0.2.1 -all").
		TXT("both.example", "spf2.0/mfrom,pra ip4:192.0.2.1 ~all").
		TXT("split.example", "spf2.0/mfrom ip4:192.0.2.1 -all").
		TXT("split.example", "spf2.0/pra ip4:192.0.2.2 -all").
		TXT("mfromonly.example", "spf2.0/mfrom ip4:192.0.2.1 -all").
		TXT("mfromonly.example", "v=spf1 +all").
		TXT("twopra.example", "spf2.0/pra -all").
		TXT("twopra.example", "spf2.0/mfrom,pra +all").
		TXT("v2v1.example", "v=spf1 +all").
		TXT("v2v1.example", "spf2.0/mfrom -all").
		TXT("twov1.example", "v=spf1 -all").
		TXT("twov1.example", "v=spf1 +all").
		TXT("upper.example", "SPF2.0/PRA ip4:192.0.2.1 -all").
		TXT("unknownscope.example", "spf2.0/future ip4:192.0.2.1 -all").
		TXT("unknownscope.example", "v=spf1 +all").
		TXT("badversion.example", "spf2.0/pra, -all").
		TXT("noscope.example", "spf2.0/ -all").
		TXT("noscope.example", "v=spf1 +all").
		TXT("incl.example", "spf2.0/pra include:inc.example -all").
		TXT("inc.example", "v=spf1 -all").
		TXT("inc.example", "spf2.0/pra ip4:192.0.2.7").
		TXT("sidonly.example", "spf2.0/mfrom,pra -all")

	ev := &spf.Evaluator{Resolver: z}
	ctx := context.Background()
	ip := func(s string) net.IP { return net.ParseIP(s) }
	tests := []struct {
		name     string
		scope    spf.Scope // "" means an SPF MAIL FROM check
		addr     string
		ip       string
		want     spf.Result
		wantType spf.RecordType
		wantErr  error
	}{
		{"RFC 4406 section 3.4: v=spf1 is used for pra when no spf2.0 exists", spf.ScopePRA, "a@v1only.example", "192.0.2.1", spf.Pass, spf.SPF1, nil},
		{"RFC 4406 section 3.4: v=spf1 is used for mfrom when no spf2.0 exists", spf.ScopeMFrom, "a@v1only.example", "192.0.2.9", spf.Fail, spf.SPF1, nil},
		{"RFC 4406 section 3.4: spf2.0/pra preferred over v=spf1", spf.ScopePRA, "a@pra.example", "192.0.2.1", spf.Pass, spf.SPF2, nil},
		{"RFC 4406 section 3.4: v=spf1 ignored for mfrom once an spf2.0 record exists", spf.ScopeMFrom, "a@pra.example", "192.0.2.1", spf.None, "", nil},
		{"RFC 7208 section 4.5: SPF ignores spf2.0 records", "", "a@pra.example", "192.0.2.1", spf.Fail, spf.SPF1, nil},
		{"RFC 7208 section 4.5: SPF finds no v=spf1 record", "", "a@sidonly.example", "192.0.2.1", spf.None, "", nil},
		{"RFC 4406 section 3.2: spf2.0/mfrom,pra covers pra", spf.ScopePRA, "a@both.example", "192.0.2.9", spf.SoftFail, spf.SPF2, nil},
		{"RFC 4406 section 3.2: spf2.0/mfrom,pra covers mfrom", spf.ScopeMFrom, "a@both.example", "192.0.2.1", spf.Pass, spf.SPF2, nil},
		{"RFC 4406 section 3.2: one record per scope, pra", spf.ScopePRA, "a@split.example", "192.0.2.2", spf.Pass, spf.SPF2, nil},
		{"RFC 4406 section 3.2: one record per scope, mfrom", spf.ScopeMFrom, "a@split.example", "192.0.2.2", spf.Fail, spf.SPF2, nil},
		{"RFC 4406 section 3.4: spf2.0/mfrom only, no pra record and no v=spf1 fallback", spf.ScopePRA, "a@mfromonly.example", "192.0.2.1", spf.None, "", nil},
		{"RFC 4406 section 3.4: spf2.0 preferred over v=spf1 whatever the RR order", spf.ScopeMFrom, "a@v2v1.example", "192.0.2.1", spf.Fail, spf.SPF2, nil},
		{"multiple spf2.0 records for one scope: permerror", spf.ScopePRA, "a@twopra.example", "192.0.2.1", spf.PermError, "", spf.ErrMultipleRecords},
		{"multiple v=spf1 records under Sender ID: permerror", spf.ScopePRA, "a@twov1.example", "192.0.2.1", spf.PermError, "", spf.ErrMultipleRecords},
		{"RFC 4406 section 3.1: version and scope are case-insensitive", spf.ScopePRA, "a@upper.example", "192.0.2.1", spf.Pass, spf.SPF2, nil},
		{"RFC 4406 section 3.2: an unknown scope covers neither mfrom nor pra", spf.ScopePRA, "a@unknownscope.example", "192.0.2.1", spf.None, "", nil},
		{"RFC 4406 section 3.1: an empty scope in the selected record is a syntax error", spf.ScopePRA, "a@badversion.example", "192.0.2.1", spf.PermError, "", spf.ErrSyntax},
		{"RFC 4406 section 3.4: an spf2.0 record without scopes covers none but still hides v=spf1", spf.ScopePRA, "a@noscope.example", "192.0.2.1", spf.None, "", nil},
		{"include selects the included domain's record by the same scope", spf.ScopePRA, "a@incl.example", "192.0.2.7", spf.Pass, spf.SPF2, nil},
		{"no PRA: permerror", spf.ScopePRA, "", "192.0.2.7", spf.PermError, "", spf.ErrNoPRA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out spf.Outcome
			var err error
			if tt.scope == "" {
				out, err = ev.CheckMailFrom(ctx, ip(tt.ip), tt.addr, "mail.example")
			} else {
				out, err = ev.CheckSenderID(ctx, ip(tt.ip), tt.scope, tt.addr, "mail.example")
			}
			if out.Result != tt.want || out.RecordType != tt.wantType {
				t.Fatalf("got %s (%q, err %v), want %s (%q)", out.Result, out.RecordType, err, tt.want, tt.wantType)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSelectRecord(t *testing.T) {
	txts := []string{"google-site-verification=x", "v=spf1 -all", "spf2.0/pra +all"}
	if r, err := spf.SelectRecord(txts, false, spf.ScopeMFrom); err != nil || r != "v=spf1 -all" {
		t.Errorf("SPF: %q, %v", r, err)
	}
	if r, err := spf.SelectRecord(txts, true, spf.ScopePRA); err != nil || r != "spf2.0/pra +all" {
		t.Errorf("Sender ID pra: %q, %v", r, err)
	}
	if r, err := spf.SelectRecord(txts, true, spf.ScopeMFrom); err != nil || r != "" {
		t.Errorf("Sender ID mfrom: %q, %v", r, err)
	}
	if _, err := spf.SelectRecord([]string{"v=spf1 a", "V=SPF1 mx"}, false, spf.ScopeMFrom); !errors.Is(err, spf.ErrMultipleRecords) {
		t.Errorf("two records: %v", err)
	}
}

func TestCheckPRA(t *testing.T) {
	z := dnstest.NewZone().
		TXT("agency.govt.nz", "spf2.0/pra ip4:192.0.2.0/24 -all").
		TXT("securemail.agency.govt.nz", "v=spf1 ip4:198.51.100.1 -all")
	ev := &spf.Evaluator{Resolver: z}
	headers := []spf.Header{
		h("Received", "from x by y"),
		h("From", "Jo <jo@securemail.agency.govt.nz>"),
		h("Sender", "list@agency.govt.nz"),
	}
	out, err := ev.CheckPRA(context.Background(), net.ParseIP("192.0.2.5"), headers, "mail.agency.govt.nz")
	if err != nil || out.Result != spf.Pass || out.Identity != "list@agency.govt.nz" || out.Scope != spf.ScopePRA {
		t.Fatalf("got %+v, %v", out, err)
	}
	out, err = ev.CheckPRA(context.Background(), net.ParseIP("192.0.2.5"), headers[:1], "mail.agency.govt.nz")
	if out.Result != spf.PermError || !errors.Is(err, spf.ErrNoPRA) {
		t.Fatalf("no PRA: got %+v, %v", out, err)
	}
}

// TestAllQualifier checks the "-all" detection used by the SecureMail
// rule M-SEC (the record exists, ends in -all and passes).
func TestAllQualifier(t *testing.T) {
	z := dnstest.NewZone().
		TXT("hard.example", "v=spf1 ip4:192.0.2.1 -all").
		TXT("soft.example", "v=spf1 ip4:192.0.2.1 ~all").
		TXT("neutral.example", "v=spf1 ip4:192.0.2.1 ?all").
		TXT("plus.example", "v=spf1 all").
		TXT("none.example", "v=spf1 ip4:192.0.2.1").
		TXT("first.example", "v=spf1 -all +all").
		TXT("redir.example", "v=spf1 redirect=_spf.hard.example").
		TXT("redirmatch.example", "v=spf1 ip4:192.0.2.1 redirect=_spf.hard.example").
		TXT("redirsoft.example", "v=spf1 ip4:192.0.2.1 ~all redirect=_spf.hard.example").
		TXT("_spf.hard.example", "v=spf1 ip4:192.0.2.2 -all").
		TXT("pra.example", "spf2.0/pra ip4:192.0.2.1 -all")
	ev := &spf.Evaluator{Resolver: z}
	ip := net.ParseIP("192.0.2.1")
	tests := []struct {
		domain string
		want   spf.Qualifier
		result spf.Result
	}{
		{"hard.example", spf.QualifierFail, spf.Pass},
		{"soft.example", spf.QualifierSoftFail, spf.Pass},
		{"neutral.example", spf.QualifierNeutral, spf.Pass},
		{"plus.example", spf.QualifierPass, spf.Pass},
		{"none.example", "", spf.Pass},
		{"first.example", spf.QualifierFail, spf.Fail},         // RFC 7208 section 5.1: later terms never run
		{"redir.example", spf.QualifierFail, spf.Fail},         // through redirect= (followed)
		{"redirmatch.example", spf.QualifierFail, spf.Pass},    // through redirect= (looked up afterwards)
		{"redirsoft.example", spf.QualifierSoftFail, spf.Pass}, // the record's own all wins
		{"nxdomain.example", "", spf.None},
	}
	for _, tt := range tests {
		out, err := ev.CheckMailFrom(context.Background(), ip, "a@"+tt.domain, "mail.example")
		if out.AllQualifier != tt.want || out.Result != tt.result {
			t.Errorf("%s: AllQualifier %q result %s (err %v), want %q %s", tt.domain, out.AllQualifier, out.Result, err, tt.want, tt.result)
		}
	}
	out, _ := ev.CheckSenderID(context.Background(), ip, spf.ScopePRA, "a@pra.example", "mail.example")
	if out.AllQualifier != spf.QualifierFail || out.Result != spf.Pass || out.RecordType != spf.SPF2 {
		t.Errorf("pra.example: %+v", out)
	}
	r, err := spf.ParseRecord("v=spf1 include:spf.protection.outlook.com -all")
	if err != nil || r.AllQualifier() != spf.QualifierFail {
		t.Errorf("ParseRecord: %v, %v", r, err)
	}
}

// M-SEC (issue 12 point 6): a domain publishing "spf2.0/pra ... -all"
// alone has a Sender ID record; the mfrom check selects none but says an
// spf2.0 record of another scope exists, and the PRA check finds it.
func TestOtherScopeRecord(t *testing.T) {
	z := dnstest.NewZone().
		TXT("pra.example", "v=spf1 ip4:192.0.2.0/24 -all").TXT("pra.example", "spf2.0/pra ip4:192.0.2.0/24 -all").
		TXT("mfrom.example", "spf2.0/mfrom ip4:192.0.2.0/24 -all").
		TXT("spf1.example", "v=spf1 ip4:192.0.2.0/24 -all").
		TXT("none.example", "some other text")
	ev := &spf.Evaluator{Resolver: z}
	ip := net.ParseIP("192.0.2.5")
	for _, c := range []struct {
		domain     string
		scope      spf.Scope
		record     bool
		otherScope bool
	}{
		{"pra.example", spf.ScopeMFrom, false, true},
		{"pra.example", spf.ScopePRA, true, false},
		{"mfrom.example", spf.ScopePRA, false, true},
		{"mfrom.example", spf.ScopeMFrom, true, false},
		{"spf1.example", spf.ScopeMFrom, true, false}, // v=spf1 read as spf2.0/mfrom,pra
		{"none.example", spf.ScopeMFrom, false, false},
	} {
		out, _ := ev.CheckSenderID(context.Background(), ip, c.scope, "a@"+c.domain, "mx.example")
		if (out.Record != "") != c.record || out.OtherScopeRecord != c.otherScope {
			t.Errorf("%s %s: record %q, other scope %v", c.domain, c.scope, out.Record, out.OtherScopeRecord)
		}
	}
	// SPF proper never looks at spf2.0 records.
	if out, _ := ev.CheckMailFrom(context.Background(), ip, "a@mfrom.example", "mx.example"); out.OtherScopeRecord {
		t.Errorf("SPF check reports a Sender ID record: %+v", out)
	}
}
