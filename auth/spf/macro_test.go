package spf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// nopResolver answers nothing: every name is NXDOMAIN.
type nopResolver struct{}

func (nopResolver) LookupTXT(context.Context, string) ([]string, error) { return nil, ErrNotFound }
func (nopResolver) LookupIP(context.Context, string, string) ([]net.IP, error) {
	return nil, ErrNotFound
}
func (nopResolver) LookupMX(context.Context, string) ([]*net.MX, error)  { return nil, ErrNotFound }
func (nopResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, ErrNotFound }

func testChecker(ip, sender string) *checker {
	local, domain := splitSender(sender)
	return &checker{
		ev:     &Evaluator{Resolver: nopResolver{}, Receiver: "mx.example.org", Now: func() time.Time { return time.Unix(1200000000, 0) }},
		ctx:    context.Background(),
		ip:     netip.MustParseAddr(ip).Unmap(),
		sender: sender,
		local:  local,
		domain: domain,
		helo:   "mail.example.com",
	}
}

// TestMacroExamples are the examples of RFC 7208 section 7.4.
func TestMacroExamples(t *testing.T) {
	c := testChecker("192.0.2.3", "strong-bad@email.example.com")
	c6 := testChecker("2001:db8::cb01", "strong-bad@email.example.com")
	tests := []struct {
		c    *checker
		in   string
		want string
	}{
		{c, "%{s}", "strong-bad@email.example.com"},
		{c, "%{o}", "email.example.com"},
		{c, "%{d}", "email.example.com"},
		{c, "%{d4}", "email.example.com"},
		{c, "%{d3}", "email.example.com"},
		{c, "%{d2}", "example.com"},
		{c, "%{d1}", "com"},
		{c, "%{dr}", "com.example.email"},
		{c, "%{d2r}", "example.email"},
		{c, "%{l}", "strong-bad"},
		{c, "%{l-}", "strong.bad"},
		{c, "%{lr}", "strong-bad"},
		{c, "%{lr-}", "bad.strong"},
		{c, "%{l1r-}", "strong"},
		{c, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{c, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{c, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{c, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{c, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
		// The RFC prints the nibbles in lower case; ours are upper case
		// (see dotted), compared case-insensitively below.
		{c6, "%{ir}.%{v}._spf.%{d2}", "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
		// Section 7.1 escapes, section 7.3 URL escaping and the
		// explanation-only letters.
		{c, "%%%_%-", "% %20"},
		{c, "%{L}", "strong-bad"},
		{c, "%{S}", "strong-bad%40email.example.com"},
		{c, "%{h}", "mail.example.com"},
		{c, "%{c}", "192.0.2.3"},
		{c6, "%{c}", "2001:db8::cb01"},
		{c, "%{r}", "mx.example.org"},
		{c, "%{t}", "1200000000"},
		{c, "%{p}", "unknown"},
		{c, "%{d2=}", "email.example.com"}, // "=" replaces the default "."
		{c, "%{d2.=}", "example.com"},
		{c, "%{o200}", "email.example.com"},
	}
	for _, tt := range tests {
		ms, err := parseMacroString(tt.in, macroExplain)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		got := expand(ms, tt.c, tt.c.domain)
		if !strings.EqualFold(got, tt.want) || (tt.c == c && got != tt.want) {
			t.Errorf("%s = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMacroSyntax(t *testing.T) {
	bad := []string{"%", "%a", "%{", "%{}", "%{x}", "%{d0}", "%{d2rr}", "%{d*}", "%{ d}", "a b", "\x7f", "é"}
	for _, s := range bad {
		if _, err := parseMacroString(s, macroAllLetters); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: err = %v, want ErrSyntax", s, err)
		}
	}
	// Section 7.3: c, r and t only in explanations.
	for _, s := range []string{"%{c}.example.com", "%{r}.example.com", "%{t}.example.com"} {
		if _, err := parseDomainSpec(s); err == nil {
			t.Errorf("domain-spec %q accepted", s)
		}
		if _, err := parseMacroString(s, macroExplain); err != nil {
			t.Errorf("explain-string %q: %v", s, err)
		}
	}
	if _, err := parseMacroString("a b %_", macroExplain); err != nil {
		t.Errorf("spaces in explain-string: %v", err)
	}
}

func TestDomainSpec(t *testing.T) {
	good := []string{"example.com", "example.com.", "%{d}", "foo.%{d}", "%{d}.com", "foo:bar/baz.example.com", "x.xn--zckzah", "a.1-2", "_spf.%{d2}", "a.%%"}
	bad := []string{"", "museum", "museum.", "example.-com", "abc.123", "111.222.33.44", "example.com:8080", "foo.com/24", "example.com..", "foo.%{d}bar", "a.b-"}
	for _, s := range good {
		if _, err := parseDomainSpec(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := parseDomainSpec(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestDomainName(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 30) + "example.com" // 311 characters
	got, ok := domainName(long)
	if !ok || len(got) > 253 || !strings.HasSuffix(got, ".example.com") || strings.HasPrefix(got, ".") {
		t.Errorf("truncation: %q (%d), %v", got, len(got), ok)
	}
	for _, s := range []string{"a..b", "", ".", strings.Repeat("a", 64) + ".com"} {
		if _, ok := domainName(s); ok {
			t.Errorf("%q is not a valid query name", s)
		}
	}
	if got, ok := domainName("example.com."); !ok || got != "example.com" {
		t.Errorf("trailing dot: %q", got)
	}
}

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord("v=spf1 +a:%{d}/24//64 -mx ~ptr ?include:_spf.example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.x.example.com redirect=r.example.com exp=e.example.com foo=bar -all")
	if err != nil {
		t.Fatal(err)
	}
	var mechs []string
	for _, d := range r.Directives {
		mechs = append(mechs, string(d.Qualifier)+d.Mechanism)
	}
	if got := strings.Join(mechs, " "); got != "+a -mx ~ptr ?include +ip4 +ip6 +exists -all" {
		t.Errorf("directives %q", got)
	}
	if r.Redirect != "r.example.com" || r.Exp != "e.example.com" || r.Type != SPF1 || r.AllQualifier() != QualifierFail {
		t.Errorf("record %+v", r)
	}
	if d := r.Directives[0]; d.cidr4 != 24 || d.cidr6 != 64 {
		t.Errorf("dual cidr %d %d", d.cidr4, d.cidr6)
	}
	for _, s := range []string{"v=spf2 -all", "spf1 -all", "v=spf1-all", ""} {
		if _, err := ParseRecord(s); !errors.Is(err, ErrNotRecord) {
			t.Errorf("%q: %v", s, err)
		}
	}
	r, err = ParseRecord("spf2.0/mfrom,PRA -all")
	if err != nil || r.Type != SPF2 || len(r.Scopes) != 2 || r.Scopes[1] != ScopePRA {
		t.Errorf("spf2.0: %+v %v", r, err)
	}
}
