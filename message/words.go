package message

import (
	"encoding/base64"
	"regexp"
	"strings"

	"golang.org/x/text/encoding/unicode"
)

// encodedWord matches an RFC 2047 encoded word (section 2), with an
// optional RFC 2231 language suffix on the charset.
var encodedWord = regexp.MustCompile(`=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=`)

// DecodeWords decodes the RFC 2047 encoded words in s, in any charset
// LookupCharset knows (UTF-7 included); a word in a charset it does not
// know (or that fails to convert) is read as UTF-8, its bytes that are
// not UTF-8 as Latin-1, so that what it spells is still seen (issue 12:
// an unknown charset must not hide a name). White space between two
// adjacent encoded words is dropped (section 6.2). Raw 8-bit text is read
// the same way.
func DecodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return toUTF8(s)
	}
	var b strings.Builder
	last := 0
	prevWordEnd := -1
	for _, m := range encodedWord.FindAllStringSubmatchIndex(s, -1) {
		between := s[last:m[0]]
		if prevWordEnd == last && strings.TrimSpace(between) == "" {
			between = ""
		}
		b.WriteString(toUTF8(between))
		cs, enc, text := s[m[2]:m[3]], s[m[4]:m[5]], s[m[6]:m[7]]
		b.WriteString(decodeWord(cs, enc, text))
		last, prevWordEnd = m[1], m[1]
	}
	b.WriteString(toUTF8(s[last:]))
	return b.String()
}

func decodeWord(cs, enc, text string) string {
	var raw []byte
	if enc == "b" || enc == "B" {
		t := strings.TrimRight(text, "=")
		var err error
		raw, err = base64.RawStdEncoding.DecodeString(t)
		if err != nil {
			return text
		}
	} else {
		raw = qDecode(text)
	}
	// Nothing is cut short: a long word must not hide the name at its end.
	// A charset conversion grows the text by a small factor at most.
	cs, _, _ = strings.Cut(cs, "*") // RFC 2231 section 5: charset*language
	// US-ASCII and UTF-8 words are read as raw text is (toUTF8).
	if e, ok := LookupCharset(cs); ok && e != ASCII && e != unicode.UTF8 {
		if out, err := e.NewDecoder().Bytes(raw); err == nil {
			return toUTF8(string(out))
		}
	}
	return toUTF8(string(raw))
}

// qDecode is the "Q" encoding (RFC 2047 section 4.2): "_" is a space,
// "=XX" a byte; a malformed "=" is kept.
func qDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
