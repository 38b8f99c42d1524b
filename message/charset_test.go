package message

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// TestLookupCharset: the labels mail needs read as the scanner and the
// warning rewriter both read them (issue 13: one charset lookup).
func TestLookupCharset(t *testing.T) {
	for label, want := range map[string]encoding.Encoding{
		"":                 ASCII,
		" \"US-ASCII\" ":   ASCII,
		"csASCII":          ASCII,
		"UTF-8":            unicode.UTF8,
		"'utf8'":           unicode.UTF8,
		"iso-8859-1":       charmap.ISO8859_1,
		"latin1":           charmap.ISO8859_1, // the IANA alias, before the WHATWG index
		"windows-1252":     charmap.Windows1252,
		"ansi_x3.110-1983": charmap.ISO8859_1,
		"UTF-7":            UTF7,
		"x-unicode20utf7":  UTF7,
	} {
		got, ok := LookupCharset(label)
		if !ok || got != want {
			t.Errorf("LookupCharset(%q) = %v, %v; want %v", label, got, ok, want)
		}
	}
	for _, label := range []string{"x-unknown", "utf-9", "\x00"} {
		if e, ok := LookupCharset(label); ok || e != nil {
			t.Errorf("LookupCharset(%q) = %v, %v; want unknown", label, e, ok)
		}
	}
	// utf-16 honours a BOM and is big endian without one (RFC 2781 4.3).
	e, _ := LookupCharset("utf-16")
	for in, want := range map[string]string{"\x00A\x00B": "AB", "\xff\xfeA\x00": "A", "\xfe\xff\x00A": "A"} {
		if got, _ := e.NewDecoder().String(in); got != want {
			t.Errorf("utf-16 %q = %q, want %q", in, got, want)
		}
	}
}

func TestASCII(t *testing.T) {
	if b, err := ASCII.NewEncoder().String("plain text"); err != nil || b != "plain text" {
		t.Errorf("encode ASCII = %q, %v", b, err)
	}
	if _, err := ASCII.NewEncoder().String("en – dash"); err == nil {
		t.Error("ASCII encoded an EN DASH")
	}
	if s, _ := ASCII.NewDecoder().String("caf\xe9"); s != "café" {
		t.Errorf("decode 8-bit in ASCII = %q", s)
	}
}

func TestUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"Hi Mom -+Jjo--!":        "Hi Mom -\u263a-!",
		"+AFs-SECRET+AF0-":       "[SECRET]",
		"a+-b":                   "a+b",
		"+2D3cAA-":               "\U0001f400",
		"plain, no shift at all": "plain, no shift at all",
	} {
		if got, _, err := transform.String(UTF7.NewDecoder(), in); err != nil || got != want {
			t.Errorf("UTF-7 %q = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := UTF7.NewEncoder().String("x"); err == nil {
		t.Error("UTF-7 encoder did not refuse")
	}
}

// FuzzUTF7: any input decodes without a panic to valid UTF-8.
func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"Hi Mom -+Jjo--!", "+AFsAUgBFAFMAVABSAEkAQwBUAEUARABd-", "+2D3cAA-", "+", "+-", "+AAA", "+2D3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		got, _, _ := transform.Bytes(UTF7.NewDecoder(), in)
		if !utf8.Valid(got) {
			t.Fatalf("invalid UTF-8 from %q: %q", in, got)
		}
	})
}

// SniffByteOrder: a byte order mark decides, then the zero bytes of
// ASCII and Latin text; CJK throughout is not evident and gets
// little-endian, as mail clients read the labels.
func TestSniffByteOrder(t *testing.T) {
	le16 := []byte{'[', 0, 'S', 0}
	be16 := []byte{0, '[', 0, 'S'}
	cjk16 := []byte{0x22, 0x6f, 0x57, 0x5b}
	for _, c := range []struct {
		name    string
		width   int
		b       []byte
		want    string
		evident bool
	}{
		{"utf-16 LE text", 2, le16, "[S", true},
		{"utf-16 BE text", 2, be16, "[S", true},
		{"utf-16 BE mark", 2, append([]byte{0xFE, 0xFF}, be16...), "[S", true},
		{"utf-16 LE mark over BE-looking text", 2, append([]byte{0xFF, 0xFE}, le16...), "[S", true},
		{"utf-16 CJK", 2, cjk16, "\u6f22\u5b57", false},
		{"utf-16 empty", 2, nil, "", true},
		{"utf-32 LE", 4, []byte{'[', 0, 0, 0, 'S', 0, 0, 0}, "[S", true},
		{"utf-32 BE", 4, []byte{0, 0, 0, '[', 0, 0, 0, 'S'}, "[S", true},
	} {
		enc, evident := SniffByteOrder(c.width, c.b)
		got, err := enc.NewDecoder().Bytes(c.b)
		if err != nil || string(got) != c.want || evident != c.evident {
			t.Errorf("%s: %q %v, evident %v; want %q, evident %v", c.name, got, err, evident, c.want, c.evident)
		}
	}
	for label, want := range map[string]int{"UTF-16": 2, " \"ucs-2\"": 2, "utf-32": 4, "utf-16le": 0, "utf-8": 0} {
		if got := UnmarkedWidth(label); got != want {
			t.Errorf("UnmarkedWidth(%q) = %d, want %d", label, got, want)
		}
	}
}
