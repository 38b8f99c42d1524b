package message

import (
	"strings"
	"unicode/utf8"
)

// Unhex is the value of the hexadecimal digit c, either case: the one
// helper for quoted-printable (RFC 2045 section 6.7), encoded words (RFC
// 2047 section 4.2), RFC 2231 percent escapes and the scanner's RTF and
// HTML escapes.
func Unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// UnhexPair is the byte the two hexadecimal digits hi and lo spell.
func UnhexPair(hi, lo byte) (byte, bool) {
	h, ok := Unhex(hi)
	l, ok2 := Unhex(lo)
	return h<<4 | l, ok && ok2
}

// Clip shortens s to at most n bytes and "..." for a problem report, a
// reason or an error: invalid UTF-8 is replaced and a character is never
// cut, so the JSON log and the SMTP reply built from it stay valid text.
func Clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
