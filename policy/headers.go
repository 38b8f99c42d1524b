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

// WarningHeader is the header of the inbound warnings (R79), written by
// notify (notify.WarningHeader).
const WarningHeader = "X-NZ-Secure-Warning"

// ourHeaders are the headers only this gateway writes: a client's copy is
// a forgery (issue 12 point 8) that a reader, a later filter or our own
// R79 check would take for ours. Authentication-Results is ours only with
// our authserv-id (stripForgedAuthResults).
var ourHeaders = []string{SecureEmailHeader, TimesHeader, WarningHeader, RouteHeader}

// IsOurHeader reports whether a header of this name (any case, white space
// before the colon ignored) is one only this gateway writes.
func IsOurHeader(name string) bool {
	name = strings.TrimRight(name, " \t")
	for _, o := range ourHeaders {
		if strings.EqualFold(name, o) {
			return true
		}
	}
	return false
}

// stripOurHeaders removes every client-supplied copy of the headers only
// this gateway writes, inbound and outbound: X-NZ-Secure-email (R60),
// X-NZ-Secure-Gateway (R100), X-NZ-Secure-Warning (R79),
// X-NZ-Secure-Route. Ours are added after, so they are the only ones.
func stripOurHeaders(v *Verdict, hs []Header) {
	if n := v.deleteAll(hs, SecureEmailHeader); n > 0 {
		v.reason("removed %d client-supplied %s header(s) (R60)", n, SecureEmailHeader)
	}
	for _, name := range ourHeaders[1:] {
		if n := v.deleteAll(hs, name); n > 0 {
			v.reason("removed %d client-supplied %s header(s): only this gateway writes it", n, name)
		}
	}
}
