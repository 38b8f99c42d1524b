package milter

import (
	"fmt"
	"io"

	nzmsg "github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Warning is how a verdict's warning reaches the recipient, after the list
// and workspace rules (R199, R108) graded it.
type Warning struct {
	Code     string
	Mode     notify.Mode // "" when graded away
	Severity notify.Severity
}

// GradeWarning applies R199 (list-server mail: 002/005 are soft, shown as
// a header only) and R108 (trusted list domains: no 002/005) to a verdict's
// warning. `check` and the milter both use it.
func GradeWarning(p *policy.Policy, v policy.Verdict, hs []policy.Header) Warning {
	if v.WarningCode == "" || v.WarningMode == "" {
		return Warning{}
	}
	w := Warning{Code: v.WarningCode, Mode: notify.Mode(v.WarningMode)}
	workspace := false
	if ws, err := notify.NewWorkspace(p.Inbound.TrustedLists); err == nil {
		// R108 downgrades only a From: that names one author and no other
		// domain anywhere (issue 12: an ambiguous or impersonating From:
		// keeps its warning).
		a := nzmsg.Authors(policy.HeaderValues(hs, "From"))
		if m, ok := a.Author(); ok && len(a.Candidates) == 1 {
			workspace = ws.Contains(m.Address())
		}
	}
	w.Severity = notify.Grade(w.Code, notify.IsListMail(hs), workspace, true)
	switch w.Severity {
	case notify.SeverityNone:
		w.Mode = ""
	case notify.SeveritySoft:
		w.Mode = notify.ModeHeader
	}
	return w
}

// presentWarning renders the warning on the message (R76-R80): header edits
// relative to the original headers and, for wrap and prepend, a new body
// streamed from the spool.
func presentWarning(p *policy.Policy, w Warning, hs []policy.Header, body io.Reader) (*notify.Result, error) {
	opts := notify.Options{Mode: w.Mode, Code: w.Code, Gateway: p.AuthservID}
	if p.Inbound.WarningLink != "" {
		opts.Text.Link = notify.LinkFor(p.Inbound.WarningLink, w.Code)
	}
	res, err := notify.ApplyParts(opts, hs, body)
	if err != nil {
		return nil, fmt.Errorf("warning %s (%s): %w", w.Code, w.Mode, err)
	}
	return res, nil
}
