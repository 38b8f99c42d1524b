package policy

import (
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// NotifyContext is what ShouldNotify needs besides the original's senders.
type NotifyContext struct {
	// To is the address the notice would go to.
	To string
	// Inbound is true for rules applied to inbound email (R93, R95 speak of
	// "rules for inbound email"); on outbound, Table 1 asks for the
	// sender's postmaster (our own) to be notified.
	Inbound bool
	// Headers are the original's headers (Auto-Submitted, Content-Type,
	// Precedence and the list headers are read).
	Headers []Header
}

// Reasons ShouldNotify gives for not notifying.
const (
	ReasonNullSender    = "the original has the null envelope sender: a notice could loop (R93)"
	ReasonFromSystem    = "the original is from postmaster or MAILER-DAEMON: no exception message in answer (R93)"
	ReasonAutoSubmitted = "the original is auto-submitted (RFC 3834): no automatic answer to an automatic message"
	ReasonReport        = "the original is a delivery or disposition report (multipart/report): no answer to a report"
	ReasonNoRecipient   = "the notice has no valid recipient"
	ReasonSenderPM      = "the notice would go to the sending agency's postmaster (R95)"
	ReasonListSender    = "the original comes from a list server and the notice would go to its sender (R199, RFC 3834)"
)

// ShouldNotify applies the loop rules of R93-R95 to a proposed exception or
// notification message about an original message whose From: header is
// origFrom (one raw value; the caller asks once per From: field) and whose
// envelope sender (MAIL FROM) is envelopeFrom:
//
//   - never in answer to the null sender ("" or "<>");
//   - never in answer to mail from postmaster or MAILER-DAEMON, in the
//     envelope or the From: header, any case (R93);
//   - never in answer to auto-submitted mail (Auto-Submitted other than
//     "no", RFC 3834 section 2) or to a multipart/report;
//   - on inbound, never to the sending agency's postmaster (R95): a
//     postmaster or MAILER-DAEMON at the sender's domain or a domain above
//     or below it;
//   - never to the sender of list mail (R199 headers), which is list
//     software.
//
// It returns ok and "" when the notice may go, otherwise false and the
// reason (for the log). The frequency limit (R94) is notify.RateLimiter's,
// applied when the notice is sent: its state is the running process's.
func ShouldNotify(origFrom, envelopeFrom string, c NotifyContext) (ok bool, reason string) {
	envLocal, envDomain := SplitAddress(envelopeFrom)
	if envLocal == "" && envDomain == "" {
		return false, ReasonNullSender
	}
	authors := headerAddresses(origFrom)
	if isSystemLocalPart(envLocal) {
		return false, ReasonFromSystem
	}
	for _, a := range authors {
		if isSystemLocalPart(a[0]) {
			return false, ReasonFromSystem
		}
	}
	for _, h := range c.Headers {
		switch strings.ToLower(strings.TrimSpace(h.Name)) {
		case "auto-submitted":
			if v := keyword(h.Value); v != "" && v != "no" {
				return false, ReasonAutoSubmitted
			}
		case "content-type":
			// Read leniently as the scanner does (message.ParseMediaType):
			// a report with a malformed parameter is still a report, and
			// answering one is how loops start (RFC 3834 section 2).
			if message.ParseMediaType(h.Value).Type == "multipart/report" {
				return false, ReasonReport
			}
		}
	}
	toLocal, toDomain := SplitAddress(c.To)
	if toLocal == "" || toDomain == "" {
		return false, ReasonNoRecipient
	}
	sameOrg, listSender := sameOrganisation(toDomain, envDomain), false
	to := toLocal + "@" + toDomain
	for _, a := range authors {
		sameOrg = sameOrg || sameOrganisation(toDomain, a[1])
		listSender = listSender || strings.EqualFold(to, a[0]+"@"+a[1])
	}
	if c.Inbound && isSystemLocalPart(toLocal) && sameOrg {
		return false, ReasonSenderPM
	}
	if IsListMail(c.Headers) && (strings.EqualFold(to, BareAddress(envelopeFrom)) || listSender) {
		return false, ReasonListSender
	}
	return true, ""
}

// headerAddresses lists the local part and domain of every mailbox in a
// From: value, read by the
// one parser (message.Mailboxes): the loop rules hold for every author,
// not only the first (fail safe, R93). A value with no mailbox gives what
// SplitAddress finds.
func headerAddresses(v string) [][2]string {
	var out [][2]string
	for _, m := range message.Mailboxes(v).Authors {
		out = append(out, [2]string{m.Local, m.Domain})
	}
	if len(out) == 0 {
		if l, d := SplitAddress(v); l != "" || d != "" {
			out = append(out, [2]string{l, d})
		}
	}
	return out
}

// keyword is a header value's first token in lower case, without
// parameters or comments ("auto-replied; owner-email=..." -> "auto-replied").
func keyword(v string) string {
	v = strings.ToLower(v)
	if i := strings.IndexAny(v, ";("); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}
