package message

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// TransferEncoding returns the mechanism a Content-Transfer-Encoding field
// value names (RFC 2045 section 6.1), in lower case, as mail clients read
// it: unfolded, comments removed (the field is structured, RFC 2045
// section 5.1 note on CFWS), and only the first token, up to white space
// or ';' (Thunderbird's libmime takes that token). So "base64 (yes)" and
// "BASE64; x=y" are base64, and the scanner decodes what the reader will
// see rather than read undecoded text (fail safe, issue 11). exact is
// false when the value held anything besides the token.
func TransferEncoding(v string) (mech string, exact bool) {
	raw := strings.TrimSpace(Unfold(v))
	s := strings.TrimSpace(stripComments(raw))
	if i := strings.IndexAny(s, " \t\r\n;"); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s), len(s) == len(raw)
}

// The transfer decoders (RFC 2045 section 6): the one copy for the
// scanner, which streams them (classify), and the warning rewriter, which
// decodes a text part in memory (notify, DecodeQP and DecodeBase64), so
// that the text a banner goes in front of is the text that was scanned.
// They are lenient as RFC 2045 asks of decoders: nothing is refused,
// malformed input is reported through a callback and passed on as mail
// clients show it.

// qpBufSize is the output buffer of a QPDecoder.
const qpBufSize = 8 << 10

// qpMaxPad bounds the white space kept after a "=" that turns out not to
// start a soft line break ("= x"): a longer run is cut, so the decoder's
// memory stays bounded.
const qpMaxPad = 79

// QPDecoder decodes quoted-printable (RFC 2045 section 6.7), streaming. A
// soft line break ("=" at the end of a line, with optional transport
// padding before the line break; a lone CR is a line break) disappears,
// even inside a word: "[SEC=\r\nRET]" is "[SECRET]". "=XX" (either case)
// is a byte; a malformed escape passes through literally (section 6.7
// note 2). Text, trailing blanks included, passes through as it is.
type QPDecoder struct {
	out func([]byte)
	bad func()
	buf []byte
	st  int  // qpText, qpEq, qpHex, qpSoftWS, qpSoftCR
	hi  byte // first hex digit in qpHex
	pad []byte
}

const (
	qpText = iota
	qpEq
	qpHex
	qpSoftWS
	qpSoftCR
)

// NewQPDecoder returns a decoder that gives the decoded bytes to out (the
// slice is reused once out returns) and calls bad, when not nil, at each
// malformed escape, after the text decoded before it has gone to out.
func NewQPDecoder(out func([]byte), bad func()) *QPDecoder {
	return &QPDecoder{out: out, bad: bad, buf: make([]byte, 0, qpBufSize)}
}

func (q *QPDecoder) emit(b ...byte) {
	if len(q.buf)+len(b) > cap(q.buf) {
		q.flush()
	}
	q.buf = append(q.buf, b...)
}

func (q *QPDecoder) flush() {
	if len(q.buf) > 0 {
		q.out(q.buf)
		q.buf = q.buf[:0]
	}
}

func (q *QPDecoder) malformed() {
	q.flush() // the decoded text before the fault goes first
	if q.bad != nil {
		q.bad()
	}
}

// Write decodes p, which may end anywhere (inside an escape, between the
// CR and the LF of a soft line break).
func (q *QPDecoder) Write(p []byte) {
	for len(p) > 0 {
		if q.st == qpText {
			i := bytes.IndexByte(p, '=')
			if i < 0 {
				i = len(p)
			}
			// Copy the literal run in buffer-sized pieces.
			for run := p[:i]; len(run) > 0; {
				if len(q.buf) == cap(q.buf) {
					q.flush()
				}
				n := min(len(run), cap(q.buf)-len(q.buf))
				q.buf = append(q.buf, run[:n]...)
				run = run[n:]
			}
			if i == len(p) {
				break
			}
			q.st = qpEq
			p = p[i+1:]
			continue
		}
		// One byte of an escape. A byte that turns out not to belong to
		// the escape is left in p and read again as text.
		c := p[0]
		used := true
		switch q.st {
		case qpEq:
			switch {
			case c == '\n': // soft line break
				q.st = qpText
			case c == '\r':
				q.st = qpSoftCR
			case c == ' ' || c == '\t':
				q.st, q.pad = qpSoftWS, append(q.pad[:0], c)
			default:
				if _, ok := Unhex(c); ok {
					q.st, q.hi = qpHex, c
				} else {
					q.malformed()
					q.emit('=')
					q.st, used = qpText, false
				}
			}
		case qpHex:
			if v, ok := UnhexPair(q.hi, c); ok {
				q.emit(v)
				q.st = qpText
			} else {
				q.malformed()
				q.emit('=', q.hi)
				q.st, used = qpText, false
			}
		case qpSoftWS:
			switch c {
			case ' ', '\t':
				if len(q.pad) < qpMaxPad {
					q.pad = append(q.pad, c)
				}
			case '\r':
				q.st = qpSoftCR
			case '\n':
				q.st = qpText
			default: // "= x": not a soft break after all
				q.malformed()
				q.emit('=')
				q.emit(q.pad...)
				q.st, used = qpText, false
			}
		case qpSoftCR:
			q.st = qpText
			used = c == '\n' // a lone CR is the line break by itself
		}
		if used {
			p = p[1:]
		}
	}
	q.flush()
}

// Close ends the input: a trailing "=" is a soft line break, a trailing
// "=X" passes through.
func (q *QPDecoder) Close() {
	switch q.st {
	case qpEq, qpSoftWS, qpSoftCR:
	case qpHex:
		q.emit('=', q.hi)
	}
	q.st = qpText
	q.flush()
}

// DecodeQP decodes a whole quoted-printable body with QPDecoder.
func DecodeQP(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	d := NewQPDecoder(func(p []byte) { out = append(out, p...) }, nil)
	d.Write(raw)
	d.Close()
	return out
}

// b64AccSize is the undecoded input a Base64Decoder holds at most.
const b64AccSize = 16 << 10

// Base64Decoder decodes base64 (RFC 2045 section 6.8), streaming.
// Characters outside the alphabet (line breaks, spaces) are ignored as the
// RFC says; "=" padding ends a quantum, and decoding resumes after it
// (encodings back to back). Clean input is decoded with encoding/base64 in
// bulk.
type Base64Decoder struct {
	out     func([]byte)
	junk    func()
	acc     []byte // base64 characters not yet decoded
	dec     []byte
	bad     bool
	bits    uint32 // slow path: pending bits
	nbits   uint
	padSeen bool
}

// NewBase64Decoder returns a decoder that gives the decoded bytes to out
// (the slice is reused once out returns) and calls junk, when not nil,
// once, at the first character that is neither of the alphabet, padding
// nor white space (bytes of the part are dropped there: what the reader
// sees depends on the client), after the bytes decoded before it have
// gone to out.
func NewBase64Decoder(out func([]byte), junk func()) *Base64Decoder {
	return &Base64Decoder{out: out, junk: junk, acc: make([]byte, 0, b64AccSize)}
}

var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0xFE
	t[' '], t['\t'], t['\r'], t['\n'] = 0xFD, 0xFD, 0xFD, 0xFD
	return t
}()

// Write decodes p, which may end anywhere.
func (s *Base64Decoder) Write(p []byte) {
	for len(p) > 0 {
		// Take one line (or the rest of p) without its line break and
		// trailing white space.
		i := bytes.IndexByte(p, '\n')
		var line []byte
		if i < 0 {
			line, p = p, nil
		} else {
			line, p = p[:i], p[i+1:]
		}
		line = bytes.TrimRight(line, " \t\r")
		for len(line) > 0 {
			if len(s.acc) == cap(s.acc) {
				s.decode(false)
			}
			n := min(len(line), cap(s.acc)-len(s.acc))
			s.acc = append(s.acc, line[:n]...)
			line = line[n:]
		}
	}
	s.decode(false)
}

// decode decodes the accumulated characters, all of them when final, else
// whole quanta of 4.
func (s *Base64Decoder) decode(final bool) {
	n := len(s.acc)
	if !final {
		n &^= 3
	}
	if n == 0 {
		return
	}
	src := s.acc[:n]
	if s.nbits == 0 && !s.padSeen && n%4 == 0 {
		need := base64.StdEncoding.DecodedLen(n)
		if cap(s.dec) < need {
			s.dec = make([]byte, need)
		}
		if m, err := base64.StdEncoding.Decode(s.dec[:need], src); err == nil {
			s.out(s.dec[:m])
			s.consume(n)
			return
		}
	}
	s.slow(src)
	s.consume(n)
}

func (s *Base64Decoder) consume(n int) {
	s.acc = s.acc[:copy(s.acc, s.acc[n:])]
}

// slow decodes byte by byte, skipping junk and restarting after padding.
func (s *Base64Decoder) slow(src []byte) {
	out := s.dec[:0]
	if cap(out) < len(src) {
		out = make([]byte, 0, len(src))
	}
	for _, c := range src {
		v := b64Value[c]
		switch {
		case v == 0xFE: // '=': the end of this quantum
			s.padSeen = true
			s.bits, s.nbits = 0, 0
			continue
		case v == 0xFD: // white space: ignored silently
			continue
		case v == 0xFF:
			if !s.bad {
				s.bad = true
				if len(out) > 0 { // the decoded bytes before the fault go first
					s.out(out)
					out = out[:0]
				}
				if s.junk != nil {
					s.junk()
				}
			}
			continue
		}
		if s.padSeen {
			s.padSeen = false // a new encoding starts after the padding
		}
		s.bits = s.bits<<6 | uint32(v)
		s.nbits += 6
		if s.nbits >= 8 {
			s.nbits -= 8
			out = append(out, byte(s.bits>>s.nbits))
			s.bits &= 1<<s.nbits - 1
		}
	}
	if len(out) > 0 {
		s.out(out)
	}
	s.dec = out[:0]
}

// Close decodes what is left (a last quantum without padding).
func (s *Base64Decoder) Close() {
	s.decode(true)
}

// DecodeBase64 decodes a whole base64 body with Base64Decoder.
func DecodeBase64(raw []byte) []byte {
	out := make([]byte, 0, base64.StdEncoding.DecodedLen(len(raw)))
	d := NewBase64Decoder(func(p []byte) { out = append(out, p...) }, nil)
	d.Write(raw)
	d.Close()
	return out
}
