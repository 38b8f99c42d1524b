package message

import "bytes"

// Delimiter decisions of MatchDelimiter.
const (
	NoDelimiter = iota
	Delimiter
	CloseDelimiter
	NeedMore
)

// MaxPadding bounds the transport padding (RFC 2046 section 5.1.1:
// linear white space after a boundary) a delimiter line may carry: a
// longer run makes the line content.
const MaxPadding = 128

// MatchDelimiter decides whether line, which starts where a line starts,
// is a multipart delimiter line for d ("--" + boundary; RFC 2046 section
// 5.1.1): d, then "--" for the close delimiter, then at most MaxPadding
// spaces and tabs of transport padding, then a line break (CR or LF) or,
// when final (no more input follows), the end. n is the length of the
// delimiter without its line break. NeedMore says that line, not final,
// is too short to decide. The scanner and the warning rewriter both split
// with it, so that they find the same parts (issue 13 point 1).
func MatchDelimiter(line, d []byte, final bool) (st, n int) {
	if len(line) < len(d) {
		if !final && bytes.HasPrefix(d, line) {
			return NeedMore, 0
		}
		return NoDelimiter, 0
	}
	if !bytes.Equal(line[:len(d)], d) {
		return NoDelimiter, 0
	}
	k := len(d)
	closing := false
	if k < len(line) && line[k] == '-' {
		if k+1 == len(line) {
			if !final {
				return NeedMore, 0
			}
			return NoDelimiter, 0
		}
		if line[k+1] != '-' {
			return NoDelimiter, 0
		}
		closing = true
		k += 2
	}
	for k < len(line) && (line[k] == ' ' || line[k] == '\t') {
		k++
		if k-len(d) > MaxPadding {
			return NoDelimiter, 0
		}
	}
	if k == len(line) {
		if !final {
			return NeedMore, 0
		}
	} else if line[k] != '\n' && line[k] != '\r' {
		return NoDelimiter, 0
	}
	if closing {
		return CloseDelimiter, k
	}
	return Delimiter, k
}

var nlDashDash = []byte("\n--")

// Splitter finds the delimiter lines of a multipart body (RFC 2046
// section 5.1.1), streaming: a delimiter is a line break (CRLF or a bare
// LF), "--", the boundary, "--" for the close delimiter, then transport
// padding and a line break (MatchDelimiter); the line break before it
// belongs to it, and the first delimiter may open the body without one.
// Content passes on as it arrives; only a possible delimiter at the end of
// a write is held back (a bounded carry). It is the one splitter for the
// scanner (classify, which routes the content to each part) and the
// warning rewriter (notify, which records where each part is), so they
// find the same parts (issue 13 point 1). After the close delimiter
// nothing more is read.
type Splitter struct {
	// Content receives the bytes between delimiters (preamble, parts,
	// each delimiter's own line break after it); the slice is not kept.
	Content func(p []byte)
	// Delimiter is called at each delimiter line: start is the offset of
	// the line break before it (of the "--" when it opens the body), end
	// the offset after its padding (before its own line break).
	Delimiter func(start, end int64, closing bool)
	// Epilogue, when set, is called with the bytes after the close
	// delimiter (its line break included), which are otherwise dropped.
	Epilogue func(p []byte)
	// NearDelimiter, when set, is called with a line that starts with
	// "--" + boundary but is no delimiter ("--boundaryX"), as much of it
	// as is at hand. RFC 2046 section 5.1.1 forbids such lines (the
	// boundary must not appear in the parts), and parsers differ on them:
	// OpenSSL's MIME parser, for one, splits on the prefix.
	NearDelimiter func(line []byte)

	delim   []byte // "--" + boundary
	carry   []byte
	carryAt int64 // offset of carry[0]
	written int64 // bytes written so far
	done    bool
}

// NewSplitter returns a splitter for boundary, calling content and
// delimiter as it finds them.
func NewSplitter(boundary string, content func(p []byte), delimiter func(start, end int64, closing bool)) *Splitter {
	delim := []byte("--" + boundary)
	hold := len(delim) + MaxPadding + 8
	s := &Splitter{Content: content, Delimiter: delimiter, delim: delim, carry: make([]byte, 0, 2*hold+512), carryAt: -1}
	// The first delimiter may open the body without a line break before
	// it; a synthetic one (in the preamble, offset -1) makes it uniform.
	s.carry = append(s.carry, '\n')
	return s
}

// Done reports whether the close delimiter was found.
func (s *Splitter) Done() bool { return s.done }

// Write splits p, the next bytes of the body.
func (s *Splitter) Write(p []byte) {
	for len(s.carry) > 0 && len(p) > 0 && !s.done {
		k := min(len(p), cap(s.carry)-len(s.carry))
		s.carry = append(s.carry, p[:k]...)
		s.written += int64(k)
		p = p[k:]
		keep := s.process(s.carry, s.carryAt, false)
		s.carry = s.carry[:copy(s.carry, s.carry[keep:])]
		s.carryAt += int64(keep)
	}
	if len(s.carry) > 0 || len(p) == 0 || s.done {
		s.written += int64(len(p))
		if s.done && len(p) > 0 && s.Epilogue != nil {
			s.Epilogue(p)
		}
		return
	}
	at := s.written
	s.written += int64(len(p))
	keep := s.process(p, at, false)
	s.carry = append(s.carry[:0], p[keep:]...)
	s.carryAt = at + int64(keep)
}

// Close ends the body: what was held back is decided as the end of the
// input (a last delimiter without its line break is one).
func (s *Splitter) Close() {
	if len(s.carry) > 0 && !s.done {
		s.process(s.carry, s.carryAt, true)
	}
	s.carry = s.carry[:0]
}

// process splits b, which starts at offset at, and returns the offset in
// b from which bytes are held back.
func (s *Splitter) process(b []byte, at int64, final bool) int {
	i := 0
	for i < len(b) {
		if s.done {
			if s.Epilogue != nil {
				s.Epilogue(b[i:])
			}
			return len(b)
		}
		j := bytes.Index(b[i:], nlDashDash)
		if j < 0 {
			end := len(b)
			if !final {
				end -= partialDelimiter(b[i:])
			}
			s.content(b[i:end], at+int64(i))
			return end
		}
		nl := i + j
		ls := nl + 1
		st, n := MatchDelimiter(b[ls:], s.delim, final)
		switch st {
		case NoDelimiter:
			// What comes before the line first: a part's header there may
			// declare the nested multipart whose delimiter the line is.
			s.content(b[i:ls], at+int64(i))
			if s.NearDelimiter != nil && bytes.HasPrefix(b[ls:], s.delim) {
				line := b[ls:]
				if k := bytes.IndexAny(line, "\r\n"); k >= 0 {
					line = line[:k]
				}
				s.NearDelimiter(line)
			}
			i = ls
		case NeedMore:
			start := nl
			if start > i && b[start-1] == '\r' {
				start--
			}
			s.content(b[i:start], at+int64(i))
			return start
		default:
			end := nl
			if end > i && b[end-1] == '\r' {
				end--
			}
			s.content(b[i:end], at+int64(i))
			s.done = st == CloseDelimiter
			s.Delimiter(max(at+int64(end), 0), at+int64(ls+n), s.done)
			i = ls + n
		}
	}
	return len(b)
}

// content passes p on, without the synthetic line break at offset -1.
func (s *Splitter) content(p []byte, at int64) {
	if at < 0 && len(p) > 0 {
		p = p[1:]
	}
	if len(p) > 0 {
		s.Content(p)
	}
}

// partialDelimiter returns the length of the end of b that may begin a
// delimiter ("\r", "\n", "\r\n", "\n-", "\r\n-").
func partialDelimiter(b []byte) int {
	n := len(b)
	switch {
	case n >= 3 && b[n-3] == '\r' && b[n-2] == '\n' && b[n-1] == '-':
		return 3
	case n >= 2 && b[n-2] == '\n' && b[n-1] == '-':
		return 2
	case n >= 2 && b[n-2] == '\r' && b[n-1] == '\n':
		return 2
	case n >= 1 && (b[n-1] == '\n' || b[n-1] == '\r'):
		return 1
	}
	return 0
}
