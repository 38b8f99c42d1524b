package classify

import (
	"bytes"
	"html"
	"unicode/utf8"
)

// htmlText turns HTML (UTF-8, after charset decoding) into the text a
// reader sees (R33), streaming with bounded state:
//   - tags are removed, so "[SEC<b></b>RET]" reads "[SECRET]"; block
//     elements (p, div, br, td, li, ...) break the line;
//   - comments, and the content of script and style, are dropped;
//   - character references are decoded, numeric (&#91; &#x5B;) and named
//     (&lbrack; &rsqb; &amp; ... every HTML5 name, via html.UnescapeString);
//   - white space collapses to one space as rendering does, so
//     "[TOP\r\nSECRET]" in the source reads "[TOP SECRET]"; a no-break
//     space (&nbsp; or U+00A0) reads as a space and does not collapse.
type htmlText struct {
	next stage
	out  []byte
	st   int
	ws   byte // pending white space: 0, ' ' or '\n'
	c2   bool // pending 0xC2, the first byte of a UTF-8 U+00A0

	name    [16]byte // tag name, lower case, truncated
	nlen    int
	endTag  bool
	quote   byte
	dash    int // comment: consecutive '-' seen
	clen    int // comment: bytes seen
	raw     string
	rawSeen int // bytes of "</"+raw matched in raw text
	ent     [40]byte
	elen    int
}

const (
	htText = iota
	htTagOpen
	htEndTagOpen
	htTagName
	htAttrs
	htAttrQuoted
	htMarkup  // after "<!"
	htComment // inside "<!-- -->"
	htBogus   // "<!DOCTYPE ...>", "<?...>": up to '>'
	htRaw     // script or style content
	htEntity
)

// htmlSpecial marks the bytes that end a run of plain text.
var htmlSpecial = func() (t [256]bool) {
	for _, c := range []byte{'<', '&', ' ', '\t', '\r', '\n', '\f', 0xC2} {
		t[c] = true
	}
	return t
}()

// htmlBlock reports whether an element's start or end breaks the line.
func htmlBlock(name []byte) bool {
	switch string(name) {
	case "address", "article", "aside", "blockquote", "body", "br", "caption",
		"dd", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
		"form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hr",
		"html", "li", "main", "nav", "ol", "p", "pre", "section", "table",
		"tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul":
		return true
	}
	return false
}

func newHTMLText(next stage) *htmlText {
	return &htmlText{next: next, out: make([]byte, 0, outBufSize)}
}

func (h *htmlText) flushOut() {
	if len(h.out) > 0 {
		h.next.write(h.out)
		h.out = h.out[:0]
	}
}

func (h *htmlText) grow(n int) {
	if len(h.out)+n > cap(h.out) {
		h.flushOut()
	}
}

// text emits visible non-space bytes, after any pending white space.
func (h *htmlText) text(b []byte) {
	if h.ws != 0 {
		h.grow(1)
		h.out = append(h.out, h.ws)
		h.ws = 0
	}
	for len(b) > 0 {
		h.grow(1)
		n := min(len(b), cap(h.out)-len(h.out))
		h.out = append(h.out, b[:n]...)
		b = b[n:]
	}
}

func (h *htmlText) space() {
	if h.ws == 0 {
		h.ws = ' '
	}
}

// nbsp emits a no-break space as a plain space; it does not collapse.
func (h *htmlText) nbsp() { h.text([]byte{' '}) }

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isASCIIAlnum(c byte) bool { return isASCIILetter(c) || '0' <= c && c <= '9' }

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
}

func (h *htmlText) write(p []byte) {
	for len(p) > 0 {
		// Bulk paths for the common states; step does the rest.
		switch h.st {
		case htText:
			if h.c2 {
				break
			}
			// A run of plain text. A single space between two visible
			// characters needs no collapsing and stays in the run.
			i := 0
			for i < len(p) {
				if !htmlSpecial[p[i]] {
					i++
					continue
				}
				if p[i] == ' ' && i > 0 && i+1 < len(p) && !htmlSpecial[p[i+1]] && !isHTMLSpace(p[i-1]) {
					i += 2
					continue
				}
				break
			}
			if i > 0 {
				h.text(p[:i])
				p = p[i:]
				continue
			}
		case htAttrs:
			if i := bytes.IndexAny(p, "\"'>"); i > 0 {
				p = p[i:]
			} else if i < 0 {
				p = nil
				continue
			}
		case htAttrQuoted:
			if i := bytes.IndexByte(p, h.quote); i > 0 {
				p = p[i:]
			} else if i < 0 {
				p = nil
				continue
			}
		case htRaw, htBogus:
			target := byte('<')
			if h.st == htBogus {
				target = '>'
			}
			if h.st == htBogus || h.rawSeen == 0 {
				if i := bytes.IndexByte(p, target); i > 0 {
					p = p[i:]
				} else if i < 0 {
					p = nil
					continue
				}
			}
		}
		c := p[0]
		used := h.step(c)
		if used {
			p = p[1:]
		}
	}
	h.flushOut()
}

// step handles one byte; false means the byte must be read again in the
// new state.
func (h *htmlText) step(c byte) bool {
	switch h.st {
	case htText:
		if h.c2 {
			h.c2 = false
			if c == 0xA0 {
				h.nbsp()
				return true
			}
			h.text([]byte{0xC2})
			return false
		}
		switch {
		case c == '<':
			h.st = htTagOpen
		case c == '&':
			h.st, h.elen = htEntity, 0
		case c == 0xC2:
			h.c2 = true
		case isHTMLSpace(c):
			h.space()
		default:
			h.text([]byte{c})
		}
	case htTagOpen:
		switch {
		case isASCIILetter(c):
			h.st, h.endTag, h.nlen = htTagName, false, 0
			return false
		case c == '/':
			h.st = htEndTagOpen
		case c == '!':
			h.st, h.dash = htMarkup, 0
		case c == '?':
			h.st = htBogus
		default: // "a < b": a literal '<'
			h.text([]byte{'<'})
			h.st = htText
			return false
		}
	case htEndTagOpen:
		switch {
		case isASCIILetter(c):
			h.st, h.endTag, h.nlen = htTagName, true, 0
			return false
		case c == '>':
			h.st = htText
		default:
			h.st = htBogus
		}
	case htTagName:
		switch {
		case c == '>':
			h.endOfTag()
		case isHTMLSpace(c) || c == '/':
			h.st = htAttrs
		default:
			if h.nlen < len(h.name) {
				h.name[h.nlen] = lowerASCII(c)
			}
			h.nlen++
		}
	case htAttrs:
		switch c {
		case '>':
			h.endOfTag()
		case '"', '\'':
			h.st, h.quote = htAttrQuoted, c
		}
	case htAttrQuoted:
		if c == h.quote {
			h.st = htAttrs
		}
	case htMarkup:
		switch {
		case c == '-' && h.dash == 0:
			h.dash = 1
		case c == '-' && h.dash == 1:
			h.st, h.dash, h.clen = htComment, 0, 0
		case c == '>':
			h.st = htText
		default:
			h.st = htBogus
		}
	case htComment:
		switch {
		case c == '>' && (h.dash >= 2 || h.clen == h.dash && h.clen <= 1):
			// "-->", or the abrupt "<!-->" and "<!--->" of HTML5
			h.st = htText
		case c == '-':
			h.dash++
		default:
			h.dash = 0
		}
		h.clen++
	case htBogus:
		if c == '>' {
			h.st = htText
		}
	case htRaw:
		h.rawStep(c)
	case htEntity:
		return h.entityStep(c)
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (h *htmlText) endOfTag() {
	h.st = htText
	if h.nlen > len(h.name) {
		return
	}
	name := h.name[:h.nlen]
	if htmlBlock(name) {
		h.ws = '\n'
	}
	if !h.endTag {
		switch {
		case string(name) == "script":
			h.st, h.raw, h.rawSeen = htRaw, "script", 0
		case string(name) == "style":
			h.st, h.raw, h.rawSeen = htRaw, "style", 0
		}
	}
}

// rawStep looks for the end tag "</script" or "</style" in raw text.
func (h *htmlText) rawStep(c byte) {
	target := len(h.raw) + 2
	switch {
	case h.rawSeen == 0:
		if c == '<' {
			h.rawSeen = 1
		}
	case h.rawSeen == 1:
		h.rawSeen = 0
		if c == '/' {
			h.rawSeen = 2
		} else if c == '<' {
			h.rawSeen = 1
		}
	case h.rawSeen < target:
		if c|0x20 == h.raw[h.rawSeen-2] {
			h.rawSeen++
		} else if c == '<' {
			h.rawSeen = 1
		} else {
			h.rawSeen = 0
		}
	default: // matched "</name": the end tag if a delimiter follows
		switch {
		case isHTMLSpace(c) || c == '/':
			h.st, h.endTag, h.nlen = htAttrs, true, 0
		case c == '>':
			h.st = htText
		case c == '<':
			h.rawSeen = 1
		default:
			h.rawSeen = 0
		}
	}
}

// entityStep collects a character reference after '&'.
func (h *htmlText) entityStep(c byte) bool {
	if isASCIIAlnum(c) || c == '#' && h.elen == 0 {
		if h.elen < len(h.ent) {
			h.ent[h.elen] = c
			h.elen++
			return true
		}
		// Too long for any entity: literal text.
		h.st = htText
		h.text([]byte{'&'})
		h.text(h.ent[:h.elen])
		return false
	}
	h.st = htText
	if c == ';' {
		h.entity(true)
		return true
	}
	h.entity(false)
	return false
}

// commonEntity decodes the most common named references without
// html.UnescapeString, which allocates.
func commonEntity(name []byte) (rune, bool) {
	switch string(name) {
	case "amp":
		return '&', true
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "quot":
		return '"', true
	case "apos":
		return '\'', true
	case "nbsp":
		return 0xA0, true
	case "lsqb", "lbrack":
		return '[', true
	case "rsqb", "rbrack":
		return ']', true
	}
	return 0, false
}

// simpleEntity decodes the common named references and the plain numeric
// ones (printable ASCII, or above U+009F and not a surrogate); ok is false
// for anything that needs HTML5's full rules.
func simpleEntity(name []byte) (rune, bool) {
	if len(name) > 1 && name[0] == '#' {
		var v rune
		digits := name[1:]
		base := rune(10)
		if digits[0] == 'x' || digits[0] == 'X' {
			digits, base = digits[1:], 16
		}
		if len(digits) == 0 || len(digits) > 6 {
			return 0, false
		}
		for _, c := range digits {
			d, ok := unhex(c)
			if !ok || rune(d) >= base {
				return 0, false
			}
			v = v*base + rune(d)
		}
		if v >= 0x20 && v < 0x7F || v > 0x9F && v < 0xD800 || v > 0xDFFF && v <= 0x10FFFF {
			return v, true
		}
		return 0, false
	}
	return commonEntity(name)
}

func (h *htmlText) entity(semicolon bool) {
	if semicolon {
		if r, ok := simpleEntity(h.ent[:h.elen]); ok {
			h.entityRune(r)
			return
		}
	}
	ref := make([]byte, 0, h.elen+2)
	ref = append(ref, '&')
	ref = append(ref, h.ent[:h.elen]...)
	if semicolon {
		ref = append(ref, ';')
	}
	s := html.UnescapeString(string(ref))
	if s == string(ref) { // not a reference: literal text
		h.text(ref)
		return
	}
	for _, r := range s {
		h.entityRune(r)
	}
}

// entityRune emits a character from a reference.
func (h *htmlText) entityRune(r rune) {
	switch {
	case r == 0xA0:
		h.nbsp()
	case r < utf8.RuneSelf && isHTMLSpace(byte(r)):
		h.space()
	default:
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		h.text(buf[:n])
	}
}

func (h *htmlText) close() {
	switch {
	case h.st == htEntity:
		h.entity(false)
	case h.st == htTagOpen:
		h.text([]byte{'<'})
	case h.c2:
		h.text([]byte{0xC2})
	}
	h.st, h.c2 = htText, false
	h.flushOut()
	h.next.close()
}
