package message

import (
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/unicode"
)

// MediaType is a parsed Content-Type or Content-Disposition value.
type MediaType struct {
	Type   string            // lower case; "" when there is none
	Params map[string]string // lower-case names; raw bytes of the values
	// Dups lists the parameters given more than once with differing
	// values (the first one is in Params).
	Dups []string
	// Charsets holds the charset of each RFC 2231 extended value.
	Charsets map[string]string
}

// Text returns parameter k decoded from its RFC 2231 charset to UTF-8
// when the charset is known (for names shown in reports, or a value
// written anew; the raw bytes stay in Params).
func (m MediaType) Text(k string) string {
	v := m.Params[k]
	if cs := m.Charsets[k]; cs != "" {
		if enc, ok := LookupCharset(cs); ok && enc != ASCII && enc != unicode.UTF8 {
			if out, err := enc.NewDecoder().String(v); err == nil {
				return out
			}
		}
	}
	return v
}

// paramSeg is one piece of an RFC 2231 parameter.
type paramSeg struct {
	index int  // continuation number; -1 for an unnumbered parameter
	ext   bool // name*=...: charset'language'percent-encoded
	value string
}

// ParseMediaType parses a Content-Type or Content-Disposition value
// (RFC 2045 section 5.1, RFC 2183) leniently, as mail clients read it:
//   - RFC 2231 continuations (boundary*0="a"; boundary*1*=%62) are
//     joined in numeric order; extended values are percent-decoded and
//     keep their raw bytes whatever the charset (Go's mime.ParseMediaType
//     drops a boundary*= value in a charset it does not know, and so
//     would lose the multipart; the boundary is compared with the raw
//     body bytes, so raw bytes are what is needed);
//   - a quoted string may be unterminated (it runs to the end);
//   - a parameter given twice with differing values is listed in Dups and
//     the first one kept (clients disagree on which one wins, so a caller
//     that depends on it must fail safe).
//
// The type is lower case. It is the one MIME parameter parser of the
// gateway (issue 13 point 1): the scanner and the warning rewriter find
// the same boundary and charset in a part, so a banner goes where the
// scanner read text.
func ParseMediaType(v string) MediaType {
	var m MediaType
	if strings.TrimSpace(v) == "" {
		return m
	}
	parts := splitParams(v)
	// Comments and white space around the "/" are allowed between the
	// tokens of a structured field (RFC 2045 section 5.1, RFC 822 section
	// 3.1.4): "multipart / mixed (c)" is multipart/mixed, and read as
	// anything else its parts (a base64 one with a marking) would go
	// undecoded.
	m.Type = strings.ToLower(strings.Join(strings.Fields(stripComments(parts[0])), ""))
	segs := map[string][]paramSeg{}
	var order []string
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		val = unquote(strings.TrimSpace(val))
		seg := paramSeg{index: -1}
		if strings.HasSuffix(k, "*") {
			seg.ext = true
			k = k[:len(k)-1]
		}
		if i := strings.LastIndexByte(k, '*'); i > 0 {
			if n, err := strconv.Atoi(k[i+1:]); err == nil && n >= 0 && n < 1000 {
				seg.index = n
				k = k[:i]
			}
		}
		if k == "" {
			continue
		}
		seg.value = val
		if _, seen := segs[k]; !seen {
			order = append(order, k)
		}
		segs[k] = append(segs[k], seg)
	}
	m.Params = make(map[string]string, len(order))
	for _, k := range order {
		val, dup := joinParam(segs[k])
		m.Params[k] = val
		if dup {
			m.Dups = append(m.Dups, k)
		}
		if cs := extCharset(segs[k]); cs != "" {
			if m.Charsets == nil {
				m.Charsets = map[string]string{}
			}
			m.Charsets[k] = cs
		}
	}
	return m
}

// extCharset returns the charset of the extended value a parameter's
// value is taken from (the first unnumbered one, else continuation 0).
func extCharset(segs []paramSeg) string {
	var pick *paramSeg
	for i := range segs {
		if segs[i].index < 0 {
			pick = &segs[i]
			break
		}
		if segs[i].index == 0 && pick == nil {
			pick = &segs[i]
		}
	}
	if pick == nil || !pick.ext {
		return ""
	}
	cs, _, ok := strings.Cut(pick.value, "'")
	if !ok {
		return ""
	}
	return cs
}

// unquote removes the quotes of a quoted string and its backslash
// escapes (RFC 5322 section 3.2.4); an unterminated quoted string runs to
// the end. A token is returned as it is.
func unquote(val string) string {
	if val == "" || val[0] != '"' {
		return val
	}
	// Without escapes the value is a piece of val, not a copy.
	switch i := strings.IndexAny(val[1:], "\\\""); {
	case i < 0:
		return val[1:]
	case val[1+i] == '"':
		return val[1 : 1+i]
	}
	var b strings.Builder
	for i := 1; i < len(val); i++ {
		c := val[i]
		switch {
		case c == '\\' && i+1 < len(val):
			i++
			b.WriteByte(val[i])
		case c == '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// joinParam makes one value of the pieces of a parameter: an unnumbered
// value, or the numbered continuations in order (RFC 2231 section 3).
// dup reports a second, different value of the same parameter (two
// unnumbered values, a repeated continuation number, or an unnumbered
// value beside continuations that say something else).
func joinParam(segs []paramSeg) (val string, dup bool) {
	if len(segs) == 1 && segs[0].index < 0 && !segs[0].ext {
		return segs[0].value, false // the common case: one plain value
	}
	var plain []paramSeg
	numbered := map[int]paramSeg{}
	for _, s := range segs {
		if s.index < 0 {
			plain = append(plain, s)
			continue
		}
		if old, ok := numbered[s.index]; ok {
			if old.value != s.value || old.ext != s.ext {
				dup = true
			}
			continue
		}
		numbered[s.index] = s
	}
	var joined string
	haveJoined := false
	if len(numbered) > 0 {
		idx := make([]int, 0, len(numbered))
		for i := range numbered {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var b strings.Builder
		for n, i := range idx {
			if i != n {
				break // a gap: RFC 2231 says the value ends there
			}
			s := numbered[i]
			switch {
			case !s.ext:
				b.WriteString(s.value)
			case i == 0:
				b.WriteString(extValue(s.value))
			default:
				b.WriteString(pctDecode(s.value))
			}
		}
		joined, haveJoined = b.String(), true
	}
	var first string
	haveFirst := false
	for _, s := range plain {
		v := s.value
		if s.ext {
			v = extValue(v)
		}
		if !haveFirst {
			first, haveFirst = v, true
		} else if v != first {
			dup = true
		}
	}
	switch {
	case haveFirst && haveJoined:
		if first != joined {
			dup = true
		}
		return first, dup
	case haveFirst:
		return first, dup
	}
	return joined, dup
}

// extValue decodes an RFC 2231 extended value: charset'language'text with
// %XX escapes. The bytes are kept raw whatever the charset. A value
// without the two quotes is taken as the text itself.
func extValue(v string) string {
	if i := strings.IndexByte(v, '\''); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '\''); j >= 0 {
			v = v[i+1+j+1:]
		}
	}
	return pctDecode(v)
}

// pctDecode decodes %XX escapes; a malformed escape stays as it is.
func pctDecode(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if c, ok := UnhexPair(v[i+1], v[i+2]); ok {
				b = append(b, c)
				i += 2
				continue
			}
		}
		b = append(b, v[i])
	}
	return string(b)
}

// splitParams splits at semicolons outside quoted strings.
func splitParams(v string) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				parts = append(parts, v[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, v[start:])
}
