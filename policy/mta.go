package policy

import "strings"

// The MTAs the milter knows the hold-queue release command of.
const (
	MTAPostfix  = "postfix"
	MTASendmail = "sendmail"
)

// MTAFromVersion names the MTA from its "v" milter macro: Postfix sends
// "$mail_name $mail_version" ("Postfix 3.7.11"), Sendmail its version
// alone ("8.17.1.9"). Anything else, or no macro, is "" (unknown), for
// which the texts name Postfix's commands as before.
func MTAFromVersion(v string) string {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return ""
	case strings.HasPrefix(strings.ToLower(v), "postfix"):
		return MTAPostfix
	case strings.HasPrefix(strings.ToLower(v), "sendmail"):
		return MTASendmail
	case v[0] >= '0' && v[0] <= '9' && strings.Trim(v, "0123456789.") == "":
		// Sendmail's $v: dotted digits only.
		return MTASendmail
	}
	return ""
}

// ReleaseCommand is the command that releases held (quarantined) message
// queueID from the hold queue of mta (R110: the notice tells the
// administrator how). Sendmail: -qQ runs the quarantine queue, -qI picks
// the message, -Q without a reason removes the quarantine (sendmail(8)).
func ReleaseCommand(mta, queueID string) string {
	id := queueIDOr(queueID)
	if mta == MTASendmail {
		return "sendmail -qQ -qI" + id + " -Q"
	}
	return "postsuper -H " + id
}

// hold quarantines the message; reason, the one the MTA records with the
// held message (Postfix's hold reason, Sendmail's quarantine reason), is
// also one of the verdict's reasons.
func (v *Verdict) hold(reason string) {
	v.Action = Quarantine
	v.HoldReason = reason
	v.Reasons = append(v.Reasons, reason)
}

// holdForAdmin holds the message (reason, as hold) for an administrator
// (kind) and tells the administrator in a held-mail notice (R56, R110)
// with text notice, naming rcpts and Table 3 code. adminHoldToStore may
// move the hold to the gateway's store (adminhold.go).
func (p *Policy) holdForAdmin(v *Verdict, kind HoldKind, reason, notice string, rcpts []string, code string) {
	v.hold(reason)
	v.adminHold = kind
	v.Notices = append(v.Notices, Notice{Kind: NoticeHeld, To: p.Postmaster(), Rcpts: rcpts, Code: code, Reason: notice})
}
