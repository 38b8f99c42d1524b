package message

import (
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// NormalizeDomain returns a domain the way a resolver looks it up: mapped
// per UTS #46 (golang.org/x/net/idna's Lookup profile: full-width letters
// and the ideographic full stops U+3002, U+FF0E and U+FF61 become their
// ASCII forms), U-labels converted to A-labels, lower case, a trailing dot
// removed. ok is false for a name that cannot be a domain: empty, an
// address literal ("[192.0.2.1]"), an empty or over-long label, characters
// other than letters, digits, "-" and "_" (the underscore is kept: it is
// in real DNS names, and SPF and DKIM identities use it).
func NormalizeDomain(d string) (string, bool) {
	d = strings.TrimSpace(d)
	if d == "" || strings.HasPrefix(d, "[") {
		return "", false
	}
	ascii := true
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		// On error Lookup still returns its best mapping; the checks
		// below decide whether that is a usable name.
		a, _ := idna.Lookup.ToASCII(d)
		d = a
	}
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if d == "" || len(d) > 253 {
		return "", false
	}
	// Label by label, without splitting (this runs for every address of
	// every message): none empty or longer than 63, LDH and "_" only.
	start := 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			c := d[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
			continue
		}
		if n := i - start; n == 0 || n > 63 {
			return "", false
		}
		start = i + 1
	}
	return d, true
}

// OrganizationalDomain is the organisational domain of a normalised domain
// (RFC 7489 section 3.2): its public suffix (golang.org/x/net/publicsuffix,
// the Public Suffix List) plus one label. ok is false when d is itself a
// public suffix ("govt.nz", "co.nz"): such a name is no organisation's and
// aligns with nothing but itself.
func OrganizationalDomain(d string) (string, bool) {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d, false
	}
	return org, true
}

// Aligned reports whether an authenticated domain (SPF's MAIL FROM or HELO
// domain, a DKIM d=) is aligned with an author domain under DMARC's relaxed
// rule (RFC 7489 section 3.1): the same name, or the same organisational
// domain, which is never a public suffix. An SPF pass of "govt.nz" aligns
// with no agency below it. Both domains must be normalised.
func Aligned(authenticated, author string) bool {
	if authenticated == "" || author == "" {
		return false
	}
	if authenticated == author {
		return true
	}
	a, okA := OrganizationalDomain(authenticated)
	b, okB := OrganizationalDomain(author)
	return okA && okB && a == b
}
