package classify

import (
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
	"golang.org/x/text/transform"
)

// Charsets that golang.org/x/text's indexes do not name as RFC 2046/2781
// want: utf-16 honours a byte order mark and defaults to big endian (RFC
// 2781 section 4.3); a BOM is also honoured for utf-16le/be, where it is
// strong evidence. UTF-7 (RFC 2152) is ours. nil means UTF-8 compatible:
// no decoding needed.
var charsetQuirks = map[string]encoding.Encoding{
	"":                  nil,
	"us-ascii":          nil,
	"ascii":             nil,
	"utf-8":             nil,
	"utf8":              nil,
	"x-utf_8j":          nil,
	"ansi_x3.4-1968":    nil,
	"ansi_x3.110-1983":  charmap.ISO8859_1,
	"utf-16":            unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16be":          unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16le":          unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"unicode":           unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"ucs-2":             unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-32":            utf32.UTF32(utf32.BigEndian, utf32.UseBOM),
	"utf-32be":          utf32.UTF32(utf32.BigEndian, utf32.UseBOM),
	"utf-32le":          utf32.UTF32(utf32.LittleEndian, utf32.UseBOM),
	"utf-7":             utf7Charset,
	"utf7":              utf7Charset,
	"unicode-1-1-utf-7": utf7Charset,
	"csunicode11utf7":   utf7Charset,
	"x-unicode20utf7":   utf7Charset,
}

// lookupCharset returns the decoder for a MIME charset name; enc is nil
// for UTF-8 compatible charsets; ok is false for unknown charsets, which
// are then read as they are (ASCII, and so every trigger word, survives
// any ASCII-compatible charset).
func lookupCharset(name string) (enc encoding.Encoding, ok bool) {
	name = strings.ToLower(strings.Trim(name, " \t\"'"))
	if e, found := charsetQuirks[name]; found {
		return e, true
	}
	for _, try := range []func() (encoding.Encoding, error){
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding(name) },
		func() (encoding.Encoding, error) { return ianaindex.IANA.Encoding(name) },
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding("cs" + name) },
		func() (encoding.Encoding, error) { return htmlindex.Get(name) },
	} {
		if e, err := try(); err == nil && e != nil {
			if e == unicode.UTF8 {
				return nil, true
			}
			return e, true
		}
	}
	return nil, false
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

// charsetReader is the mime.WordDecoder hook for RFC 2047 encoded words.
func (ctx *scanCtx) charsetReader(charset string, input io.Reader) (io.Reader, error) {
	enc, ok := lookupCharset(charset)
	if !ok {
		ctx.col.problem("subject: unknown charset %q in an encoded word, read as ASCII/UTF-8", clip(charset, 40))
		return input, nil
	}
	if enc == nil {
		return input, nil
	}
	return transform.NewReader(input, enc.NewDecoder()), nil
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
