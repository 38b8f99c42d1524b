package policy

import (
	"context"
	"io"
)

// Evaluate runs every stage on a whole transaction, calling ck for the
// checks the policy wants: the first verdict that ends the transaction,
// else the end-of-message one. A test helper: serve and check drive the
// stages through package pipeline (issue 13 point 3).
//
// message returns a fresh reader of the whole message (CRLF line ends),
// for DKIM and DMARC.
func (p *Policy) Evaluate(ctx context.Context, t Transaction, ck Checker, message func() io.Reader) Verdict {
	w := p.Wants(t.Conn, t.Envelope)
	t.Mail = ck.Mail(ctx, w, t.Conn, t.Envelope)
	v := p.AtMailFrom(t.Conn, t.Envelope, t.Mail)
	if !v.Final() {
		t.Header = ck.Headers(ctx, w, t.Conn, t.Envelope, t.Mail, t.Headers)
		v = p.AtHeaders(t, t.Header)
	}
	if !v.Final() {
		if w.DKIM || w.DMARC {
			t.Message = ck.Message(ctx, w, t.Conn, t.Envelope, t.Headers, t.Mail, message())
		}
		return p.AtEndOfMessage(t)
	}
	v.Classification, v.Unreadable = t.Classification, t.Unreadable
	if v.Classification == "" {
		v.Classification = Unclassified
	}
	return v
}
