package policy

import (
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// SplitAddress returns the local part and the domain (normalised as
// message.NormalizeDomain does) of an address written as an envelope
// address ("user@example.org", "<user@example.org>", "<>") or as a header
// value ("Name <user@example.org>", "user@example.org (comment)"), read by
// the gateway's one address parser (message.Mailboxes, issue 12 point 1):
// the first mailbox it finds. It returns two empty strings for the null
// address and for text without an address.
func SplitAddress(a string) (local, domain string) {
	a = strings.TrimSpace(message.Unfold(a))
	if a == "" || a == "<>" {
		return "", ""
	}
	if r := message.Mailboxes(a); len(r.Authors) > 0 {
		return r.Authors[0].Local, r.Authors[0].Domain
	}
	// No mailbox with a usable domain: "postmaster" without a domain, an
	// address literal. Split what is there, so that the loop rules (R93)
	// still see a system local part.
	addr := strings.TrimSpace(strings.Trim(a, "<>"))
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return unquote(addr), ""
	}
	return unquote(addr[:i]), NormDomain(addr[i+1:])
}

// unquote removes the quotes of a quoted-string local part.
func unquote(lp string) string {
	if len(lp) >= 2 && lp[0] == '"' && lp[len(lp)-1] == '"' {
		lp = strings.ReplaceAll(lp[1:len(lp)-1], `\`, "")
	}
	return lp
}

// NormDomain is message.NormalizeDomain, or for a name that cannot be a
// domain (an address literal) the name lower-cased without a trailing dot.
func NormDomain(d string) string {
	if n, ok := message.NormalizeDomain(d); ok {
		return n
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// BareAddress is the address of a (header or envelope) value as
// local@domain, "" when there is none.
func BareAddress(a string) string {
	l, d := SplitAddress(a)
	if l == "" {
		return ""
	}
	if d == "" {
		return l
	}
	return l + "@" + d
}

// isSystemLocalPart reports whether a local part is one that must never
// be answered (R93): postmaster or MAILER-DAEMON, in any case.
func isSystemLocalPart(lp string) bool {
	return strings.EqualFold(lp, "postmaster") || strings.EqualFold(lp, "mailer-daemon")
}

// sameOrganisation reports whether two domains are the same or one is a
// subdomain of the other (mail1.agency.govt.nz and agency.govt.nz).
func sameOrganisation(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b || strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a)
}
