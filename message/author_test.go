package message

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Issue 12 point 1: the author parser over real-world From: forms, each
// malformed kind the issue lists, with the candidate domains a warning
// must still see.
func TestAuthors(t *testing.T) {
	cases := []struct {
		name       string
		values     []string
		status     Status
		address    string   // the author when ok
		display    string   // its decoded display name when ok
		candidates []string // every candidate domain, in order
		mentioned  []string // domains named in display names and comments
	}{
		{name: "obsolete white space around @ and dots", values: []string{"ceo @ agency . govt . nz"}, status: StatusOK,
			address: "ceo@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "white space after the @", values: []string{"Ceo <ceo@ agency.govt.nz>"}, status: StatusOK,
			address: "ceo@agency.govt.nz", display: "Ceo", candidates: []string{"agency.govt.nz"}},
		{name: "broken with a space before a dot", values: []string{"John Smith ceo@agency .govt.nz"}, status: StatusUnparseable,
			candidates: []string{"agency", "agency.govt.nz", "govt.nz"}, mentioned: []string{"agency", "agency.govt.nz", "govt.nz"}},
		{name: "our address as the local part", values: []string{"ceo@agency.govt.nz@evil.example"}, status: StatusOK,
			address: "ceo@agency.govt.nz@evil.example", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "our address as a quoted local part", values: []string{`"ceo@agency.govt.nz"@evil.example`}, status: StatusOK,
			address: "ceo@agency.govt.nz@evil.example", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "our domain in the local part, percent hack", values: []string{"ceo%agency.govt.nz@evil.example"}, status: StatusOK,
			address: "ceo%agency.govt.nz@evil.example", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "our domain in the local part, bang path", values: []string{"CEO <agency.govt.nz!ceo@evil.example>"}, status: StatusOK,
			address: "agency.govt.nz!ceo@evil.example", display: "CEO", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "a dotted local part names no domain", values: []string{"john.smith@example.com"}, status: StatusOK,
			address: "john.smith@example.com", candidates: []string{"example.com"}},
		{name: "plain", values: []string{"John Smith <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "John Smith", candidates: []string{"agency.govt.nz"}},
		{name: "bare addr-spec", values: []string{"john@agency.govt.nz"}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "unquoted comma in the display name", values: []string{"Smith, John <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Smith, John", candidates: []string{"agency.govt.nz"}},
		{name: "quoted comma", values: []string{`"Smith, John" <john@agency.govt.nz>`}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Smith, John", candidates: []string{"agency.govt.nz"}},
		{name: "unquoted specials in the display name", values: []string{"J. Smith [CEO] @ Agency <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "J. Smith [CEO] @ Agency", candidates: []string{"agency.govt.nz"}},
		{name: "unclosed quote", values: []string{`"John Smith <john@agency.govt.nz>`}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "unclosed comment", values: []string{"John (CEO <john@agency.govt.nz>"}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "unclosed comment after the address", values: []string{"john@agency.govt.nz (John"}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz"}},
		{name: "unclosed angle bracket", values: []string{`"John" <john@agency.govt.nz`}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz"}},
		{name: "raw UTF-8", values: []string{"Jöhn Smíth <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Jöhn Smíth", candidates: []string{"agency.govt.nz"}},
		{name: "raw Latin-1", values: []string{"J\xf6hn Sm\xedth <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Jöhn Smíth", candidates: []string{"agency.govt.nz"}},
		{name: "RFC 2047 ISO-8859-1", values: []string{"=?iso-8859-1?q?J=F6hn?= <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Jöhn", candidates: []string{"agency.govt.nz"}},
		{name: "RFC 2047 windows-1252 B", values: []string{"=?windows-1252?B?k0pvaG6U?= <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "\u201cJohn\u201d", candidates: []string{"agency.govt.nz"}},
		{name: "RFC 2047 adjacent words joined", values: []string{"=?utf-8?q?Jo?= =?utf-8?q?hn?= <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "John", candidates: []string{"agency.govt.nz"}},
		{name: "unknown charset still read", values: []string{"=?x-unknown?q?J=F6hn?= <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "Jöhn", candidates: []string{"agency.govt.nz"}},
		{name: "unknown charset hiding our address", values: []string{"=?x-unknown?q?ceo=40agency.govt.nz?= <evil@example.com>"}, status: StatusOK,
			address: "evil@example.com", display: "ceo@agency.govt.nz", candidates: []string{"example.com", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "long encoded word hides nothing", values: []string{"=?utf-8?q?" + strings.Repeat("_", 10000) + "ceo=40agency.govt.nz?= <evil@example.com>"}, status: StatusOK,
			address: "evil@example.com", display: "ceo@agency.govt.nz", candidates: []string{"example.com", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "zero-width characters in a display-name domain", values: []string{"\"ceo@agen\u200Bcy.govt\u00AD.nz\" <evil@example.com>"}, status: StatusOK,
			address: "evil@example.com", display: "ceo@agen\u200Bcy.govt\u00AD.nz", candidates: []string{"example.com", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "trailing dot", values: []string{"john@agency.govt.nz."}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "upper case", values: []string{"JOHN@AGENCY.GOVT.NZ"}, status: StatusOK,
			address: "JOHN@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "full-width letters", values: []string{"John <john@ａｇｅｎｃｙ.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "John", candidates: []string{"agency.govt.nz"}},
		{name: "ideographic full stops", values: []string{"john@agency\u3002govt\uFF0Enz"}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "halfwidth ideographic full stop", values: []string{"<john@agency\uFF61govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "IDN to A-labels", values: []string{"josé@Bücher.example"}, status: StatusOK,
			address: "josé@xn--bcher-kva.example", candidates: []string{"xn--bcher-kva.example"}},
		{name: "two addresses", values: []string{"a@agency.govt.nz, Bob <b@example.com>"}, status: StatusMultiple,
			candidates: []string{"agency.govt.nz", "example.com"}},
		{name: "two From: fields", values: []string{"a@example.com", "b@agency.govt.nz"}, status: StatusRepeated,
			candidates: []string{"example.com", "agency.govt.nz"}},
		{name: "no From:", values: nil, status: StatusAbsent},
		{name: "blank From:", values: []string{" \n "}, status: StatusAbsent},
		{name: "folded with a comment on the next line (issue 12 point 10)", values: []string{"john@agency.govt.nz\r\n (John Smith)"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "John Smith", candidates: []string{"agency.govt.nz"}},
		{name: "folded display name", values: []string{"\"John\n Smith\"\n <john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", display: "John Smith", candidates: []string{"agency.govt.nz"}},
		{name: "display name spells our address", values: []string{`"ceo@agency.govt.nz" <evil@example.com>`}, status: StatusOK,
			address: "evil@example.com", display: "ceo@agency.govt.nz", candidates: []string{"example.com", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "comment spells our address", values: []string{"CEO (ceo@agency.govt.nz) <x@evil.example>"}, status: StatusOK,
			address: "x@evil.example", display: "CEO", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "display name spells a bare domain", values: []string{"Payroll AGENCY.govt.nz <pay@evil.example>"}, status: StatusOK,
			address: "pay@evil.example", display: "Payroll AGENCY.govt.nz", candidates: []string{"evil.example", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "full-width at in the display name", values: []string{`"ceo＠agency.govt.nz" <evil@example.com>`}, status: StatusOK,
			address: "evil@example.com", display: "ceo＠agency.govt.nz", candidates: []string{"example.com", "agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "display name without angle brackets", values: []string{"John Smith john@agency.govt.nz"}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz"}, mentioned: []string{"agency.govt.nz"}},
		{name: "two angle addresses", values: []string{"<john@agency.govt.nz> <x@evil.example>"}, status: StatusUnparseable,
			candidates: []string{"agency.govt.nz", "evil.example"}},
		{name: "text without an address", values: []string{"Smith, John"}, status: StatusUnparseable},
		{name: "empty group", values: []string{"undisclosed-recipients:;"}, status: StatusAbsent},
		{name: "group of one", values: []string{"Team: john@agency.govt.nz;"}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
		{name: "source route", values: []string{"<@relay.example:john@agency.govt.nz>"}, status: StatusOK,
			address: "john@agency.govt.nz", candidates: []string{"agency.govt.nz", "relay.example"}},
		{name: "address literal", values: []string{"john@[192.0.2.1]"}, status: StatusUnparseable},
		{name: "bad domain", values: []string{"John <john@agency..govt.nz>"}, status: StatusUnparseable},
		{name: "no local part", values: []string{"<@agency.govt.nz>"}, status: StatusUnparseable, candidates: []string{"agency.govt.nz"}},
		{name: "quoted local part", values: []string{`"john smith"@agency.govt.nz`}, status: StatusOK,
			address: "john smith@agency.govt.nz", candidates: []string{"agency.govt.nz"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Authors(c.values)
			if r.Status != c.status {
				t.Errorf("status %s (%s), want %s", r.Status, r.Problem, c.status)
			}
			if (r.Status == StatusOK) != (r.Problem == "") {
				t.Errorf("status %s with problem %q", r.Status, r.Problem)
			}
			m, ok := r.Author()
			if ok != (c.status == StatusOK) || ok && (m.Address() != c.address || m.Name != c.display) {
				t.Errorf("author %q name %q (ok %v), want %q name %q", m.Address(), m.Name, ok, c.address, c.display)
			}
			if r.Domain() != m.Domain {
				t.Errorf("Domain() %q, author %q", r.Domain(), m.Domain)
			}
			if !slices.Equal(r.Candidates, c.candidates) {
				t.Errorf("candidates %q, want %q", r.Candidates, c.candidates)
			}
			if !slices.Equal(r.Mentioned, c.mentioned) {
				t.Errorf("mentioned %q, want %q (names %q)", r.Mentioned, c.mentioned, r.Names)
			}
		})
	}
}

func TestMailboxes(t *testing.T) {
	r := Mailboxes("Alice <alice@agency.govt.nz>, bob@agency.govt.nz")
	if r.Status != StatusMultiple || len(r.Authors) != 2 || r.Authors[1].Address() != "bob@agency.govt.nz" {
		t.Errorf("list: %+v", r)
	}
	if r := Mailboxes(""); r.Status != StatusAbsent {
		t.Errorf("blank: %s", r.Status)
	}
	if r := Mailboxes("<alice@agency.govt.nz>"); r.Domain() != "agency.govt.nz" {
		t.Errorf("envelope form: %+v", r)
	}
}

func TestNormalizeDomain(t *testing.T) {
	for in, want := range map[string]string{
		"Agency.GOVT.nz.":                    "agency.govt.nz",
		"ａｇｅｎｃｙ。govt．nz":                     "agency.govt.nz",
		"_dmarc.example.com":                 "_dmarc.example.com",
		"bücher.example":                     "xn--bcher-kva.example",
		"xn--bcher-kva.example":              "xn--bcher-kva.example",
		"":                                   "",
		"[192.0.2.1]":                        "",
		"a..b":                               "",
		"a b.example":                        "",
		"a/b.example":                        "",
		".example":                           "",
		"example..":                          "",
		"localhost":                          "localhost",
		strings.Repeat("a", 63) + ".example": strings.Repeat("a", 63) + ".example",
		strings.Repeat("a", 64) + ".example": "",
		"example." + strings.Repeat("b", 64): "",
	} {
		got, ok := NormalizeDomain(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeDomain(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

// Issue 12 point 3: relaxed alignment never goes through a public suffix.
func TestAligned(t *testing.T) {
	for _, c := range []struct {
		auth, author string
		want         bool
	}{
		{"agency.govt.nz", "agency.govt.nz", true},
		{"mail.agency.govt.nz", "agency.govt.nz", true},
		{"agency.govt.nz", "sub.agency.govt.nz", true},
		{"govt.nz", "open.govt.nz", false}, // govt.nz is a public suffix
		{"other.govt.nz", "open.govt.nz", false},
		{"co.nz", "x.co.nz", false},
		{"example.com", "", false},
	} {
		if got := Aligned(c.auth, c.author); got != c.want {
			t.Errorf("Aligned(%q, %q) = %v", c.auth, c.author, got)
		}
	}
	if _, ok := OrganizationalDomain("govt.nz"); ok {
		t.Error("govt.nz taken for an organisational domain; it is a public suffix")
	}
}

func FuzzAuthors(f *testing.F) {
	for _, s := range []string{
		"John Smith <john@agency.govt.nz>", "Smith, John <j@a.nz>", `"ceo@agency.govt.nz" <e@x.com>`,
		"a (b (c) <d@e.f>", "=?x?q?=40a.b?= <c@d.e>", "g: a@b.c, <@r:d@e.f>;", "\xff\xfe@\xe3\x80\x82x",
		"john@agency\u3002govt\uFF0Enz.", `"unclosed <a@b.c>`, "<a@b.c",
	} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a)+len(b) > 4096 {
			return
		}
		values := []string{a}
		if b != "" {
			values = append(values, b)
		}
		r := Authors(values)
		if m, ok := r.Author(); ok {
			if r.Status != StatusOK || !slices.Contains(r.Candidates, m.Domain) {
				t.Fatalf("author %q not among candidates %q", m.Address(), r.Candidates)
			}
		}
		for _, d := range r.Candidates {
			if d2, ok := NormalizeDomain(d); !ok || d2 != d || strings.ToLower(d) != d {
				t.Fatalf("candidate %q not normalised", d)
			}
		}
		for _, n := range r.Names {
			if !utf8.ValidString(n) {
				t.Fatalf("name %q is not UTF-8", n)
			}
		}
	})
}

// The memo of Authors: the same values give an equal result, a caller's
// append never reaches the kept one, and concurrent readers are safe
// (go test -race).
func TestAuthorsMemo(t *testing.T) {
	v := []string{"Ann <ann@agency.govt.nz>, \"agency.govt.nz\" <x@evil.example>"}
	a := Authors(v)
	a.Authors = append(a.Authors, Mailbox{Local: "intruder", Domain: "evil.example"})
	a.Candidates = append(a.Candidates, "injected.example")
	b := Authors(v)
	if len(b.Authors) != 2 || b.Authors[1].Domain != "evil.example" || b.Authors[1].Local != "x" || slices.Contains(b.Candidates, "injected.example") {
		t.Fatalf("the kept result changed: %+v", b)
	}
	if !reflect.DeepEqual(b, parseAuthors(v)) {
		t.Fatalf("memo %+v, parse %+v", b, parseAuthors(v))
	}
	two := []string{"a@x.example", "b@y.example"}
	if r := Authors(two); r.Status != StatusRepeated || !reflect.DeepEqual(r, parseAuthors(two)) {
		t.Fatalf("two fields: %+v", r)
	}
	// Lists that would join to the same text are told apart.
	for _, vs := range [][]string{{"\x00a@x.example\x00b@y.example"}, {"a@x.example", "b@y.example"}, {"\x00"}, nil} {
		if got, want := Authors(vs), parseAuthors(vs); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: memo %+v, parse %+v", vs, got, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				val := fmt.Sprintf("u%d@d%d.example", i, j%50)
				if r := Authors([]string{val}); r.Domain() != fmt.Sprintf("d%d.example", j%50) {
					t.Errorf("%s: %+v", val, r)
				}
			}
		}()
	}
	wg.Wait()
}
