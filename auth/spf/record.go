package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// RecordType names the record syntax a check used.
type RecordType string

// Record types.
const (
	// SPF1 is a "v=spf1" record (RFC 7208 section 4.5).
	SPF1 RecordType = "spf1"
	// SPF2 is a Sender ID "spf2.0/<scopes>" record (RFC 4406 section 3).
	SPF2 RecordType = "spf2.0"
)

// Qualifier is the prefix of a directive (RFC 7208 section 4.6.2).
type Qualifier string

// Qualifiers; the empty Qualifier means "no such directive".
const (
	QualifierPass     Qualifier = "+"
	QualifierFail     Qualifier = "-"
	QualifierSoftFail Qualifier = "~"
	QualifierNeutral  Qualifier = "?"
)

// Result maps a qualifier to the result of a matching directive (RFC 7208
// section 4.6.2).
func (q Qualifier) Result() Result {
	switch q {
	case QualifierFail:
		return Fail
	case QualifierSoftFail:
		return SoftFail
	case QualifierNeutral:
		return Neutral
	}
	return Pass
}

// Directive is one mechanism of a record with its qualifier.
type Directive struct {
	Qualifier Qualifier // "+" when the record omits it
	Mechanism string    // lower case: all include a mx ptr ip4 ip6 exists
	Text      string    // the term as published

	domain macroString  // domain-spec; nil means <domain>
	cidr4  int          // a, mx: ip4-cidr-length, -1 if absent
	cidr6  int          // a, mx: ip6-cidr-length, -1 if absent
	prefix netip.Prefix // ip4, ip6
}

// Record is a parsed SPF (RFC 7208 section 4.6) or Sender ID (RFC 4406
// section 3) record.
type Record struct {
	Text string
	Type RecordType
	// Scopes lists the scopes of an spf2.0 record (unknown scope names
	// included, lower case). A v=spf1 record applies to helo and mfrom, and
	// to pra as well under Sender ID (RFC 4406 section 3.4); Scopes is nil.
	Scopes     []Scope
	Directives []Directive
	Redirect   string // domain-spec of redirect=, "" if absent
	Exp        string // domain-spec of exp=, "" if absent

	redirect macroString
	exp      macroString
}

// AllQualifier returns the qualifier of the record's "all" mechanism, or
// "" if it has none. Directives after "all" are never evaluated (RFC 7208
// section 5.1), so the first "all" is the record's terminal one.
func (r *Record) AllQualifier() Qualifier {
	for _, d := range r.Directives {
		if d.Mechanism == "all" {
			return d.Qualifier
		}
	}
	return ""
}

var (
	// ErrSyntax reports a record that does not follow the grammar of RFC
	// 7208 section 12 (or RFC 4406 section 3 for the version); check_host()
	// returns permerror (RFC 7208 section 4.6).
	ErrSyntax = errors.New("spf: syntax error")
	// ErrNotRecord reports text that is not an SPF or Sender ID record
	// (no "v=spf1" or "spf2.0/" version).
	ErrNotRecord = errors.New("spf: not an SPF record")
)

func syntaxErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, a...))
}

// recordVersion classifies the version section of a TXT string (RFC 7208
// section 4.5, RFC 4406 section 3.1). It returns the type, the version
// token and the rest of the text. ok is false for anything else.
func recordVersion(txt string) (t RecordType, version, rest string, ok bool) {
	// RFC 7208 section 4.5: the record starts with "v=spf1" followed by a
	// space or the end of the record; ABNF literals are case-insensitive.
	if len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ') {
		return SPF1, txt[:6], txt[6:], true
	}
	// RFC 4406 section 3.1: version = "spf2.0" "/" scope *( "," scope ).
	if len(txt) >= 7 && strings.EqualFold(txt[:7], "spf2.0/") {
		end := strings.IndexByte(txt, ' ')
		if end < 0 {
			end = len(txt)
		}
		return SPF2, txt[:end], txt[end:], true
	}
	return "", "", "", false
}

// ParseRecord parses a whole record. Any syntax error anywhere in it is
// reported, as RFC 7208 section 4.6 requires, even after a mechanism that
// would match.
func ParseRecord(txt string) (*Record, error) {
	t, version, rest, ok := recordVersion(txt)
	if !ok {
		return nil, ErrNotRecord
	}
	r := &Record{Text: txt, Type: t}
	if t == SPF2 {
		for _, s := range strings.Split(version[len("spf2.0/"):], ",") {
			if !isName(s) {
				return nil, syntaxErr("bad scope %q in version %q", s, version)
			}
			r.Scopes = append(r.Scopes, Scope(strings.ToLower(s)))
		}
	}
	// RFC 7208 section 4.6.1: terms are separated by one or more spaces
	// (only SP, not other whitespace; a trailing space is allowed).
	for _, term := range strings.Split(rest, " ") {
		if term == "" {
			continue
		}
		if err := r.parseTerm(term); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// isName reports whether s matches name = ALPHA *( ALPHA / DIGIT / "-" /
// "_" / "." ) (RFC 7208 section 6 / section 12).
func isName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (r *Record) parseTerm(term string) error {
	// RFC 7208 section 4.6.1: a modifier is name "=" ...; the "=" comes
	// right after a valid name, before any ":" or "/".
	if eq := strings.IndexByte(term, '='); eq > 0 && isName(term[:eq]) {
		return r.parseModifier(strings.ToLower(term[:eq]), term[eq+1:], term)
	}
	d := Directive{Text: term, Qualifier: QualifierPass, cidr4: -1, cidr6: -1}
	s := term
	switch s[0] {
	case '+', '-', '~', '?':
		d.Qualifier = Qualifier(s[:1])
		s = s[1:]
	}
	end := strings.IndexAny(s, ":/")
	if end < 0 {
		end = len(s)
	}
	d.Mechanism = strings.ToLower(s[:end])
	arg := s[end:]
	var err error
	switch d.Mechanism {
	case "all": // RFC 7208 section 5.1: all = "all"
		if arg != "" {
			err = syntaxErr("%q: all takes no argument", term)
		}
	case "include", "exists": // sections 5.2, 5.7: ":" domain-spec
		if !strings.HasPrefix(arg, ":") {
			err = syntaxErr("%q: %s needs a domain", term, d.Mechanism)
			break
		}
		d.domain, err = parseDomainSpec(arg[1:])
	case "a", "mx": // sections 5.3, 5.4: [ ":" domain-spec ] [ dual-cidr-length ]
		head, c4, c6, cerr := splitDualCIDR(arg)
		if cerr != nil {
			err = fmt.Errorf("%q: %w", term, cerr)
			break
		}
		d.cidr4, d.cidr6 = c4, c6
		switch {
		case head == "":
		case head[0] == ':':
			d.domain, err = parseDomainSpec(head[1:])
		default:
			err = syntaxErr("%q: bad argument", term)
		}
	case "ptr": // section 5.5: [ ":" domain-spec ]
		switch {
		case arg == "":
		case arg[0] == ':':
			d.domain, err = parseDomainSpec(arg[1:])
		default:
			err = syntaxErr("%q: ptr takes no cidr-length", term)
		}
	case "ip4", "ip6": // section 5.6
		d.prefix, err = parseNetwork(d.Mechanism, arg)
	default:
		err = syntaxErr("unknown mechanism %q", term)
	}
	if err != nil {
		return err
	}
	r.Directives = append(r.Directives, d)
	return nil
}

func (r *Record) parseModifier(name, value, term string) error {
	switch name {
	case "redirect", "exp":
		// RFC 7208 section 6: these two MUST NOT appear more than once.
		if (name == "redirect" && r.redirect != nil) || (name == "exp" && r.exp != nil) {
			return syntaxErr("%s= appears twice", name)
		}
		// Sections 6.1 and 6.2: name "=" domain-spec. A bad or empty
		// domain-spec is a syntax error, not an unknown-modifier (the suite
		// tests redirect-syntax-error, exp-empty-domain, exp-syntax-error).
		ms, err := parseDomainSpec(value)
		if err != nil {
			return fmt.Errorf("%q: %w", term, err)
		}
		if name == "redirect" {
			r.redirect, r.Redirect = ms, value
		} else {
			r.exp, r.Exp = ms, value
		}
		return nil
	}
	// RFC 7208 section 6: unknown modifiers are ignored, but they must
	// still be syntactically valid: unknown-modifier = name "=" macro-string.
	if _, err := parseMacroString(value, macroAllLetters); err != nil {
		return fmt.Errorf("%q: %w", term, err)
	}
	return nil
}

// parseCIDRLength parses the digits of a cidr-length: "0" / %x31-39
// 0*nDIGIT (RFC 7208 section 5.6; no leading zeros), at most max.
func parseCIDRLength(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, syntaxErr("bad cidr-length %q", s)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, syntaxErr("bad cidr-length %q", s)
		}
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, syntaxErr("cidr-length %d exceeds %d", n, max)
	}
	return n, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// splitDualCIDR removes a trailing dual-cidr-length = [ ip4-cidr-length ]
// [ "/" ip6-cidr-length ] (RFC 7208 section 5.6) from s. A domain-spec
// ends in a toplabel or a macro, never in "/" DIGIT, so a trailing "/"
// DIGITs is always a cidr-length.
func splitDualCIDR(s string) (head string, c4, c6 int, err error) {
	c4, c6 = -1, -1
	if i := strings.LastIndex(s, "//"); i >= 0 && allDigits(s[i+2:]) {
		if c6, err = parseCIDRLength(s[i+2:], 128); err != nil {
			return "", 0, 0, err
		}
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 && allDigits(s[i+1:]) {
		if c4, err = parseCIDRLength(s[i+1:], 32); err != nil {
			return "", 0, 0, err
		}
		s = s[:i]
	}
	return s, c4, c6, nil
}

// parseNetwork parses ":" ip4-network [ ip4-cidr-length ] or ":"
// ip6-network [ ip6-cidr-length ] (RFC 7208 section 5.6).
func parseNetwork(mech, arg string) (netip.Prefix, error) {
	if !strings.HasPrefix(arg, ":") {
		return netip.Prefix{}, syntaxErr("%s needs a network", mech)
	}
	s := arg[1:]
	bits := -1
	max := 32
	if mech == "ip6" {
		max = 128
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		n, err := parseCIDRLength(s[i+1:], max)
		if err != nil {
			return netip.Prefix{}, err
		}
		bits, s = n, s[:i]
	}
	// netip.ParseAddr refuses leading zeros in IPv4 (the qnum of RFC 7208
	// section 12) and short forms like "1.2.3".
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, syntaxErr("bad %s network %q", mech, s)
	}
	if (mech == "ip4") != ip.Is4() {
		return netip.Prefix{}, syntaxErr("bad %s network %q", mech, s)
	}
	if bits < 0 {
		bits = max
	}
	return netip.PrefixFrom(ip, bits).Masked(), nil
}

// parseDomainSpec parses domain-spec = macro-string domain-end, with
// domain-end = ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 section
// 7.1). The letters c, r and t are for explanation text only (section
// 7.3), so they are refused here, including in exp= itself.
func parseDomainSpec(s string) (macroString, error) {
	if s == "" {
		return nil, syntaxErr("empty domain-spec")
	}
	ms, err := parseMacroString(s, 0)
	if err != nil {
		return nil, err
	}
	last := ms[len(ms)-1]
	if last.kind != tokLiteral {
		return ms, nil // ends in a macro-expand
	}
	lit := strings.TrimSuffix(last.text, ".")
	i := strings.LastIndexByte(lit, '.')
	if i < 0 || !isToplabel(lit[i+1:]) {
		return nil, syntaxErr("domain-spec %q does not end in a valid toplabel", s)
	}
	return ms, nil
}

// isToplabel: toplabel = ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) (RFC 7208 section 7.1).
func isToplabel(s string) bool {
	if s == "" {
		return false
	}
	alpha, dash := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			dash = true
		default:
			return false
		}
	}
	if !dash {
		return alpha
	}
	return s[0] != '-' && s[len(s)-1] != '-'
}
