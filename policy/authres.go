package policy

import (
	"fmt"

	"github.com/nzsecure-milter/nzsecure-milter/auth/authres"
)

// AuthResultsHeader records the sender checks (RFC 8601).
const AuthResultsHeader = "Authentication-Results"

// checkList flattens the SPF-family checks that ran, in stage order.
func checkList(mc MailChecks, hc HeaderChecks) []AuthCheck {
	all := [...]*AuthCheck{mc.SPF, mc.SPFHelo, mc.SenderIDMF, hc.SenderIDPRA}
	n := 0
	for _, c := range all {
		if c != nil {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	// One allocation of the right size: this runs at every stage of
	// every message (issue 13 point 7).
	out := make([]AuthCheck, 0, n)
	for _, c := range all {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// Bounds of what Authentication-Results repeats from the message, so that
// the header stays far below the milter protocol's 64 KiB packet whatever
// the message holds (issue 12 point 9): at most MaxAuthResultsDKIM
// signatures, each value clipped. The DKIM verifier evaluates at most
// dkim.DefaultMaxSignatures (10) signatures anyway; the rest are neutral.
const (
	MaxAuthResultsDKIM = 10
	maxARName          = 255 // a domain name or selector
	maxARHeaderB       = 64  // RFC 6008: a prefix of at least 8 characters
	maxARValue         = 200 // a reason
	maxARIdentity      = 512 // an address
)

// authResults is the Authentication-Results value for the checks that ran
// (RFC 8601 section 2.2), "" when none ran. The writer (auth/authres)
// quotes and escapes every attacker-chosen value.
func (p *Policy) authResults(t Transaction) string {
	var rs []authres.Result
	if r := t.Mail.SPF; r != nil {
		rs = append(rs, authres.SPF(string(r.Result), clip(r.Identity, maxARIdentity), "", ""))
	}
	if r := t.Mail.SPFHelo; r != nil {
		rs = append(rs, authres.SPF(string(r.Result), "", clip(t.Conn.HELO, maxARName), ""))
	}
	if r := t.Header.SenderIDPRA; r != nil {
		field := r.Field
		if field == "" {
			field = "from"
		}
		rs = append(rs, authres.SenderID(string(r.Result), field, clip(r.Identity, maxARIdentity), ""))
	}
	for i, d := range t.Message.DKIM {
		if i == MaxAuthResultsDKIM {
			// Issue 12 point 9: a flood of signatures must not make a
			// header larger than a milter packet (64 KiB).
			rs[len(rs)-1].Comment = fmt.Sprintf("and %d more signatures not listed", len(t.Message.DKIM)-i)
			break
		}
		res := authres.Result{Method: "dkim", Value: string(d.Result), Reason: clip(d.Detail, maxARValue)}
		for _, pr := range []authres.Prop{{Type: "header", Property: "d", Value: clip(d.Domain, maxARName)}, {Type: "header", Property: "s", Value: clip(d.Selector, maxARName)}, {Type: "header", Property: "b", Value: clip(d.HeaderB, maxARHeaderB)}} {
			if pr.Value != "" {
				res.Props = append(res.Props, pr)
			}
		}
		rs = append(rs, res)
	}
	if d := t.Message.DMARC; d != nil {
		res := authres.Result{Method: "dmarc", Value: string(d.Result), Reason: clip(d.Reason, maxARValue),
			Props: []authres.Prop{{Type: "header", Property: "from", Value: clip(d.FromDomain, maxARName)}}}
		if d.Published != "" {
			res.Props = append(res.Props, authres.Prop{Type: "policy", Property: "dmarc", Value: d.Published})
		}
		rs = append(rs, res)
	}
	rs = append(rs, p.smimeAuthResult(t)...)
	if len(rs) == 0 {
		return ""
	}
	return authres.FormatFolded(p.AuthservID, "\n\t", rs...)
}

// stripForgedAuthResults removes every Authentication-Results header whose
// authserv-id is ours (RFC 8601 section 5): only this gateway may speak for
// itself. Last first, so the per-name indexes stay valid.
func (p *Policy) stripForgedAuthResults(v *Verdict, hs []Header) {
	n := v.deleteWhere(hs, AuthResultsHeader, func(value string) bool {
		return authres.ClaimsAuthservID(unfold(value), p.AuthservID)
	})
	if n > 0 {
		v.reason("removed %d %s header(s) claiming our authserv-id %s (RFC 8601 section 5)", n, AuthResultsHeader, p.AuthservID)
	}
}
