package policy

import (
	"bufio"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// ErrMalformedHeader is wrapped by ReadHeaders' errors
// (message.ErrMalformedHeader).
var ErrMalformedHeader = message.ErrMalformedHeader

// maxHeaderBlock bounds the header block ReadHeaders will hold.
const maxHeaderBlock = 1 << 20

// ReadHeaders reads the header block of an RFC 5322 message from r, in the
// form the MTA hands headers to a milter: the name as written, the value
// after the colon with leading blanks removed, and folded lines joined by
// "\n" with their leading white space kept. CRLF and bare LF line ends are
// both accepted. r is left at the first byte of the body. It is
// message.ReadHeaderBlock with the leading blanks taken off.
func ReadHeaders(r *bufio.Reader) ([]Header, error) {
	hs, err := message.ReadHeaderBlock(r, maxHeaderBlock)
	for i := range hs {
		hs[i].Value = strings.TrimLeft(hs[i].Value, " \t")
	}
	return hs, err
}

// unfold removes the line breaks of a folded header value (RFC 5322
// section 2.2.3), keeping the white space that follows them
// (message.Unfold, which also drops a bare CR).
func unfold(v string) string { return message.Unfold(v) }

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
