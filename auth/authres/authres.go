// Package authres writes and reads Authentication-Results header field
// values (RFC 8601).
//
// The writer quotes every value that is not a token (RFC 2045 section
// 5.1) or, for property values, a plain local-part@domain (RFC 8601
// section 2.2 pvalue), escapes quotes and backslashes, and replaces
// control characters (CR and LF included) with spaces, so an
// attacker-controlled identifier (a DKIM d=, a MAIL FROM, a From: domain,
// a reason text) can neither end the header field nor inject another
// resinfo. go-msgauth's authres does not escape backslashes or control
// characters, hence this package.
//
// The reader parses a value back (CFWS, nested comments, quoted strings)
// and, leniently, finds the authserv-id of existing fields so that the
// milter can remove those that claim ours (RFC 8601 section 5).
package authres

import "strings"

// Result is one "resinfo" (RFC 8601 section 2.2): method=result, an
// optional comment and reason, and properties.
type Result struct {
	// Method is the authentication method (RFC 8601 section 2.7): "spf",
	// "sender-id", "dkim", "dmarc", "iprev", "auth", ...
	Method string
	// Value is the result keyword: "pass", "fail", "none", ...
	Value string
	// Comment, when not empty, is written as a comment right after the
	// result: "dkim=pass (2048-bit key) header.d=...".
	Comment string
	// Reason, when not empty, is written as reason="..." (RFC 8601
	// section 2.2 reasonspec).
	Reason string
	// Props are the ptype.property=value items, in order.
	Props []Prop
}

// Prop is one propspec: Type.Property=Value, e.g. smtp.mailfrom=... or
// header.d=... (RFC 8601 section 2.3).
type Prop struct {
	Type     string // "smtp", "header", "body", "policy"
	Property string
	Value    string
}

// Format returns an Authentication-Results field value on one line:
// "authserv-id; method=result ...; ..." or "authserv-id; none" without
// results (RFC 8601 section 2.2). It never contains CR or LF.
func Format(authservID string, results ...Result) string {
	return format(authservID, results, " ")
}

// FormatFolded is Format with fold (for example "\r\n\t" or "\n\t")
// after each ";" instead of a space, for long fields (RFC 5322 section
// 2.2.3).
func FormatFolded(authservID, fold string, results ...Result) string {
	return format(authservID, results, fold)
}

func format(authservID string, results []Result, sep string) string {
	var b strings.Builder
	b.WriteString(formatValue(authservID))
	if len(results) == 0 {
		b.WriteString(";" + sep + "none")
		return b.String()
	}
	b.Grow(len(results) * 96) // one buffer, not a string per piece
	for _, r := range results {
		b.WriteString(";")
		b.WriteString(sep)
		b.WriteString(keyword(r.Method))
		b.WriteString("=")
		b.WriteString(keyword(r.Value))
		if r.Comment != "" {
			b.WriteString(" ")
			b.WriteString(formatComment(r.Comment))
		}
		if r.Reason != "" {
			b.WriteString(" reason=")
			b.WriteString(formatValue(r.Reason))
		}
		for _, p := range r.Props {
			b.WriteString(" ")
			b.WriteString(keyword(p.Type))
			b.WriteString(".")
			b.WriteString(keyword(p.Property))
			b.WriteString("=")
			b.WriteString(formatPValue(p.Value))
		}
	}
	return b.String()
}

// keyword keeps the characters of an RFC 5321 Keyword (letters, digits,
// hyphens; also "_" and "/" seen in method versions are dropped): our
// own names only pass through here, never attacker input, but a bad name
// must not break the syntax. An empty result becomes "unknown".
func keyword(s string) string {
	k := cleanKeyword(s)
	if k == "" {
		return "unknown"
	}
	return k
}

func cleanKeyword(s string) string {
	keep := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
	}
	i := 0
	for i < len(s) && keep(s[i]) {
		i++
	}
	if i == len(s) {
		return s // already a keyword: no copy
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// clean makes s safe inside a header field: invalid UTF-8 becomes
// U+FFFD, control characters (CR, LF, TAB, NUL, DEL, ...) become spaces.
// UTF-8 is kept (RFC 6532 allows it in quoted strings and comments).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// isTSpecial: RFC 2045 section 5.1 tspecials.
func isTSpecial(c byte) bool {
	return strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

// isToken: RFC 2045 section 5.1 token (non-empty, ASCII, no SPACE, CTL
// or tspecials).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || isTSpecial(c) {
			return false
		}
	}
	return true
}

// formatValue writes an RFC 2045 value: the token itself, or a
// quoted-string with '"' and '\' escaped (RFC 5322 section 3.2.4).
func formatValue(s string) string {
	s = clean(s)
	if isToken(s) {
		return s
	}
	return quote(s)
}

func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// formatPValue writes an RFC 8601 section 2.2 pvalue: a token, a plain
// [local-part]@domain-name, or a quoted-string.
func formatPValue(s string) string {
	s = clean(s)
	if isToken(s) || isPlainAddress(s) {
		return s
	}
	return quote(s)
}

// isPlainAddress: [ dot-atom-text ] "@" domain-name, ASCII (RFC 5322
// section 3.2.3 and 3.4.1; RFC 8601 section 2.2).
func isPlainAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local != "" && !isDotAtom(local, isAText) {
		return false
	}
	return isDotAtom(domain, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	})
}

func isDotAtom(s string, ok func(byte) bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !ok(s[i]) {
			return false
		}
	}
	return true
}

// isAText: RFC 5322 section 3.2.3 atext.
func isAText(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// formatComment writes an RFC 5322 section 3.2.2 comment, escaping "(",
// ")" and "\".
func formatComment(s string) string {
	s = clean(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('(')
	for i := 0; i < len(s); i++ {
		if s[i] == '(' || s[i] == ')' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte(')')
	return b.String()
}
