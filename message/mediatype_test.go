package message

import (
	"reflect"
	"slices"
	"testing"
)

// TestParseMedia covers the lenient MIME parameter parser (RFC 2045
// section 5.1, RFC 2231; issue 11 point 5).
func TestParseMediaType(t *testing.T) {
	for _, c := range []struct {
		in     string
		typ    string
		params map[string]string
		dups   []string
	}{
		{"", "", nil, nil},
		{"Text/Plain", "text/plain", map[string]string{}, nil},
		{`text/plain; charset="utf-8"; format=flowed`, "text/plain", map[string]string{"charset": "utf-8", "format": "flowed"}, nil},
		{`multipart/mixed; BOUNDARY="a;b\"c"`, "multipart/mixed", map[string]string{"boundary": `a;b"c`}, nil},
		{`multipart/mixed; boundary="unterminated`, "multipart/mixed", map[string]string{"boundary": "unterminated"}, nil},
		{`multipart/mixed; boundary*0="ab"; boundary*1=cd; boundary*2*=%65%66`, "multipart/mixed", map[string]string{"boundary": "abcdef"}, nil},
		{`multipart/mixed; boundary*1=cd; boundary*0=ab`, "multipart/mixed", map[string]string{"boundary": "abcd"}, nil},
		{`multipart/mixed; boundary*0=ab; boundary*2=ef`, "multipart/mixed", map[string]string{"boundary": "ab"}, nil},
		{`multipart/mixed; boundary*0*=iso-2022-jp'ja'%1B%24B; boundary*1*=%1B%28B`, "multipart/mixed", map[string]string{"boundary": "\x1b$B\x1b(B"}, nil},
		{`multipart/mixed; boundary*=x-unknown''caf%E9`, "multipart/mixed", map[string]string{"boundary": "caf\xe9"}, nil},
		{`attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt`, "attachment", map[string]string{"filename": "résumé.txt"}, nil},
		{`attachment; filename*=%ZZ`, "attachment", map[string]string{"filename": "%ZZ"}, nil},
		{`multipart/mixed; boundary=a; boundary=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`multipart/mixed; boundary=a; boundary="a"`, "multipart/mixed", map[string]string{"boundary": "a"}, nil},
		{`multipart/mixed; boundary=a; boundary*0=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`multipart/mixed; boundary*0=a; boundary*0=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`text/plain; ; =x; novalue; charset = us-ascii `, "text/plain", map[string]string{"charset": "us-ascii"}, nil},
		{`multipart / mixed; boundary=b`, "multipart/mixed", map[string]string{"boundary": "b"}, nil},
		{"Multipart\t/Mixed (c); boundary=b", "multipart/mixed", map[string]string{"boundary": "b"}, nil},
	} {
		m := ParseMediaType(c.in)
		if m.Type != c.typ || !reflect.DeepEqual(m.Params, c.params) && !(len(m.Params) == 0 && len(c.params) == 0) || !slices.Equal(m.Dups, c.dups) {
			t.Errorf("%q: %q %q dups %q, want %q %q %q", c.in, m.Type, m.Params, m.Dups, c.typ, c.params, c.dups)
		}
	}
}

// TestParamCharset: a name in an RFC 2231 charset is shown in UTF-8.
func TestParamCharset(t *testing.T) {
	for in, want := range map[string]string{
		`attachment; filename*=iso-8859-1'fr'r%E9sum%E9.txt`:               "résumé.txt",
		`attachment; filename*0*=windows-1252''%93q%94; filename*1=".txt"`: "“q”.txt",
		`attachment; filename*=utf-8''%E2%82%AC.txt`:                       "€.txt",
		`attachment; filename*=x-bogus''%E9.txt`:                           "\xe9.txt",
		`attachment; filename="plain.txt"`:                                 "plain.txt",
	} {
		if got := ParseMediaType(in).Text("filename"); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func FuzzMediaType(f *testing.F) {
	for _, s := range []string{`multipart/mixed; boundary*0="ab"; boundary*1*=%65`, `a; b="\"`, `x; y*=a'b'%`, `t; n*999=1; n*0*=''%41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := ParseMediaType(s)
		for k, v := range m.Params {
			if k == "" || len(v) > len(s) {
				t.Fatalf("%q: parameter %q=%q", s, k, v)
			}
		}
	})
}
