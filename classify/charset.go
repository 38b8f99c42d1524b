package classify

import (
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
		ctx.col.problem("%s: unknown charset %q, read as ASCII/UTF-8", where, message.Clip(charset, 40))
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

// decodeRFC2047 decodes the encoded words (RFC 2047) of a header value as
// mail clients do (message.DecodeWordsFunc); a word in an unknown charset
// is read as ASCII/UTF-8 and noted as a problem.
func (ctx *scanCtx) decodeRFC2047(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	return message.DecodeWordsFunc(s, ctx.decodeCharset, nil)
}

// decodeCharset decodes the bytes of encoded words in a charset.
func (ctx *scanCtx) decodeCharset(charset string, b []byte) string {
	enc, ok := lookupCharset(charset)
	if !ok {
		ctx.col.problem("subject: unknown charset %q in an encoded word, read as ASCII/UTF-8", message.Clip(charset, 40))
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
