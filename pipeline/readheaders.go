package pipeline

import (
	"bufio"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ErrHeaderBlockTooLarge is wrapped when a header block passes the bound
// ReadRawHeaders was given (message.ErrHeaderBlockTooLarge).
var ErrHeaderBlockTooLarge = message.ErrHeaderBlockTooLarge

// ReadRawHeaders reads the header block of a message (CRLF line ends) in
// the form Postfix hands headers to the milter under
// OptHeaderLeadingSpace (message.ReadHeaderBlock): the name as written and
// the value exactly as it follows the colon, leading space included,
// folded lines joined by "\n" with their leading white space kept. `check`
// feeds these to the Transaction as the milter's callbacks do, so both see
// the same message. A leading mbox "From " line is skipped. At most limit
// bytes are read (ErrHeaderBlockTooLarge past it); r is left at the first
// byte of the body.
func ReadRawHeaders(r *bufio.Reader, limit int64) ([]policy.Header, error) {
	return message.ReadHeaderBlock(r, limit)
}
