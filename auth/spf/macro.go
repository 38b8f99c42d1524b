package spf

import (
	"strings"
)

// RFC 7208 section 7.1:
//
//	macro-string     = *( macro-expand / macro-literal )
//	macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
//	                   / "%%" / "%_" / "%-"
//	macro-literal    = %x21-24 / %x26-7E
//	macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" /
//	                   "c" / "r" / "t" / "v"
//	transformers     = *DIGIT [ "r" ]
//	delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="
//	explain-string   = *( macro-string / SP )

type tokenKind uint8

const (
	tokLiteral tokenKind = iota // macro-literal characters
	tokEscape                   // "%%", "%_", "%-"
	tokMacro                    // "%{...}"
)

type macroToken struct {
	kind    tokenKind
	text    string // tokLiteral, tokEscape: the expansion
	letter  byte   // tokMacro: lower-case macro-letter
	url     bool   // upper-case letter: URL-escape the value (section 7.3)
	digits  int    // right-hand parts to keep; 0 means all
	reverse bool
	delims  string // split characters; "" means "."
}

type macroString []macroToken

// macroFlags select the grammar: domain-spec (0), unknown-modifier values
// (macroAllLetters) or explain-string (macroExplain).
type macroFlags uint8

const (
	// macroAllLetters also accepts c, r and t, which RFC 7208 section 7.3
	// reserves for explanation text.
	macroAllLetters macroFlags = 1 << iota
	// macroSpace accepts SP (explain-string).
	macroSpace
	macroExplain = macroAllLetters | macroSpace
)

// maxDigits bounds the DIGIT transformer; RFC 7208 section 7.3 requires
// support for at least 128 and any larger value means "all parts".
const maxDigits = 128

func parseMacroString(s string, flags macroFlags) (macroString, error) {
	var ms macroString
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			ms = append(ms, macroToken{kind: tokLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if (c >= 0x21 && c <= 0x7e) || (c == ' ' && flags&macroSpace != 0) {
				lit.WriteByte(c)
				continue
			}
			return nil, syntaxErr("invalid character %q in %q", c, s)
		}
		// RFC 7208 section 7.1: a '%' not followed by '{', '%', '-' or
		// '_' is a syntax error.
		if i+1 >= len(s) {
			return nil, syntaxErr("trailing %% in %q", s)
		}
		i++
		switch s[i] {
		case '%', '_', '-':
			flush()
			ms = append(ms, macroToken{kind: tokEscape, text: map[byte]string{'%': "%", '_': " ", '-': "%20"}[s[i]]})
			continue
		case '{':
		default:
			return nil, syntaxErr("invalid macro %q in %q", s[i-1:i+1], s)
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, syntaxErr("unterminated macro in %q", s)
		}
		t, err := parseMacroExpand(s[i+1:i+end], flags)
		if err != nil {
			return nil, err
		}
		flush()
		ms = append(ms, t)
		i += end
	}
	flush()
	return ms, nil
}

// parseMacroExpand parses the inside of "%{...}".
func parseMacroExpand(body string, flags macroFlags) (macroToken, error) {
	t := macroToken{kind: tokMacro}
	if body == "" {
		return t, syntaxErr("empty macro")
	}
	l := body[0]
	t.url = l >= 'A' && l <= 'Z'
	if t.url {
		l += 'a' - 'A'
	}
	switch l {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if flags&macroAllLetters == 0 {
			return t, syntaxErr("macro letter %q is allowed in explanations only", body[0])
		}
	default:
		return t, syntaxErr("unknown macro letter %q", body[0])
	}
	t.letter = l
	i := 1
	for i < len(body) && isDigit(body[i]) {
		if t.digits <= maxDigits {
			t.digits = t.digits*10 + int(body[i]-'0')
		}
		i++
	}
	if i > 1 && t.digits == 0 {
		// RFC 7208 section 7.3: a DIGIT transformer must be nonzero.
		return t, syntaxErr("zero DIGIT transformer in %%{%s}", body)
	}
	if t.digits > maxDigits {
		t.digits = 0
	}
	if i < len(body) && (body[i] == 'r' || body[i] == 'R') {
		t.reverse = true
		i++
	}
	t.delims = body[i:]
	for ; i < len(body); i++ {
		if strings.IndexByte(".-+,/_=", body[i]) < 0 {
			return t, syntaxErr("invalid delimiter %q in %%{%s}", body[i], body)
		}
	}
	return t, nil
}

// macroEnv supplies the macro values of RFC 7208 section 7.3.
type macroEnv interface {
	macroValue(letter byte, domain string) string
}

// expand expands ms in the context of the current <domain>.
func expand(ms macroString, env macroEnv, domain string) string {
	var b strings.Builder
	for _, t := range ms {
		if t.kind != tokMacro {
			b.WriteString(t.text)
			continue
		}
		v := env.macroValue(t.letter, domain)
		v = transform(v, t)
		if t.url {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// transform applies the delimiters, reversal and DIGIT transformers; the
// parts are always rejoined with "." (RFC 7208 section 7.3).
func transform(v string, t macroToken) string {
	delims := t.delims
	if delims == "" {
		delims = "."
	}
	if delims == "." && !t.reverse && t.digits == 0 {
		return v
	}
	parts := splitAny(v, delims)
	if t.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if t.digits > 0 && t.digits < len(parts) {
		parts = parts[len(parts)-t.digits:]
	}
	return strings.Join(parts, ".")
}

func splitAny(s, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// urlEscape escapes every byte outside the RFC 3986 unreserved set (RFC
// 7208 section 7.3: upper-case macros are URL-escaped).
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// domainName turns an expanded domain-spec into a name to query: a
// trailing dot is dropped (RFC 7208 section 7.3 / suite "trailing-dot-
// domain"), and names longer than 253 characters lose labels from the left
// until they fit (RFC 7208 section 7.3). ok is false when no query can be
// composed (empty name, empty label, label over 63 octets); callers treat
// that as a name that does not exist (RFC 7208 section 4.3, 4.8).
func domainName(s string) (name string, ok bool) {
	s = strings.TrimSuffix(s, ".")
	for len(s) > 253 {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return "", false
		}
		s = s[i+1:]
	}
	return s, validLabels(s)
}

func validLabels(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}
