package classify

import (
	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// newTransferStage returns the stage decoding a Content-Transfer-Encoding
// (RFC 2045 section 6) into next, or next itself for identity encodings.
// The decoders are message's, shared with the warning rewriter (notify).
func newTransferStage(ctx *scanCtx, cte, where string, next stage) stage {
	mech, exact := message.TransferEncoding(cte)
	if !exact && mech != "" {
		ctx.col.problem("%s: Content-Transfer-Encoding %q read as %q, as mail clients read it", where, message.Clip(cte, 40), mech)
	}
	switch mech {
	case "", "7bit", "8bit", "binary":
		return next
	case "quoted-printable":
		// A malformed escape stays readable: it passes through
		// literally, as mail clients show it (RFC 2045 section 6.7 note
		// 2), so nothing is dropped.
		return &decodeStage{next: next, dec: message.NewQPDecoder(next.write, func() {
			ctx.col.problem("%s: malformed quoted-printable", where)
		})}
	case "base64":
		// Issue 11 point 1: bytes of the part are dropped, and what
		// follows them decodes in step only if they were inserted junk;
		// clients differ (some skip them, some stop), so the text read
		// may not be what the reader sees.
		return &decodeStage{next: next, dec: message.NewBase64Decoder(next.write, func() {
			ctx.col.unreadable("%s: invalid base64 characters ignored", where)
		})}
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

// sameTransferEncoding: two Content-Transfer-Encoding values name the same
// mechanism (a second field that does is no conflict).
func sameTransferEncoding(a, b string) bool {
	ma, _ := message.TransferEncoding(a)
	mb, _ := message.TransferEncoding(b)
	return ma == mb
}

// outBufSize is the output buffer of the scanner's decoding stages.
const outBufSize = 8 << 10

// decodeStage runs a transfer decoder (message.QPDecoder or
// message.Base64Decoder) in front of next, streaming.
type decodeStage struct {
	next stage
	dec  interface {
		Write([]byte)
		Close()
	}
}

func (s *decodeStage) write(p []byte) { s.dec.Write(p) }

func (s *decodeStage) close() {
	s.dec.Close()
	s.next.close()
}
