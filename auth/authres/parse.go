package authres

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax reports a value that does not follow RFC 8601 section 2.2.
var ErrSyntax = errors.New("authres: syntax error")

// Header is a parsed Authentication-Results field value.
type Header struct {
	AuthservID string
	// Version is the authres-version after the authserv-id ("" when
	// absent, which means 1).
	Version string
	// Results are the resinfo items; none for "authserv-id; none".
	Results []Result
}

// Parse parses an Authentication-Results field value (without the field
// name), folded or not. Comments are skipped, except the first comment
// after a result keyword, which becomes Result.Comment.
func Parse(value string) (Header, error) {
	p := &parser{s: value}
	var h Header
	var err error
	if h.AuthservID, err = p.authservID(); err != nil {
		return h, err
	}
	p.skipCFWS()
	if p.peekDigits() {
		h.Version = p.run(func(c byte) bool { return c >= '0' && c <= '9' })
		p.skipCFWS()
	}
	if p.eof() {
		return h, nil // lenient: RFC 8601 wants "; none"
	}
	if !p.consume(';') {
		return h, p.errorf("want \";\" after the authserv-id")
	}
	p.skipCFWS()
	if p.eof() {
		return h, nil // lenient: "authserv-id;"
	}
	// no-result = [CFWS] ";" [CFWS] "none"
	if save := p.i; strings.EqualFold(p.keyword(), "none") {
		p.skipCFWS()
		if p.eof() {
			return h, nil
		}
		p.i = save
	} else {
		p.i = save
	}
	for {
		r, err := p.resinfo()
		if err != nil {
			return h, err
		}
		h.Results = append(h.Results, r)
		p.skipCFWS()
		if p.eof() {
			return h, nil
		}
		if !p.consume(';') {
			return h, p.errorf("want \";\" between results")
		}
		p.skipCFWS()
		if p.eof() {
			return h, nil // lenient: a trailing ";"
		}
	}
}

// AuthservID returns the authserv-id of an Authentication-Results field
// value: the first token or quoted-string after any CFWS. It ignores the
// rest of the value, so that a malformed field still shows whose it
// claims to be.
func AuthservID(value string) (string, error) {
	return (&parser{s: value}).authservID()
}

// ClaimsAuthservID reports whether the field value's authserv-id is id
// (compared case-insensitively, a final dot ignored: authserv-ids are
// usually host names). The milter removes such fields from incoming mail
// before adding its own (RFC 8601 section 5).
func ClaimsAuthservID(value, id string) bool {
	got, err := AuthservID(value)
	if err != nil {
		return false
	}
	norm := func(s string) string { return strings.TrimSuffix(strings.TrimSpace(s), ".") }
	return got != "" && strings.EqualFold(norm(got), norm(id))
}

type parser struct {
	s string
	i int
	// comment collects the text of the last comment skipped.
	comment    string
	hadComment bool
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, p.i, fmt.Sprintf(format, args...))
}

func (p *parser) consume(c byte) bool {
	if !p.eof() && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) run(ok func(byte) bool) string {
	start := p.i
	for !p.eof() && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipCFWS skips folding white space and comments (RFC 5322 section
// 3.2.2), remembering the first comment's text.
func (p *parser) skipCFWS() {
	for !p.eof() {
		switch c := p.s[p.i]; {
		case isWSP(c):
			p.i++
		case c == '(':
			text, ok := p.commentText()
			if !ok {
				// An unclosed comment runs to the end.
				p.i = len(p.s)
				return
			}
			if !p.hadComment {
				p.comment, p.hadComment = text, true
			}
		default:
			return
		}
	}
}

// commentText reads a (possibly nested) comment at p.i and returns its
// content with quoted-pairs undone.
func (p *parser) commentText() (string, bool) {
	var b strings.Builder
	depth := 0
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\' && !p.eof():
			b.WriteByte(p.s[p.i])
			p.i++
			continue
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				return b.String(), true
			}
		}
		b.WriteByte(c)
	}
	return b.String(), false
}

// quoted reads a quoted-string at p.i (the opening quote included) and
// returns its content with quoted-pairs undone.
func (p *parser) quoted() (string, error) {
	p.i++ // opening DQUOTE
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if p.eof() {
				return "", p.errorf("unterminated quoted-string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case '"':
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated quoted-string")
}

// bare reads an unquoted value: everything up to white space, ";", "("
// or a quote (lenient: real headers carry unquoted "/" and "=" in
// header.b and the like).
func (p *parser) bare() string {
	return p.run(func(c byte) bool { return !isWSP(c) && c != ';' && c != '(' && c != '"' })
}

func (p *parser) authservID() (string, error) {
	p.skipCFWS()
	if p.eof() {
		return "", p.errorf("no authserv-id")
	}
	if p.s[p.i] == '"' {
		return p.quoted()
	}
	id := p.bare()
	if id == "" {
		return "", p.errorf("no authserv-id")
	}
	return id, nil
}

func (p *parser) peekDigits() bool {
	j := p.i
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	return j > p.i && (j == len(p.s) || isWSP(p.s[j]) || p.s[j] == ';' || p.s[j] == '(')
}

func isKeywordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func (p *parser) keyword() string { return p.run(isKeywordByte) }

// resinfo parses methodspec [CFWS reasonspec] [CFWS 1*propspec].
func (p *parser) resinfo() (Result, error) {
	var r Result
	if r.Method = p.keyword(); r.Method == "" {
		return r, p.errorf("want a method")
	}
	p.skipCFWS()
	if p.consume('/') { // method-version
		p.skipCFWS()
		if p.run(func(c byte) bool { return c >= '0' && c <= '9' }) == "" {
			return r, p.errorf("want a method version")
		}
		p.skipCFWS()
	}
	if !p.consume('=') {
		return r, p.errorf("want \"=\" after %q", r.Method)
	}
	p.skipCFWS()
	if r.Value = p.keyword(); r.Value == "" {
		return r, p.errorf("want a result for %q", r.Method)
	}
	p.hadComment, p.comment = false, ""
	for {
		p.skipCFWS()
		if p.hadComment && r.Comment == "" {
			r.Comment = p.comment
		}
		if p.eof() || p.s[p.i] == ';' {
			return r, nil
		}
		name := p.keyword()
		if name == "" {
			return r, p.errorf("want a property")
		}
		p.skipCFWS()
		if strings.EqualFold(name, "reason") && p.consume('=') {
			p.skipCFWS()
			v, err := p.value()
			if err != nil {
				return r, err
			}
			r.Reason = v
			continue
		}
		if !p.consume('.') {
			return r, p.errorf("want \".\" after %q", name)
		}
		p.skipCFWS()
		prop := p.keyword()
		if prop == "" {
			return r, p.errorf("want a property name after %q.", name)
		}
		p.skipCFWS()
		if !p.consume('=') {
			return r, p.errorf("want \"=\" after %s.%s", name, prop)
		}
		v, err := p.pvalue()
		if err != nil {
			return r, err
		}
		r.Props = append(r.Props, Prop{Type: name, Property: prop, Value: v})
	}
}

// value: token / quoted-string (RFC 2045 section 5.1).
func (p *parser) value() (string, error) {
	if !p.eof() && p.s[p.i] == '"' {
		return p.quoted()
	}
	return p.bare(), nil
}

// pvalue: [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
// (RFC 8601 section 2.2); a quoted local-part is joined to its domain.
func (p *parser) pvalue() (string, error) {
	p.skipCFWS()
	if !p.eof() && p.s[p.i] == '"' {
		v, err := p.quoted()
		if err != nil {
			return "", err
		}
		if p.consume('@') {
			v += "@" + p.bare()
		}
		return v, nil
	}
	return p.bare(), nil
}
