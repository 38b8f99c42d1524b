package classify

import (
	"bytes"
	"errors"
	"fmt"
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
		return &unknownCharsetStage{ctx: ctx, charset: charset, where: where, next: next}
	}
	if enc == nil {
		return &nulGuardStage{ctx: ctx, charset: charset, where: where, next: next}
	}
	if w := message.UnmarkedWidth(charset); w > 0 {
		return &byteOrderStage{ctx: ctx, charset: charset, where: where, width: w, next: next}
	}
	t := newTransformStage(enc.NewDecoder(), next)
	if wideCharset(enc) {
		return t
	}
	// A NUL byte is no character of an 8-bit or multibyte charset either
	// (Latin-1, Windows-1252, Shift_JIS ...): it is UTF-16 or UTF-32 under
	// the wrong label, which a client may show as text once it sniffs a
	// byte order mark or draws the NULs as nothing.
	return &nulGuardStage{ctx: ctx, charset: charset, where: where, next: t, nulOnly: true}
}

// wideCharset: enc writes ASCII with zero bytes (UTF-16, UTF-32), so NUL
// bytes are part of its text.
func wideCharset(enc encoding.Encoding) bool {
	b, err := enc.NewEncoder().Bytes([]byte("A"))
	return err == nil && bytes.IndexByte(b, 0) >= 0
}

// byteOrderSniff is how much of a UTF-16 or UTF-32 part without a byte
// order mark is looked at for its byte order.
const byteOrderSniff = 64

// byteOrderStage decodes a part labelled utf-16, ucs-2 or utf-32 in the
// byte order its text shows. RFC 2781 makes such text big-endian when it
// has no byte order mark, but mail clients read the label as Windows and
// the WHATWG Encoding Standard do, little-endian: "[SECRET]" written
// little-endian and read big-endian is a row of CJK characters, and was
// tagged unclassified (fail safe, issue 11). A byte order mark decides
// (RFC 2781 section 3.2); without one, the zero bytes of the first
// byteOrderSniff bytes do (the high bytes of ASCII and Latin text); text
// that shows neither (CJK throughout) is read little-endian, as clients
// read it, and marked unreadable.
type byteOrderStage struct {
	ctx            *scanCtx
	charset, where string
	width          int // 2 (UTF-16) or 4 (UTF-32)
	next           stage
	buf            []byte
	st             stage // the decoder, once the byte order is known
}

func (s *byteOrderStage) write(p []byte) {
	if s.st != nil {
		s.st.write(p)
		return
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) >= byteOrderSniff {
		s.decide()
	}
}

func (s *byteOrderStage) close() {
	if s.st == nil {
		s.decide()
	}
	s.st.close()
}

func (s *byteOrderStage) decide() {
	// Exactly the first byteOrderSniff bytes (or all, when fewer), however
	// they came: the judgement must not depend on the chunking.
	enc, evident := message.SniffByteOrder(s.width, s.buf[:min(len(s.buf), byteOrderSniff)])
	if !evident {
		s.ctx.col.unreadable("%s: charset %q without a byte order mark, and the text does not show its byte order; read little-endian, as mail clients read it", s.where, message.Clip(s.charset, 40))
	}
	s.st = newTransformStage(enc.NewDecoder(), s.next)
	s.st.write(s.buf)
	s.buf = nil
}

// nulGuardStage passes a part read as ASCII or UTF-8 (so labelled, or not
// labelled) through, and marks it unreadable at its first NUL byte (fail
// safe, issue 11). No ASCII or UTF-8 text holds NUL (RFC 2045 section
// 2.7-2.8 forbids it in 7bit and 8bit data); a part that does is most
// likely UTF-16 or UTF-32 under the wrong label, which a client may sniff
// and show as text while we would read "[\0S\0E..." and find nothing.
//
// It also marks the part unreadable at its first ISO-2022 designation
// escape (ESC followed by '$', '(', ')' ...; iso2022Escape): ISO-2022-JP,
// -KR and -CN text unlabelled, labelled ASCII, or labelled only by an
// HTML <meta>, which clients detect and decode, and which read as ASCII
// hides a full-width [SECRET].
type nulGuardStage struct {
	ctx            *scanCtx
	charset, where string
	next           stage
	flagged        bool
	last           byte // the previous write's last byte (an ESC across writes)
	nulOnly        bool // a labelled charset: NUL bytes only, not ISO-2022
}

// nulGuardPiece: a large write is checked and passed on in pieces that
// stay in the CPU cache between the check and the next stage.
const nulGuardPiece = 16 << 10

func (s *nulGuardStage) write(p []byte) {
	for !s.flagged && len(p) > nulGuardPiece {
		s.write(p[:nulGuardPiece])
		p = p[nulGuardPiece:]
	}
	if !s.flagged && len(p) > 0 {
		// The first of the two in the text is reported, whatever the
		// chunking: both are looked for in every write.
		nul, esc := bytes.IndexByte(p, 0), -1
		if !s.nulOnly {
			esc = iso2022Escape(s.last, p)
		}
		switch {
		case nul >= 0 && (esc < 0 || nul < esc):
			s.flagged = true
			s.ctx.col.unreadable("%s: NUL bytes in text with %s (UTF-16 or UTF-32 under the wrong label?), not readable", s.where, s.label())
		case esc >= 0:
			s.flagged = true
			s.ctx.col.unreadable("%s: ISO-2022 escape sequences in text with %s (ISO-2022-JP, -KR or -CN, which mail clients detect), not readable", s.where, s.label())
		}
		s.last = p[len(p)-1]
	}
	s.next.write(p)
}

// label names the part's charset label for the report (built only then,
// not on every write).
func (s *nulGuardStage) label() string {
	if s.charset == "" {
		return "no charset"
	}
	return fmt.Sprintf("charset %q", message.Clip(s.charset, 40))
}

func (s *nulGuardStage) close() { s.next.close() }

// unknownCharsetStage passes the bytes of a part in a charset we do not
// know through as they are, and marks the part unreadable (fail safe,
// issue 11) as soon as they are anything but plain ASCII text: only then
// does every charset the recipient's client might know by that name show
// the same trigger words we read. 8-bit bytes (EBCDIC, a 16-bit encoding
// under an alias), control bytes (NUL of UTF-16, ESC of ISO-2022) and the
// shift sequences of the 7-bit encodings (UTF-7's "+A", HZ's "~{") could
// all hide a bracketed word. RFC 1428's unknown-8bit is read the same way.
type unknownCharsetStage struct {
	ctx            *scanCtx
	charset, where string
	next           stage
	last           byte // the previous chunk's last byte, for "+X" or "~{" across chunks
	flagged        bool
}

func (s *unknownCharsetStage) write(p []byte) {
	if !s.flagged && len(p) > 0 {
		if i := notPlainASCII(s.last, p); i >= 0 {
			s.flagged = true
			s.ctx.col.unreadable("%s: unknown charset %q with content other than plain ASCII (byte %#02x), not readable",
				s.where, message.Clip(s.charset, 40), p[i])
		}
		s.last = p[len(p)-1]
	}
	s.next.write(p)
}

func (s *unknownCharsetStage) close() { s.next.close() }

// notPlainASCII returns the index of the first byte of p that makes it
// other than plain ASCII text (prev is the byte before p, 0 at the start),
// or -1: an 8-bit or control byte other than TAB, LF, FF and CR, or the
// second byte of a UTF-7 shift ('+' and a base64 character, RFC 2152) or
// an HZ escape ("~{", RFC 1843).
func notPlainASCII(prev byte, p []byte) int {
	for i, b := range p {
		switch {
		case b >= 0x7f, b < 0x20 && b != '\t' && b != '\n' && b != '\f' && b != '\r':
			return i
		case prev == '+' && (b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '/' || b == '+'),
			prev == '~' && b == '{':
			return i
		}
		prev = b
	}
	return -1
}

// iso2022Escape returns the index of the byte of p that completes an
// ISO 2022 designation escape, ESC then an intermediate byte 0x24-0x2F
// (ISO/IEC 2022 section 13; "ESC $ B" starts JIS X 0208 in ISO-2022-JP,
// RFC 1468), or -1; prev is the byte before p. The CSI of terminal colour
// codes (ESC '[') is not one.
func iso2022Escape(prev byte, p []byte) int {
	if prev == 0x1b && len(p) > 0 && p[0] >= 0x24 && p[0] <= 0x2f {
		return 0
	}
	for i := bytes.IndexByte(p, 0x1b); i >= 0 && i+1 < len(p); {
		if p[i+1] >= 0x24 && p[i+1] <= 0x2f {
			return i + 1
		}
		j := bytes.IndexByte(p[i+1:], 0x1b)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return -1
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
	if strings.Contains(s, "=?") {
		s = message.DecodeWordsFunc(s, ctx.decodeCharset, nil)
	}
	if strings.IndexByte(s, 0x1b) >= 0 && iso2022Escape(0, []byte(s)) >= 0 {
		// Raw ISO-2022-JP in a header (some Japanese mailers send it
		// unencoded), or in an encoded word labelled ASCII or UTF-8:
		// clients decode it, so the text read here is not theirs.
		ctx.col.unreadable("subject: ISO-2022 escape sequences in a header not labelled with that charset, not readable")
	}
	return s
}

// decodeCharset decodes the bytes of encoded words in a charset.
func (ctx *scanCtx) decodeCharset(charset string, b []byte) string {
	enc, ok := lookupCharset(charset)
	if !ok {
		if i := notPlainASCII(0, b); i >= 0 {
			// As for a body part (unknownCharsetStage): only plain ASCII
			// reads the same in whatever charset the name stands for.
			ctx.col.unreadable("subject: unknown charset %q in an encoded word with content other than plain ASCII (byte %#02x), not readable",
				message.Clip(charset, 40), b[i])
		} else {
			ctx.col.problem("subject: unknown charset %q in an encoded word, read as ASCII/UTF-8", message.Clip(charset, 40))
		}
		return string(b)
	}
	if enc == nil {
		if bytes.IndexByte(b, 0) >= 0 {
			// As for a body part (nulGuardStage): UTF-16 or UTF-32
			// under an ASCII or UTF-8 label.
			ctx.col.unreadable("subject: NUL bytes in an encoded word labelled %q (UTF-16 or UTF-32 under the wrong label?), not readable",
				message.Clip(charset, 40))
		}
		return string(b)
	}
	if bytes.IndexByte(b, 0) >= 0 && !wideCharset(enc) {
		ctx.col.unreadable("subject: NUL bytes in an encoded word labelled %q (UTF-16 or UTF-32 under the wrong label?), not readable",
			message.Clip(charset, 40))
	}
	if w := message.UnmarkedWidth(charset); w > 0 {
		var evident bool
		if enc, evident = message.SniffByteOrder(w, b); !evident {
			ctx.col.unreadable("subject: charset %q without a byte order mark in an encoded word, and the text does not show its byte order; read little-endian, as mail clients read it", message.Clip(charset, 40))
		}
	}
	out, _, err := transform.Bytes(enc.NewDecoder(), b)
	if err != nil && len(out) == 0 {
		return string(b)
	}
	return string(out)
}
