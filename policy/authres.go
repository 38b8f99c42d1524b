package policy

import (
	"github.com/nzsecure-milter/nzsecure-milter/auth/authres"
)

// AuthResultsHeader records the sender checks (RFC 8601).
const AuthResultsHeader = "Authentication-Results"

// checkList flattens the SPF-family checks that ran, in stage order.
func checkList(mc MailChecks, hc HeaderChecks) []AuthCheck {
	var out []AuthCheck
	for _, c := range []*AuthCheck{mc.SPF, mc.SPFHelo, mc.SenderIDMF, hc.SenderIDPRA} {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// authResults is the Authentication-Results value for the checks that ran
// (RFC 8601 section 2.2), "" when none ran. The writer (auth/authres)
// quotes and escapes every attacker-chosen value.
func (p *Policy) authResults(t Transaction) string {
	var rs []authres.Result
	if r := t.Mail.SPF; r != nil {
		rs = append(rs, authres.SPF(r.Result, r.Identity, "", ""))
	}
	if r := t.Mail.SPFHelo; r != nil {
		rs = append(rs, authres.SPF(r.Result, "", t.Conn.HELO, ""))
	}
	if r := t.Header.SenderIDPRA; r != nil {
		field := r.Field
		if field == "" {
			field = "from"
		}
		rs = append(rs, authres.SenderID(r.Result, field, r.Identity, ""))
	}
	for _, d := range t.Message.DKIM {
		res := authres.Result{Method: "dkim", Value: d.Result, Reason: d.Detail}
		for _, pr := range []authres.Prop{{Type: "header", Property: "d", Value: d.Domain}, {Type: "header", Property: "s", Value: d.Selector}, {Type: "header", Property: "b", Value: d.HeaderB}} {
			if pr.Value != "" {
				res.Props = append(res.Props, pr)
			}
		}
		rs = append(rs, res)
	}
	if d := t.Message.DMARC; d != nil {
		res := authres.Result{Method: "dmarc", Value: d.Result, Reason: d.Reason,
			Props: []authres.Prop{{Type: "header", Property: "from", Value: d.FromDomain}}}
		if d.Published != "" {
			res.Props = append(res.Props, authres.Prop{Type: "policy", Property: "dmarc", Value: d.Published})
		}
		rs = append(rs, res)
	}
	if len(rs) == 0 {
		return ""
	}
	return authres.FormatFolded(p.AuthservID, "\n\t", rs...)
}

// stripForgedAuthResults removes every Authentication-Results header whose
// authserv-id is ours (RFC 8601 section 5): only this gateway may speak for
// itself. Last first, so the per-name indexes stay valid.
func (p *Policy) stripForgedAuthResults(v *Verdict, hs []Header) {
	values := HeaderValues(hs, AuthResultsHeader)
	n := 0
	for i := len(values); i >= 1; i-- {
		if authres.ClaimsAuthservID(unfold(values[i-1]), p.AuthservID) {
			v.Edits = append(v.Edits, HeaderEdit{Op: OpDelete, Name: AuthResultsHeader, Index: i, Value: values[i-1]})
			n++
		}
	}
	if n > 0 {
		v.reason("removed %d %s header(s) claiming our authserv-id %s (RFC 8601 section 5)", n, AuthResultsHeader, p.AuthservID)
	}
}
