// Package dnsname converts between raw DNS names and TXT strings (the bytes
// on the wire) and the escaped presentation format used by
// github.com/miekg/dns (RFC 1035 section 5.1: "\X" and "\DDD").
//
// SPF builds names by macro expansion, and these may hold bytes such as a
// space or "%" (RFC 7208 section 7.3); TXT records may hold any byte.
package dnsname

import (
	"strings"

	"github.com/miekg/dns"
)

// Escape turns a raw name (labels separated by ".") into presentation
// format.
func Escape(raw string) string {
	return escape(raw, func(c byte) bool {
		switch c {
		case ' ', '"', '(', ')', ';', '@', '$', '\\':
			return true
		}
		return false
	})
}

// EscapeTXT turns a raw character-string into presentation format.
func EscapeTXT(raw string) string {
	return escape(raw, func(c byte) bool { return c == '"' || c == '\\' })
}

func escape(raw string, special func(byte) bool) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c < ' ' || c > '~':
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		case special(c):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape turns a presentation-format name or character-string back into
// raw bytes: "\DDD" is the byte DDD, "\X" is X. (An escaped "." inside a
// label becomes a plain "." and cannot be told from a label separator.)
func Unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Key is the canonical map key of a raw name: lower case (ASCII only, RFC
// 4343), without the trailing dot.
func Key(raw string) string {
	return strings.TrimSuffix(asciiLower(raw), ".")
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// AddressTypes maps a LookupIP network ("ip4", "ip6", "ip") to the query
// types to ask: A, AAAA, or both.
func AddressTypes(network string) ([]uint16, bool) {
	switch network {
	case "ip4":
		return []uint16{dns.TypeA}, true
	case "ip6":
		return []uint16{dns.TypeAAAA}, true
	case "ip":
		return []uint16{dns.TypeA, dns.TypeAAAA}, true
	}
	return nil, false
}
