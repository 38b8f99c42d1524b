package classify

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// lookupCharset returns the decoder for a MIME charset name
// (message.LookupCharset, shared with the warning rewriter); enc is nil
// for US-ASCII and UTF-8, which are read as they are (8-bit bytes in an
// ASCII part are most often UTF-8 from a mislabelling client, and the
// normaliser reads them); ok is false for unknown charsets, which are then
// read as they are too (ASCII, and so every trigger word, survives any
// ASCII-compatible charset).
func lookupCharset(name string) (enc encoding.Encoding, ok bool) {
	enc, ok = message.LookupCharset(name)
	if enc == message.ASCII || enc == unicode.UTF8 {
		return nil, ok
	}
	return enc, ok
}

// newCharsetStage returns a stage decoding charset to UTF-8 into next, or
// next itself when no decoding is needed.
func newCharsetStage(ctx *scanCtx, charset, where string, next stage) stage {
	enc, ok := lookupCharset(charset)
	if !ok {
		ctx.col.problem("%s: unknown charset %q, read as ASCII/UTF-8", where, clip(charset, 40))
		return next
	}
	if enc == nil {
		return next
	}
	return newTransformStage(enc.NewDecoder(), next)
}

// transformStage pushes bytes through a golang.org/x/text Transformer.
type transformStage struct {
	t    transform.Transformer
	next stage
	pend []byte // an incomplete input sequence, a few bytes
	dst  []byte
}

const maxPend = 32

func newTransformStage(t transform.Transformer, next stage) *transformStage {
	return &transformStage{t: t, next: next, pend: make([]byte, 0, maxPend), dst: make([]byte, 8<<10)}
}

func (s *transformStage) write(p []byte) {
	for len(s.pend) > 0 && len(p) > 0 {
		old := len(s.pend)
		k := min(len(p), maxPend-old)
		s.pend = append(s.pend, p[:k]...)
		n := s.run(s.pend, false)
		if n >= old {
			s.pend = s.pend[:0]
			p = p[n-old:]
			break
		}
		s.pend = s.pend[:copy(s.pend, s.pend[n:])]
		p = p[k:]
		if n == 0 && len(s.pend) == maxPend {
			// No progress even with a full buffer: drop a byte.
			s.pend = s.pend[:copy(s.pend, s.pend[1:])]
			s.next.write(runeError)
		}
	}
	if len(s.pend) > 0 || len(p) == 0 {
		return
	}
	n := s.run(p, false)
	rest := p[n:]
	if len(rest) > maxPend { // cannot happen with a sane transformer
		rest = rest[len(rest)-maxPend:]
	}
	s.pend = append(s.pend[:0], rest...)
}

var runeError = []byte(string(utf8.RuneError))

// run transforms src, passing output on, and returns how much of src was
// consumed; the rest is an incomplete sequence.
func (s *transformStage) run(src []byte, atEOF bool) int {
	total := 0
	for {
		nDst, nSrc, err := s.t.Transform(s.dst, src, atEOF)
		if nDst > 0 {
			s.next.write(s.dst[:nDst])
		}
		src = src[nSrc:]
		total += nSrc
		switch {
		case err == nil, errors.Is(err, transform.ErrShortSrc):
			return total
		case errors.Is(err, transform.ErrShortDst):
			if nDst == 0 && nSrc == 0 {
				return total // cannot progress
			}
		default: // a decoding error: skip one byte
			if len(src) == 0 {
				return total
			}
			s.next.write(runeError)
			src = src[1:]
			total++
		}
	}
}

func (s *transformStage) close() {
	// Always: a stateful decoder (UTF-7) may have something to flush.
	s.run(s.pend, true)
	s.pend = s.pend[:0]
	s.next.close()
}

// clip shortens s for a problem report.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// decodeRFC2047 decodes the encoded words (RFC 2047) of a header value as
// mail clients do, more leniently than Go's mime.WordDecoder:
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
//   - a word in an unknown charset is read as ASCII/UTF-8 (a problem is
//     noted); a malformed word stays as it is.
func (ctx *scanCtx) decodeRFC2047(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var out strings.Builder
	var run []byte   // undecoded bytes of adjacent words in one charset
	var runCS string // their charset
	flushRun := func() {
		if len(run) > 0 {
			out.WriteString(ctx.decodeCharset(runCS, run))
			run = run[:0]
		}
	}
	afterWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			break
		}
		cs, enc, text, n, ok := parseEncodedWord(s[i:])
		if !ok {
			// Not a word: text up to and including "=?".
			flushRun()
			out.WriteString(s[:i+2])
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
		out.WriteString(between)
		raw := decodeWordText(enc, text)
		if len(run) > 0 && !strings.EqualFold(cs, runCS) {
			flushRun()
		}
		runCS = cs
		run = append(run, raw...)
		afterWord = true
		s = s[i+n:]
	}
	flushRun()
	out.WriteString(s)
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

// decodeWordText decodes the text of an encoded word, leniently.
func decodeWordText(enc byte, text string) []byte {
	if enc == 'q' {
		b := make([]byte, 0, len(text))
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '_':
				b = append(b, ' ')
			case c == '=' && i+2 < len(text):
				h, ok1 := unhex(text[i+1])
				l, ok2 := unhex(text[i+2])
				if ok1 && ok2 {
					b = append(b, h<<4|l)
					i += 2
				} else {
					b = append(b, c)
				}
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

// decodeCharset decodes the bytes of encoded words in a charset.
func (ctx *scanCtx) decodeCharset(charset string, b []byte) string {
	enc, ok := lookupCharset(charset)
	if !ok {
		ctx.col.problem("subject: unknown charset %q in an encoded word, read as ASCII/UTF-8", clip(charset, 40))
		return string(b)
	}
	if enc == nil {
		return string(b)
	}
	out, _, err := transform.Bytes(enc.NewDecoder(), b)
	if err != nil && len(out) == 0 {
		return string(b)
	}
	return string(out)
}
