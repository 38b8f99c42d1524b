package message

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrMalformedHeader is wrapped when a header block is not RFC 5322.
var ErrMalformedHeader = errors.New("malformed header")

// ErrHeaderBlockTooLarge is wrapped when a header block passes the bound
// ReadHeaderBlock was given (with ErrMalformedHeader: what cannot be read
// whole is not a header block this gateway accepts).
var ErrHeaderBlockTooLarge = errors.New("header block too large")

// ReadHeaderBlock reads the header block of a message in the form Postfix
// hands headers to a milter under OptHeaderLeadingSpace: the name as
// written and the value exactly as it follows the colon, leading space
// included, folded lines joined by "\n" with their leading white space
// kept (RFC 5322 section 2.2.3). CRLF and bare LF line ends are both
// accepted; a leading mbox "From " line is skipped. At most limit bytes
// are read, so memory stays bounded (ErrHeaderBlockTooLarge past it); r
// is left at the first byte of the body. It is the one header-block
// reader for `check`, the tests and the engine's helpers (issue 13).
func ReadHeaderBlock(r *bufio.Reader, limit int64) ([]Header, error) {
	var hs []Header
	var total int64
	for n := 1; ; n++ {
		line, err := readLine(r, limit-total)
		total += int64(len(line))
		if err != nil && err != io.EOF {
			return hs, err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		switch {
		case trimmed == "":
			return hs, nil // the blank line that ends the block, or end of input
		case n == 1 && strings.HasPrefix(trimmed, "From "):
			// An mbox separator line, as mail clients save it: not a header.
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if len(hs) == 0 {
				return hs, fmt.Errorf("%w: line %d: continuation line before any header", ErrMalformedHeader, n)
			}
			hs[len(hs)-1].Value += "\n" + trimmed
		default:
			name, value, ok := strings.Cut(trimmed, ":")
			if !ok || !ValidFieldName(name) {
				return hs, fmt.Errorf("%w: line %d: %q is not a header field", ErrMalformedHeader, n, Clip(trimmed, 60))
			}
			hs = append(hs, Header{Name: name, Value: value})
		}
		if err == io.EOF {
			return hs, nil
		}
	}
}

// readLine reads one line of at most max bytes.
func readLine(r *bufio.Reader, max int64) (string, error) {
	var b strings.Builder
	for {
		if max <= 0 {
			return b.String(), fmt.Errorf("%w (%w): more than the limit", ErrHeaderBlockTooLarge, ErrMalformedHeader)
		}
		frag, err := r.ReadSlice('\n')
		if int64(len(frag)) > max {
			return b.String(), fmt.Errorf("%w (%w): more than the limit", ErrHeaderBlockTooLarge, ErrMalformedHeader)
		}
		b.Write(frag)
		max -= int64(len(frag))
		if err == bufio.ErrBufferFull {
			continue
		}
		return b.String(), err
	}
}

// ValidFieldName reports whether name is a header field name: RFC 5322
// section 3.6.8, printable US-ASCII except colon.
func ValidFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
