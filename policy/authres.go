package policy

import (
	"strings"
)

// AuthResultsHeader records the sender checks (RFC 8601).
const AuthResultsHeader = "Authentication-Results"

// checkList flattens the checks that ran, in stage order.
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
// (RFC 8601 section 2.2), "" when none ran.
func (p *Policy) authResults(t Transaction) string {
	var parts []string
	if r := t.Mail.SPF; r != nil {
		parts = append(parts, "spf="+r.Result+" smtp.mailfrom="+arValue(r.Identity))
	}
	if r := t.Mail.SPFHelo; r != nil {
		parts = append(parts, "spf="+r.Result+" smtp.helo="+arValue(r.Identity))
	}
	if r := t.Header.SenderIDPRA; r != nil {
		parts = append(parts, "sender-id="+r.Result+" header.from="+arValue(r.Identity))
	}
	if len(parts) == 0 {
		return ""
	}
	return p.AuthservID + ";\n\t" + strings.Join(parts, ";\n\t")
}

// arValue renders a property value: a token when it is one, else a quoted
// string (RFC 2045 value). CR, LF and other controls are dropped so an
// attacker-chosen identity cannot inject header lines.
func arValue(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if clean != "" && !strings.ContainsAny(clean, " \t()<>,;:\\\"/[]?=") {
		return clean
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(clean) + `"`
}

// stripForgedAuthResults removes every Authentication-Results header whose
// authserv-id is ours (RFC 8601 section 5): only this gateway may speak for
// itself. Last first, so the per-name indexes stay valid.
func (p *Policy) stripForgedAuthResults(v *Verdict, hs []Header) {
	values := HeaderValues(hs, AuthResultsHeader)
	n := 0
	for i := len(values); i >= 1; i-- {
		if strings.EqualFold(authservID(values[i-1]), p.AuthservID) {
			v.Edits = append(v.Edits, HeaderEdit{Op: OpDelete, Name: AuthResultsHeader, Index: i, Value: values[i-1]})
			n++
		}
	}
	if n > 0 {
		v.reason("removed %d %s header(s) claiming our authserv-id %s (RFC 8601 section 5)", n, AuthResultsHeader, p.AuthservID)
	}
}

// authservID returns the authserv-id of an Authentication-Results value: the
// first token, after any comments (RFC 8601 section 2.2).
func authservID(value string) string {
	s := strings.TrimSpace(unfold(value))
	for strings.HasPrefix(s, "(") {
		depth := 0
		i := 0
		for ; i < len(s); i++ {
			if s[i] == '(' {
				depth++
			} else if s[i] == ')' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if i >= len(s) {
			return ""
		}
		s = strings.TrimSpace(s[i+1:])
	}
	end := strings.IndexAny(s, "; \t(")
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}
