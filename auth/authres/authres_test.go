package authres

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dmarc"
)

func TestFormat(t *testing.T) {
	sigs := []dkim.Signature{
		{Result: dkim.Pass, Domain: "agency.govt.nz", Identifier: "@agency.govt.nz", Selector: "rsa2026", Algorithm: "rsa-sha256", HeaderB: "Ab+/9xYz", Time: time.Unix(1, 0)},
		{Result: dkim.Fail, Domain: "evil.example", Selector: "s1", Algorithm: "ed25519-sha256", HeaderB: "QWERTYui", Err: errors.New("dkim: body hash did not verify")},
	}
	rec, _ := dmarc.ParseRecord("v=DMARC1; p=reject; sp=quarantine; pct=50")
	got := Format("mx.agency.govt.nz",
		SPF("pass", "alice@agency.govt.nz", "mail.agency.govt.nz", ""),
		SenderID("pass", "From", "alice@agency.govt.nz", ""),
		DKIMResults(sigs)[0], DKIMResults(sigs)[1],
		DMARC(dmarc.Evaluation{Result: dmarc.Fail, Disposition: dmarc.PolicyQuarantine, PublishedPolicy: dmarc.PolicyReject,
			FromDomain: "agency.govt.nz", Record: rec, Sampled: false, Reason: "no aligned SPF or DKIM pass"}),
	)
	want := "mx.agency.govt.nz; spf=pass smtp.mailfrom=alice@agency.govt.nz smtp.helo=mail.agency.govt.nz" +
		"; sender-id=pass header.from=alice@agency.govt.nz" +
		"; dkim=pass header.d=agency.govt.nz header.i=@agency.govt.nz header.s=rsa2026 header.a=rsa-sha256 header.b=\"Ab+/9xYz\"" +
		"; dkim=fail reason=\"body hash did not verify\" header.d=evil.example header.s=s1 header.a=ed25519-sha256 header.b=QWERTYui" +
		"; dmarc=fail (p=reject sp=quarantine pct=50 dis=QUARANTINE sampled=no) reason=\"no aligned SPF or DKIM pass\" header.from=agency.govt.nz policy.dmarc=reject"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Format("mx.agency.govt.nz"); got != "mx.agency.govt.nz; none" {
		t.Errorf("no results: %s", got)
	}
	if got := Format("mx", DKIMResults(nil)...); got != "mx; dkim=none" {
		t.Errorf("unsigned: %s", got)
	}
	if got := FormatFolded("mx", "\r\n\t", SPF("none", "", "helo.example", "")); got != "mx;\r\n\tspf=none smtp.helo=helo.example" {
		t.Errorf("folded: %q", got)
	}
	l := DKIM(dkim.Signature{Result: dkim.Policy, Domain: "d.example", BodyLengthLimited: true, BodyLength: 10, Err: dkim.ErrBodyLength})
	if s := Format("mx", l); !strings.Contains(s, "dkim=policy (body length limit l=10) reason=") {
		t.Errorf("l=: %s", s)
	}
}

// RFC 8601 section 2.2 and RFC 2045 section 5.1: values that are not
// tokens are quoted, quotes and backslashes escaped, control characters
// (CR, LF) never written, so attacker-controlled identifiers cannot add
// a resinfo or a header field.
func TestFormatEscaping(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"agency.govt.nz", "agency.govt.nz"},
		{"user@agency.govt.nz", "user@agency.govt.nz"},
		{"@agency.govt.nz", "@agency.govt.nz"},
		{"first.last+tag@agency.govt.nz", "first.last+tag@agency.govt.nz"},
		{"", `""`},
		{"a b", `"a b"`},
		{`evil.example; dmarc=pass`, `"evil.example; dmarc=pass"`},
		{`quote"here`, `"quote\"here"`},
		{`back\slash`, `"back\\slash"`},
		{"cr\rlf\nnul\x00tab\tdel\x7f", `"cr lf nul tab del "`},
		{"x\r\nAuthentication-Results: mx; dkim=pass", `"x  Authentication-Results: mx; dkim=pass"`},
		{"a/b=", `"a/b="`},
		{"bad\xffutf8", "\"bad\uFFFDutf8\""},
		{"bücher.example", "\"bücher.example\""},
		{"a..b@x", `"a..b@x"`},
		{"(comment)", `"(comment)"`},
	}
	for _, c := range cases {
		got := Format("mx", Result{Method: "dkim", Value: "pass", Props: []Prop{{"header", "d", c.in}}})
		if want := "mx; dkim=pass header.d=" + c.want; got != want {
			t.Errorf("%q:\ngot  %s\nwant %s", c.in, got, want)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("%q: CR or LF in output", c.in)
		}
		h, err := Parse(got)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if len(h.Results) != 1 || len(h.Results[0].Props) != 1 || h.Results[0].Props[0].Value != clean(c.in) {
			t.Errorf("%q: parsed back as %+v", c.in, h.Results)
		}
	}
	// The authserv-id, the reason and the comment are escaped too.
	got := Format("my id\r\n", Result{Method: "spf", Value: "fail", Comment: "a (nested) \\ comment\n", Reason: "say \"no\""})
	if want := `"my id  "; spf=fail (a \(nested\) \\ comment ) reason="say \"no\""`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Real Authentication-Results fields, as other software writes them.
func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Header
	}{
		{"mx.agency.govt.nz; none", Header{AuthservID: "mx.agency.govt.nz"}},
		{"example.com 1; none", Header{AuthservID: "example.com", Version: "1"}},
		// RFC 8601 appendix B.4 style, folded, with comments.
		{"example.com;\r\n\tspf=pass smtp.mailfrom=example.net\r\n\t(comment here);\r\n\tdkim=pass (good signature) header.d=example.net",
			Header{AuthservID: "example.com", Results: []Result{
				{Method: "spf", Value: "pass", Comment: "comment here", Props: []Prop{{"smtp", "mailfrom", "example.net"}}},
				{Method: "dkim", Value: "pass", Comment: "good signature", Props: []Prop{{"header", "d", "example.net"}}},
			}}},
		// OpenDKIM 2.11 (note the unquoted "/" in header.b).
		{"DEBUG-j;\n\tdkim=fail reason=\"signature-key hash mismatch\" header.d=example.org header.i=@example.org header.a=rsa-sha1 header.s=sel1 header.b=M9Qy/o5H;\n\tdkim-atps=neutral",
			Header{AuthservID: "DEBUG-j", Results: []Result{
				{Method: "dkim", Value: "fail", Reason: "signature-key hash mismatch", Props: []Prop{
					{"header", "d", "example.org"}, {"header", "i", "@example.org"}, {"header", "a", "rsa-sha1"}, {"header", "s", "sel1"}, {"header", "b", "M9Qy/o5H"}}},
				{Method: "dkim-atps", Value: "neutral"},
			}}},
		// Google style, with a quoted local-part and a method version.
		{"mx.google.com; dkim/1=pass header.i=@x.example; spf=pass (google.com: domain designates 192.0.2.1 as permitted sender) smtp.mailfrom=\"a b\"@x.example; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=x.example",
			Header{AuthservID: "mx.google.com", Results: []Result{
				{Method: "dkim", Value: "pass", Props: []Prop{{"header", "i", "@x.example"}}},
				{Method: "spf", Value: "pass", Comment: "google.com: domain designates 192.0.2.1 as permitted sender", Props: []Prop{{"smtp", "mailfrom", "a b@x.example"}}},
				{Method: "dmarc", Value: "pass", Comment: "p=REJECT sp=REJECT dis=NONE", Props: []Prop{{"header", "from", "x.example"}}},
			}}},
		{`"quoted id"; auth=pass smtp.auth=alice`, Header{AuthservID: "quoted id", Results: []Result{{Method: "auth", Value: "pass", Props: []Prop{{"smtp", "auth", "alice"}}}}}},
		{"(leading comment) mx;", Header{AuthservID: "mx"}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\ngot  %+v\nwant %+v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "  ", "mx; =pass", "mx; spf", "mx; spf=", "mx spf=pass", "mx; spf=pass smtp", "mx; spf=pass smtp.mailfrom", "mx; spf=pass reason=\"open"} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// RFC 8601 section 5: the milter removes fields that claim its
// authserv-id, whatever their syntax after it.
func TestClaimsAuthservID(t *testing.T) {
	for _, c := range []struct {
		value string
		want  bool
	}{
		{"mx.agency.govt.nz; spf=pass smtp.mailfrom=a@b", true},
		{"MX.Agency.govt.nz.; none", true},
		{" (forged) mx.agency.govt.nz;spf=pass", true},
		{"\r\n\tmx.agency.govt.nz", true},
		{`"mx.agency.govt.nz"; dkim=pass`, true},
		{"mx.agency.govt.nz 1; none", true},
		{"mx.agency.govt.nz; this is not valid at all ((", true},
		{"mx.agency.govt.nz.evil.example; spf=pass", false},
		{"evil.example; spf=pass header.x=mx.agency.govt.nz", false},
		{"other; none", false},
		{"", false},
		{"(unclosed comment mx.agency.govt.nz", false},
	} {
		if got := ClaimsAuthservID(c.value, "mx.agency.govt.nz"); got != c.want {
			t.Errorf("%q: %v", c.value, got)
		}
	}
}

// FuzzFormat: whatever the identifiers, the output has no CR or LF and
// parses back to the same (cleaned) values.
func FuzzFormat(f *testing.F) {
	f.Add("mx.agency.govt.nz", "dkim", "pass", "", "", "header", "d", "agency.govt.nz")
	f.Add("a b", "spf", "fail", "x(y)z\\", "why \"not\"", "smtp", "mailfrom", "\"q\"@x")
	f.Add("\r\n", "", "", "\n", "\r", "", "", "a; dmarc=pass\r\nX-Injected: 1")
	f.Add("123", "none", "none", ")", "(", "reason", "x", "@")
	f.Add("id", "dmarc", "fail", "\x00", "\xff", "policy", "dmarc", "")
	f.Fuzz(func(t *testing.T, id, method, value, comment, reason, ptype, prop, pval string) {
		r := Result{Method: method, Value: value, Comment: comment, Reason: reason,
			Props: []Prop{{ptype, prop, pval}, {"header", "b", pval + "x"}}}
		out := Format(id, r)
		if strings.ContainsAny(out, "\r\n") {
			t.Fatalf("CR or LF in %q", out)
		}
		h, err := Parse(out)
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		want := Header{AuthservID: clean(id), Results: []Result{{
			Method: keyword(method), Value: keyword(value), Comment: clean(comment), Reason: clean(reason),
			Props: []Prop{{keyword(ptype), keyword(prop), clean(pval)}, {"header", "b", clean(pval + "x")}},
		}}}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("%q\ngot  %+v\nwant %+v", out, h, want)
		}
		if !ClaimsAuthservID(out, clean(id)) && strings.TrimSuffix(strings.TrimSpace(clean(id)), ".") != "" {
			t.Fatalf("%q does not claim %q", out, id)
		}
		folded := FormatFolded(id, "\r\n\t", r)
		if h2, err := Parse(folded); err != nil || !reflect.DeepEqual(h2, want) {
			t.Fatalf("folded %q: %+v %v", folded, h2, err)
		}
	})
}

// FuzzParse: the reader never panics and AuthservID agrees with Parse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"mx; none", "mx; spf=pass smtp.mailfrom=a@b (c) reason=\"x\"", "\"a\\\"b\" 1; dkim/1=pass", "((())", "mx; x=y a.b=\"c\"@d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		id, idErr := AuthservID(s)
		if err == nil && (idErr != nil || id != h.AuthservID) {
			t.Fatalf("%q: Parse id %q, AuthservID %q %v", s, h.AuthservID, id, idErr)
		}
	})
}
