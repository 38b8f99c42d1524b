package message

import (
	"encoding/base64"
	"strings"

	"golang.org/x/text/encoding/unicode"
)

// DecodeWords decodes the RFC 2047 encoded words in s, in any charset
// LookupCharset knows (UTF-7 included); a word in a charset it does not
// know (or that fails to convert) is read as UTF-8, its bytes that are
// not UTF-8 as Latin-1, so that what it spells is still seen (issue 12:
// an unknown charset must not hide a name). Raw 8-bit text between the
// words is read the same way. The words are found as DecodeWordsFunc
// finds them.
func DecodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return toUTF8(s)
	}
	return DecodeWordsFunc(s, decodeCharset, toUTF8)
}

// decodeCharset is DecodeWords' reading of the bytes of encoded words.
func decodeCharset(cs string, raw []byte) string {
	// US-ASCII and UTF-8 words are read as raw text is (toUTF8).
	if e, ok := LookupCharset(cs); ok && e != ASCII && e != unicode.UTF8 {
		if w := UnmarkedWidth(cs); w > 0 {
			e, _ = SniffByteOrder(w, raw) // as clients read it
		}
		if out, err := e.NewDecoder().Bytes(raw); err == nil {
			return toUTF8(string(out))
		}
	}
	return toUTF8(string(raw))
}

// DecodeWordsFunc decodes the encoded words (RFC 2047) of a header value
// as mail clients do, more leniently than Go's mime.WordDecoder, with
// word turning the bytes of one or more adjacent words of one charset into
// text and text passing the text between words on (nil: as it is):
//   - an encoded word is found wherever it is, also inside a quoted
//     string or without white space around it ("Re:=?utf-8?q?x?=", as
//     Thunderbird reads it), not only as a whole space-separated token;
//   - the charset may carry an RFC 2231 language ("utf-8*en");
//   - B words without their padding, or with stray characters, are
//     decoded as far as they go; Q words with a bad "=XY" keep it as text;
//   - white space between two adjacent encoded words goes (section 6.2);
//     adjacent words in the same charset are joined before the charset is
//     decoded, so a character split between two words survives; adjacent
//     words of different charsets are each decoded;
//   - a malformed word stays as it is.
//
// The classifier (which notes unknown charsets as problems) and the author
// parser share it.
func DecodeWordsFunc(s string, word func(charset string, raw []byte) string, text func(string) string) string {
	if text == nil {
		text = func(s string) string { return s }
	}
	if !strings.Contains(s, "=?") {
		return text(s)
	}
	var out strings.Builder
	var run []byte   // undecoded bytes of adjacent words in one charset
	var runCS string // their charset
	flushRun := func() {
		if len(run) > 0 {
			out.WriteString(word(runCS, run))
			run = run[:0]
		}
	}
	afterWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			break
		}
		cs, enc, body, n, ok := parseEncodedWord(s[i:])
		if !ok {
			// Not a word: text up to and including "=?".
			flushRun()
			out.WriteString(text(s[:i+2]))
			afterWord = false
			s = s[i+2:]
			continue
		}
		between := s[:i]
		if afterWord && strings.Trim(between, " \t\r\n") == "" {
			between = "" // white space between adjacent encoded words goes
		} else {
			flushRun()
		}
		out.WriteString(text(between))
		raw := decodeWordText(enc, body)
		if len(run) > 0 && !strings.EqualFold(cs, runCS) {
			flushRun()
		}
		runCS = cs
		run = append(run, raw...)
		afterWord = true
		s = s[i+n:]
	}
	flushRun()
	out.WriteString(text(s))
	return out.String()
}

// parseEncodedWord reads "=?charset?e?text?=" at the start of s; n is its
// length.
func parseEncodedWord(s string) (cs string, enc byte, text string, n int, ok bool) {
	rest := s[2:]
	q := strings.IndexByte(rest, '?')
	if q <= 0 || q > 64 || len(rest) < q+3 || rest[q+2] != '?' {
		return "", 0, "", 0, false
	}
	cs = rest[:q]
	if strings.ContainsAny(cs, " \t\r\n\"=") {
		return "", 0, "", 0, false
	}
	if k := strings.IndexByte(cs, '*'); k >= 0 { // RFC 2231 section 5 language
		cs = cs[:k]
	}
	enc = rest[q+1] | 0x20
	if enc != 'b' && enc != 'q' {
		return "", 0, "", 0, false
	}
	body := rest[q+3:]
	end := strings.Index(body, "?=")
	if end < 0 || strings.ContainsAny(body[:end], " \t\r\n") {
		return "", 0, "", 0, false
	}
	return cs, enc, body[:end], 2 + q + 3 + end + 2, true
}

// decodeWordText decodes the text of an encoded word, leniently: "Q"
// (section 4.2: "_" is a space, "=XX" a byte, a malformed "=" kept) or "B"
// (base64 as far as it goes, padding optional).
func decodeWordText(enc byte, text string) []byte {
	if enc == 'q' {
		b := make([]byte, 0, len(text))
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '_':
				b = append(b, ' ')
			case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
				v, _ := UnhexPair(text[i+1], text[i+2])
				b = append(b, v)
				i += 2
			default:
				b = append(b, c)
			}
		}
		return b
	}
	clean := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1] // a lone trailing sextet holds no byte
	}
	b := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(b, clean)
	return b[:n]
}

func isHex(c byte) bool {
	_, ok := Unhex(c)
	return ok
}
