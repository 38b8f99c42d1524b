package notify

import (
	"strings"

	"github.com/emersion/go-message/mail"
)

// splitAddress returns the local part and the domain (lower case, without a
// trailing dot) of an address written as an envelope address
// ("user@example.org", "<user@example.org>", "<>") or as a header value
// ("Name <user@example.org>", "user@example.org (comment)"). It returns two
// empty strings for the null address and for text without an address.
func splitAddress(a string) (local, domain string) {
	a = strings.TrimSpace(a)
	if a == "" || a == "<>" {
		return "", ""
	}
	addr := ""
	if strings.ContainsAny(a, "<(\",") || strings.Contains(a, " ") {
		if l, err := mail.ParseAddressList(a); err == nil && len(l) > 0 {
			addr = l[0].Address
		}
	}
	if addr == "" {
		addr = a
		if i := strings.LastIndexByte(addr, '<'); i >= 0 {
			addr = addr[i+1:]
			if j := strings.IndexByte(addr, '>'); j >= 0 {
				addr = addr[:j]
			}
		}
	}
	addr = strings.TrimSpace(addr)
	// An RFC 5321 source route (@a,@b:user@c) names relays, not the mailbox.
	if strings.HasPrefix(addr, "@") {
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			addr = addr[i+1:]
		}
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return unquote(addr), ""
	}
	return unquote(addr[:i]), normDomain(addr[i+1:])
}

// unquote removes the quotes of a quoted-string local part.
func unquote(lp string) string {
	if len(lp) >= 2 && lp[0] == '"' && lp[len(lp)-1] == '"' {
		lp = strings.ReplaceAll(lp[1:len(lp)-1], `\`, "")
	}
	return lp
}

// normDomain lower-cases a domain and drops a trailing dot and brackets.
func normDomain(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	d = strings.TrimSuffix(d, ".")
	return d
}

// bareAddress is the address of a (header or envelope) value as
// local@domain, "" when there is none.
func bareAddress(a string) string {
	l, d := splitAddress(a)
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
