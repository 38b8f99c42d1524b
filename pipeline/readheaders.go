package pipeline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ErrHeaderBlockTooLarge is wrapped when a header block passes the bound
// ReadRawHeaders was given.
var ErrHeaderBlockTooLarge = errors.New("header block too large")

// ReadRawHeaders reads the header block of a message (CRLF line ends) in
// the form Postfix hands headers to the milter under
// OptHeaderLeadingSpace: the name as written and the value exactly as it
// follows the colon, leading space included, folded lines joined by "\n"
// with their leading white space kept. `check` feeds these to the
// Transaction as the milter's callbacks do, so both see the same message.
// A leading mbox "From " line is skipped. At most limit bytes are read
// (ErrHeaderBlockTooLarge past it); r is left at the first byte of the
// body.
func ReadRawHeaders(r *bufio.Reader, limit int64) ([]policy.Header, error) {
	var hs []policy.Header
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
				return hs, fmt.Errorf("%w: line %d: continuation line before any header", policy.ErrMalformedHeader, n)
			}
			hs[len(hs)-1].Value += "\n" + trimmed
		default:
			name, value, ok := strings.Cut(trimmed, ":")
			if !ok || !validFieldName(name) {
				return hs, fmt.Errorf("%w: line %d: %q is not a header field", policy.ErrMalformedHeader, n, clip(trimmed, 60))
			}
			hs = append(hs, policy.Header{Name: name, Value: value})
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
			return b.String(), fmt.Errorf("%w: more than the limit", ErrHeaderBlockTooLarge)
		}
		frag, err := r.ReadSlice('\n')
		if int64(len(frag)) > max {
			return b.String(), fmt.Errorf("%w: more than the limit", ErrHeaderBlockTooLarge)
		}
		b.Write(frag)
		max -= int64(len(frag))
		if err == bufio.ErrBufferFull {
			continue
		}
		return b.String(), err
	}
}

// validFieldName: RFC 5322 section 3.6.8, printable US-ASCII but colon.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
