package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrMalformedHeader is wrapped by ReadHeaders' errors.
var ErrMalformedHeader = errors.New("malformed header")

// maxHeaderBlock bounds the header block ReadHeaders will hold.
const maxHeaderBlock = 1 << 20

// ReadHeaders reads the header block of an RFC 5322 message from r, in the
// form the MTA hands headers to a milter: the name as written, the value
// after the colon with leading blanks removed, and folded lines joined by
// "\n" with their leading white space kept. CRLF and bare LF line ends are
// both accepted. r is left at the first byte of the body.
func ReadHeaders(r *bufio.Reader) ([]Header, error) {
	var hs []Header
	total := 0
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		total += len(line)
		if total > maxHeaderBlock {
			return hs, fmt.Errorf("%w: header block is larger than %d bytes", ErrMalformedHeader, maxHeaderBlock)
		}
		if err != nil && err != io.EOF {
			return hs, err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		switch {
		case trimmed == "":
			return hs, nil // the blank line that ends the header block, or end of input
		case n == 1 && strings.HasPrefix(trimmed, "From "):
			// An mbox separator line, as saved by many mail clients: not a header.
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if len(hs) == 0 {
				return hs, fmt.Errorf("%w: line %d: continuation line before any header", ErrMalformedHeader, n)
			}
			hs[len(hs)-1].Value += "\n" + trimmed
		default:
			name, value, ok := strings.Cut(trimmed, ":")
			if !ok || !validFieldName(name) {
				return hs, fmt.Errorf("%w: line %d: %q is not a header field", ErrMalformedHeader, n, clip(trimmed, 60))
			}
			hs = append(hs, Header{Name: name, Value: strings.TrimLeft(value, " \t")})
		}
		if err == io.EOF {
			return hs, nil
		}
	}
}

// unfold removes the line breaks of a folded header value (RFC 5322
// section 2.2.3), keeping the white space that follows them.
func unfold(v string) string {
	return strings.NewReplacer("\r\n", "", "\n", "").Replace(v)
}

// validFieldName: RFC 5322 section 3.6.8, ftext is printable US-ASCII but colon.
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
