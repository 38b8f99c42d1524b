package classify

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// newTransferStage returns the stage decoding a Content-Transfer-Encoding
// (RFC 2045 section 6) into next, or next itself for identity encodings.
func newTransferStage(ctx *scanCtx, cte, where string, next stage) stage {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return next
	case "quoted-printable":
		return &qpStage{ctx: ctx, where: where, next: next, out: make([]byte, 0, outBufSize)}
	case "base64":
		return &b64Stage{ctx: ctx, where: where, next: next, acc: make([]byte, 0, b64AccSize)}
	case "x-uuencode", "uuencode", "x-uue":
		// Thunderbird decodes these (non-standard) encodings, so the raw
		// text is not what the reader sees; the scanner does not decode
		// them (issue 11 point 1).
		ctx.col.unreadable("%s: Content-Transfer-Encoding %q not decoded", where, message.Clip(cte, 40))
		return next
	default:
		// Readable: mail clients show a part in an unknown encoding as it
		// is (RFC 2045 section 6.4 lets them treat it as application/
		// octet-stream; Thunderbird and Outlook display the raw text), and
		// the scanner reads those same raw bytes.
		ctx.col.problem("%s: unknown Content-Transfer-Encoding %q, read as 8bit", where, message.Clip(cte, 40))
		return next
	}
}

const outBufSize = 8 << 10

// qpStage decodes quoted-printable (RFC 2045 section 6.7), streaming. A
// soft line break ("=" at the end of a line, with optional transport
// padding before the line break) disappears, even inside a word:
// "[SEC=\r\nRET]" is "[SECRET]". Malformed escapes pass through literally.
type qpStage struct {
	ctx   *scanCtx
	where string
	next  stage
	out   []byte
	st    int  // qpText, qpEq, qpHex, qpSoftWS, qpSoftCR
	hi    byte // first hex digit in qpHex
	ws    int  // whitespace bytes after '=' in qpSoftWS
}

const (
	qpText = iota
	qpEq
	qpHex
	qpSoftWS
	qpSoftCR
)

func (q *qpStage) emit(b ...byte) {
	if len(q.out)+len(b) > cap(q.out) {
		q.flush()
	}
	q.out = append(q.out, b...)
}

func (q *qpStage) flush() {
	if len(q.out) > 0 {
		q.next.write(q.out)
		q.out = q.out[:0]
	}
}

// bad reports a malformed escape. It stays readable: the escape passes
// through literally, as mail clients show it (RFC 2045 section 6.7 note
// 2), so nothing is dropped.
func (q *qpStage) bad() {
	q.flush() // the decoded text before the fault goes first
	q.ctx.col.problem("%s: malformed quoted-printable", q.where)
}

func (q *qpStage) write(p []byte) {
	for len(p) > 0 {
		if q.st == qpText {
			i := bytes.IndexByte(p, '=')
			if i < 0 {
				i = len(p)
			}
			// Copy the literal run in buffer-sized pieces.
			for run := p[:i]; len(run) > 0; {
				if len(q.out) == cap(q.out) {
					q.flush()
				}
				n := min(len(run), cap(q.out)-len(q.out))
				q.out = append(q.out, run[:n]...)
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
				q.st, q.ws = qpSoftWS, 1
			default:
				if _, ok := message.Unhex(c); ok {
					q.st, q.hi = qpHex, c
				} else {
					q.bad()
					q.emit('=')
					q.st, used = qpText, false
				}
			}
		case qpHex:
			h, _ := message.Unhex(q.hi)
			if l, ok := message.Unhex(c); ok {
				q.emit(h<<4 | l)
				q.st = qpText
			} else {
				q.bad()
				q.emit('=', q.hi)
				q.st, used = qpText, false
			}
		case qpSoftWS:
			switch c {
			case ' ', '\t':
				q.ws++
			case '\r':
				q.st = qpSoftCR
			case '\n':
				q.st = qpText
			default: // "= x": not a soft break after all
				q.bad()
				q.emit('=')
				for ; q.ws > 0; q.ws-- {
					if q.ws < 80 {
						q.emit(' ')
					}
				}
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

func (q *qpStage) close() {
	switch q.st {
	case qpEq, qpSoftWS, qpSoftCR: // a trailing "=": a soft break
	case qpHex:
		q.emit('=', q.hi)
	}
	q.flush()
	q.next.close()
}

// b64Stage decodes base64 (RFC 2045 section 6.8), streaming. Characters
// outside the alphabet (line breaks, spaces) are ignored as the RFC says;
// '=' padding ends a quantum, and decoding resumes after it (concatenated
// encodings). Clean lines are decoded with encoding/base64 in bulk.
type b64Stage struct {
	ctx     *scanCtx
	where   string
	next    stage
	acc     []byte // base64 characters not yet decoded
	dec     []byte
	bad     bool
	bits    uint32 // slow path: pending bits
	nbits   uint
	padSeen bool
}

const b64AccSize = 16 << 10

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

func (s *b64Stage) write(p []byte) {
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
func (s *b64Stage) decode(final bool) {
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
			s.next.write(s.dec[:m])
			s.consume(n)
			return
		}
	}
	s.slow(src)
	s.consume(n)
}

func (s *b64Stage) consume(n int) {
	s.acc = s.acc[:copy(s.acc, s.acc[n:])]
}

// slow decodes byte by byte, skipping junk and restarting after padding.
func (s *b64Stage) slow(src []byte) {
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
					s.next.write(out)
					out = out[:0]
				}
				// Issue 11 point 1: bytes of the part are dropped, and
				// what follows them decodes in step only if they were
				// inserted junk; clients differ (some skip them, some
				// stop), so the text read may not be what the reader sees.
				s.ctx.col.unreadable("%s: invalid base64 characters ignored", s.where)
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
		s.next.write(out)
	}
	s.dec = out[:0]
}

func (s *b64Stage) close() {
	s.decode(true)
	s.next.close()
}
