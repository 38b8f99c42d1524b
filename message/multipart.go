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
