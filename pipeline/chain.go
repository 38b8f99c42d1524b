package pipeline

import (
	"fmt"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Body transforms as a chain (issue 13 point 4, DESIGN.md "One SMTP
// transaction"): each step reads the current message (the headers after
// every earlier edit, the body from a spool) and gives its header edits and
// perhaps a new body, which is spooled for the next step. What leaves is
// the net list of header edits, in order, and one body replacement, so
// DKIM, always last, signs the final form.

// Current is the message as the chain has it before a step.
type Current struct {
	// Headers as the MTA will hold them after the earlier steps (values
	// as received, or as added, folds as "\n" or "\r\n").
	Headers []policy.Header
	// Body returns a fresh reader of the current body (CRLF line ends).
	Body func() io.Reader
}

// Change is what one step does: header edits relative to Current.Headers,
// applied in order, and the new body (nil: unchanged).
type Change struct {
	Edits []policy.HeaderEdit
	Body  io.Reader
	// Signatures is the number of DKIM signatures the step added, for the
	// decision log.
	Signatures int
}

// Step is one body transform.
type Step interface {
	Run(cur Current) (Change, error)
}

// Output is the result of the chain: the net edits relative to the
// headers as received, to apply in order, and the final body.
type Output struct {
	Edits []policy.HeaderEdit
	// Headers are the final headers (the received ones with Edits applied).
	Headers []policy.Header
	// Signatures is the number of DKIM signatures added.
	Signatures int
	body       *Spool // nil: the body is unchanged
	orig       *Spool
}

// Body returns the replacement body, nil when the body is unchanged.
func (o *Output) Body() io.Reader {
	if o.body == nil {
		return nil
	}
	return o.body.Reader()
}

// WriteTo writes the whole message as it leaves the gateway: the final
// header block, then the final body (`check --output`).
func (o *Output) WriteTo(w io.Writer) (int64, error) {
	body := o.orig
	if o.body != nil {
		body = o.body
	}
	return io.Copy(w, io.MultiReader(HeaderBlock(o.Headers), body.Reader()))
}

// RunChain runs steps on the message whose received headers are hs and
// whose body is in body, after the verdict's own header edits. newSpool
// gives the spool each new body goes to; every spool it gives is added to
// *spools, for the caller to close.
func RunChain(hs []policy.Header, edits []policy.HeaderEdit, body *Spool, steps []Step, newSpool func() *Spool, spools *[]*Spool) (*Output, error) {
	out := &Output{Edits: append([]policy.HeaderEdit(nil), edits...), orig: body}
	cur := policy.ApplyEdits(hs, edits)
	curBody := body
	for _, st := range steps {
		ch, err := st.Run(Current{Headers: cur, Body: curBody.Reader})
		if err != nil {
			return nil, err
		}
		out.Edits = append(out.Edits, ch.Edits...)
		out.Signatures += ch.Signatures
		cur = policy.ApplyEdits(cur, ch.Edits)
		if ch.Body != nil {
			next := newSpool()
			*spools = append(*spools, next)
			if _, err := io.Copy(next, ch.Body); err != nil {
				return nil, fmt.Errorf("spooling the transformed body: %w", err)
			}
			curBody, out.body = next, next
		}
	}
	out.Headers = cur
	return out, nil
}

// WarnStep renders a graded warning (R76-R80) in the mode the engine chose.
type WarnStep struct {
	Policy    *policy.Policy
	Transform policy.Transform
	// Evidence are the headers of the original the warning refers to and
	// wrap attaches: the headers as received without client-supplied
	// X-NZ-Secure-Warning (issue 12 point 8: forged warnings must not make
	// notify refuse a second warning, R79; other forged headers stay as
	// evidence). nil: the current headers. The edits the step returns
	// touch only MIME-Version, Content-* and X-NZ-Secure-Warning, which no
	// earlier step changes, so their per-name indexes hold for the current
	// headers too.
	Evidence []policy.Header
}

func (w WarnStep) Run(cur Current) (Change, error) {
	hs := w.Evidence
	if hs == nil {
		hs = WithoutForgedWarnings(cur.Headers)
	}
	mode := notify.ModeWrap
	switch w.Transform.Kind {
	case policy.TransformWarnPrepend:
		mode = notify.ModePrepend
	case policy.TransformWarnHeader:
		mode = notify.ModeHeader
	}
	opts := notify.Options{Mode: mode, Code: w.Transform.Code, Gateway: w.Policy.AuthservID}
	if w.Policy.Inbound.WarningLink != "" {
		opts.Text.Link = notify.LinkFor(w.Policy.Inbound.WarningLink, w.Transform.Code)
	}
	res, err := notify.ApplyParts(opts, hs, cur.Body())
	if err != nil {
		return Change{}, fmt.Errorf("warning %s (%s): %w", w.Transform.Code, mode, err)
	}
	// notify's edits are message.HeaderEdit, the engine's type: no
	// translation between two edit types (issue 13 point 1).
	return Change{Body: res.Body, Edits: res.Edits}, nil
}

// SignStep adds the DKIM signatures of one domain (G-DKIM) over the
// current message; the engine lists it last, so it covers the final form.
type SignStep struct {
	Signer *dkim.Signer
}

func (s SignStep) Run(cur Current) (Change, error) {
	if s.Signer == nil {
		return Change{}, nil
	}
	values, err := s.Signer.Sign(io.MultiReader(HeaderBlock(cur.Headers), cur.Body()))
	if err != nil {
		return Change{}, fmt.Errorf("DKIM signing: %w", err)
	}
	ch := Change{Signatures: len(values)}
	for _, val := range values {
		// Inserted at the top, as a signature is read before what it covers
		// (RFC 6376 section 5.6).
		ch.Edits = append(ch.Edits, policy.HeaderEdit{Op: policy.OpInsert, Index: 0, Name: "DKIM-Signature", Value: strings.ReplaceAll(val, "\r\n", "\n")})
	}
	return ch, nil
}

// WithoutForgedWarnings drops the client-supplied X-NZ-Secure-Warning
// headers: the verdict deletes them (every header only this gateway
// writes, policy.IsOurHeader), so the warning is rendered as if they were
// not there (issue 12 point 8). Per-name indexes of other headers are
// unchanged.
func WithoutForgedWarnings(hs []policy.Header) []policy.Header {
	out := make([]policy.Header, 0, len(hs))
	for _, h := range hs {
		if !strings.EqualFold(strings.TrimRight(h.Name, " \t"), policy.WarningHeader) {
			out = append(out, h)
		}
	}
	return out
}
