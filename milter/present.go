package milter

import (
	"fmt"
	"io"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// presentWarning renders the warning step tr on the message (R76-R80):
// header edits relative to the original headers and, for wrap and
// prepend, a new body streamed from the spool. The engine graded the
// warning (R199, R108) and chose the mode; this only renders it.
func presentWarning(p *policy.Policy, tr policy.Transform, hs []policy.Header, body io.Reader) (*notify.Result, error) {
	mode := notify.ModeWrap
	switch tr.Kind {
	case policy.TransformWarnPrepend:
		mode = notify.ModePrepend
	case policy.TransformWarnHeader:
		mode = notify.ModeHeader
	}
	opts := notify.Options{Mode: mode, Code: tr.Code, Gateway: p.AuthservID}
	if p.Inbound.WarningLink != "" {
		opts.Text.Link = notify.LinkFor(p.Inbound.WarningLink, tr.Code)
	}
	res, err := notify.ApplyParts(opts, hs, body)
	if err != nil {
		return nil, fmt.Errorf("warning %s (%s): %w", tr.Code, mode, err)
	}
	return res, nil
}
