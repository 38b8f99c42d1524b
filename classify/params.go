package classify

import (
	"sort"
	"strconv"
	"strings"
)

// MaxBoundary is the longest multipart boundary read. RFC 2046 section
// 5.1.1 allows 70 characters, but Python's email package and mime4j read
// longer ones, and so do mail clients, so the scanner does too up to the
// line length limit of RFC 5322 section 2.1.1; a longer boundary cannot
// be used and its multipart is unreadable (issue 11).
const MaxBoundary = 998

// mediaType is a parsed Content-Type or Content-Disposition value.
type mediaType struct {
	typ    string            // lower case; "" when there is none
	params map[string]string // lower-case names; raw bytes of the values
	// dups lists the parameters given more than once with differing
	// values (the first one is in params).
	dups []string
	// charsets holds the charset of each RFC 2231 extended value.
	charsets map[string]string
}

// text returns parameter k decoded from its RFC 2231 charset to UTF-8
// when the charset is known (for names shown in reports; the raw bytes
// stay in params).
func (m mediaType) text(k string) string {
	v := m.params[k]
	if cs := m.charsets[k]; cs != "" {
		if enc, ok := lookupCharset(cs); ok && enc != nil {
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

// parseMedia parses a Content-Type or Content-Disposition value
// (RFC 2045 section 5.1, RFC 2183) leniently, as mail clients read it:
//   - RFC 2231 continuations (boundary*0="a"; boundary*1*=%62) are
//     joined in numeric order; extended values are percent-decoded and
//     keep their raw bytes whatever the charset (Go's mime.ParseMediaType
//     drops a boundary*= value in a charset it does not know, and so
//     would lose the multipart; the boundary is compared with the raw
//     body bytes, so raw bytes are what is needed);
//   - a quoted string may be unterminated (it runs to the end);
//   - a parameter given twice with differing values is listed in dups and
//     the first one kept (clients disagree on which one wins, so a caller
//     that depends on it must fail safe).
//
// The type is lower case.
func parseMedia(v string) mediaType {
	var m mediaType
	if strings.TrimSpace(v) == "" {
		return m
	}
	parts := splitParams(v)
	m.typ = strings.ToLower(strings.TrimSpace(parts[0]))
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
	m.params = make(map[string]string, len(order))
	for _, k := range order {
		val, dup := joinParam(segs[k])
		m.params[k] = val
		if dup {
			m.dups = append(m.dups, k)
		}
		if cs := extCharset(segs[k]); cs != "" {
			if m.charsets == nil {
				m.charsets = map[string]string{}
			}
			m.charsets[k] = cs
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
			h, ok1 := unhex(v[i+1])
			l, ok2 := unhex(v[i+2])
			if ok1 && ok2 {
				b = append(b, h<<4|l)
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
