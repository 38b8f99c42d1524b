package classify

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// htmlText turns HTML (UTF-8, after charset decoding) into the text a
// reader sees (R33), streaming with bounded state. It tokenises as
// browsers do (the HTML5 tokenizer, WHATWG HTML section 13.2.5), for the
// states that decide what is text:
//   - tags are removed, so "[SEC<b></b>RET]" reads "[SECRET]"; block
//     elements (p, div, br, td, li, ...) break the line;
//   - attribute values are skipped with HTML5's rules: a quote inside an
//     unquoted value (title=x"y) is part of it and opens nothing;
//   - comments end at "-->", "--!>", or the abrupt "<!-->" and "<!--->";
//     "<!DOCTYPE>", "<?...>" and other bogus comments at '>';
//   - the content of script, style, xmp, iframe, noembed and noframes is
//     dropped; title and textarea are RCDATA; plaintext ends the markup;
//     noscript is read as HTML (mail clients run no scripts);
//   - character references are decoded as HTML5 does (x/net/html's
//     UnescapeString, which, unlike the standard library's copy, also reads
//     a one-digit numeric reference:
//     every named reference, the legacy ones such as &amp without a
//     semicolon, numeric ones with or without it);
//   - white space collapses to one space as rendering does, so
//     "[TOP\r\nSECRET]" in the source reads "[TOP SECRET]".
//
// The views of styled text (issue 11 point 4; see views): text inside an
// element hidden by CSS (display:none, visibility:hidden, mso-hide:all,
// opacity:0, a font too small to read, a box of no width or height,
// transparent or white text, scale(0), clip, moved off the page) or the
// hidden attribute, template content and ruby annotations, the alt text of images,
// CSS generated content and the title go to the all-text view only; the
// content of Outlook's conditional comments (<!--[if mso]>...<![endif]-->,
// which Outlook renders and browsers do not) is in the Outlook and
// all-text views, the downlevel-revealed content of <!--[if !mso]><!-->
// ... <!--<![endif]--> (shown by every client but Outlook) in the browser
// and all-text views; text under text-transform:uppercase or
// font-variant:small-caps is read in capitals in the rendered views, as
// written in the all-text view.
// A named reference without its semicolon that HTML5 leaves literal
// (&lbrack) is decoded in the all-text view, as lenient clients do.
// The class rules of <style> blocks that hide or restyle text apply too
// (styleSheet), and the strings of its content declarations (generated
// content, "p:before { content: "..." }") are text of the all-text view.
// Limits: other selectors and rules inside at-rules are not applied; the element stack is a bounded
// approximation of HTML5 tree construction (an end tag closes up to its
// open element, or is ignored).
type htmlText struct {
	v      *views
	one    [1]byte // a byte stepped to bogus
	cdata  int     // in a bogus comment: bytes of "[CDATA[" matched, cdataIn inside one, -1 not one
	st     int
	ws     byte // pending white space: 0, ' ' or '\n'
	wsMask int  // the views it is in: those that showed it (a space in
	// a hidden element is no space in the rendered views)

	name   [16]byte // tag or attribute name, lower case, truncated
	nlen   int
	tag    [16]byte // the tag's name
	tlen   int
	endTag bool
	quote  byte
	attr   int // what the current attribute value is: atOther, atStyle, atClass
	css    cssParser
	cls    cssParser   // the effect of the tag's classes (sheet rules)
	styled bool        // css or cls was touched in this tag
	sheet  *styleSheet // the class rules of the <style> blocks so far
	ctok   [maxCSSName]byte
	ctlen  int
	aent   [40]byte // a character reference in a style value
	aelen  int
	inAEnt bool

	dash    int     // comment: consecutive '-' seen
	clen    int     // comment: bytes seen
	cpre    byte    // comment: "[if" prefix state (0 none, 1..3 matched, 4 waiting for "]>", 5 no)
	prevBr  bool    // comment: the previous byte was ']'
	cbuf    [9]byte // comment: its first bytes, to recognise "<![endif]"
	cneg    bool    // the condition of this comment is negated ("!mso")
	condNeg bool    // the condition of the conditional content is negated
	clen2   int     // conditional content: bytes seen
	cond    bool    // inside the content of a conditional comment (Outlook only)
	reveal  bool    // after "<!--[if !mso]><!-->": content Outlook does not show
	cdash   int     // conditional content: consecutive '-'
	cbang   bool    // conditional content: "--!" seen
	cdepth  int     // stack depth when the conditional content began
	raw     string
	rawSeen int // bytes of "</"+raw matched in raw text
	rcdata  bool
	ent     [40]byte
	elen    int

	stack    []htmlElem
	overflow int
	hideAt   int  // the overflow depth of a hiding element past the stack, 0 if none
	hidden   bool // the current element hides its text
	upper    bool // the current element shows its text in capitals
	title    bool // inside title: not rendered in the message
}

// htmlElem is an open element with the style it passes on.
type htmlElem struct {
	name    [16]byte
	nlen    int
	dnone   bool // display:none here or above: nothing below is rendered
	visHide bool // visibility:hidden (inherited, may be undone below)
	upper   bool
}

const maxHTMLDepth = 256

const (
	htText = iota
	htTagOpen
	htEndTagOpen
	htTagName
	htBeforeAttrName
	htAttrName
	htAfterAttrName
	htBeforeAttrValue
	htAttrValueQuoted
	htAttrValueUnquoted
	htAfterAttrValueQuoted
	htSelfClosing
	htMarkup // after "<!"
	htMarkupDash
	htComment // inside "<!-- -->"
	htBogus   // "<!DOCTYPE ...>", "<?...>": up to '>'
	htRaw     // raw text (script, style) or RCDATA (title, textarea)
	htEntity
	htPlaintext
)

// Attribute kinds.
const (
	atOther = iota
	atStyle
	atClass
	atAlt
)

// htmlSpecial marks the bytes that end a run of plain text.
var htmlSpecial = func() (t [256]bool) {
	for _, c := range []byte{'<', '&', ' ', '\t', '\r', '\n', '\f'} {
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

// htmlVoid reports the elements that have no end tag (never stacked).
func htmlVoid(name []byte) bool {
	switch string(name) {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen",
		"link", "meta", "param", "source", "track", "wbr":
		return true
	}
	return false
}

// newHTMLText renders HTML into next; the all-text view is cloned from
// next when the views first differ (next is a matcher).
func newHTMLText(next stage) *htmlText { return newHTMLViews(next, nil) }

// newHTMLViews renders HTML into the rendered view and the all-text view
// (all nil: cloned from rendered when needed).
func newHTMLViews(rendered, all stage) *htmlText {
	return &htmlText{v: newViews(rendered, all)}
}

// text emits visible non-space bytes, after any pending white space.
func (h *htmlText) text(b []byte) {
	h.flushWS()
	if mask := h.mask(); h.upper && mask != mAll {
		h.v.upper(mask, b)
	} else {
		h.v.emit(mask, b)
	}
}

// mask is the views that show the current text.
func (h *htmlText) mask() int {
	if h.hidden || h.title {
		return mAll
	}
	m := mEvery
	if h.cond {
		m &^= mBrowser
	}
	if h.reveal {
		m &^= mOutlook
	}
	return m
}

func (h *htmlText) space() { h.addWS(' ', h.mask()) }

// addWS adds white space seen in the views of mask; runs collapse, and a
// line break wins.
func (h *htmlText) addWS(c byte, mask int) {
	if h.ws != '\n' {
		h.ws = c
	}
	h.wsMask |= mask
}

// flushWS emits pending white space, before the next text.
func (h *htmlText) flushWS() {
	if h.ws != 0 {
		h.v.emit(h.wsMask, []byte{h.ws})
		h.ws, h.wsMask = 0, 0
	}
}

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isASCIIAlnum(c byte) bool { return isASCIILetter(c) || '0' <= c && c <= '9' }

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
}

func (h *htmlText) write(p []byte) {
	for len(p) > 0 {
		// Bulk paths for the common states; step does the rest. Inside
		// conditional content every byte is stepped, to see "-->".
		if !h.cond {
			switch h.st {
			case htText, htPlaintext:
				// A run of plain text. A single space between two visible
				// characters needs no collapsing and stays in the run
				// (unless hidden: white space is in both views).
				i := 0
				inner := !h.hidden && !h.title
				for i < len(p) {
					if !htmlSpecial[p[i]] || h.st == htPlaintext && (p[i] == '<' || p[i] == '&') {
						i++
						continue
					}
					if inner && p[i] == ' ' && i > 0 && i+1 < len(p) && !htmlSpecial[p[i+1]] && !isHTMLSpace(p[i-1]) {
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
			case htAttrValueQuoted:
				if h.attr == atOther {
					if i := bytes.IndexByte(p, h.quote); i > 0 {
						p = p[i:]
					} else if i < 0 {
						p = nil
						continue
					}
				}
			case htTagName, htAttrName:
				// A run of name bytes, lower cased and truncated as step does.
				i := 0
				for i < len(p) && !isHTMLSpace(p[i]) && p[i] != '/' && p[i] != '>' && (h.st == htTagName || p[i] != '=') {
					i++
				}
				if i > 0 {
					buf, n := h.tag[:], &h.tlen
					if h.st == htAttrName {
						buf, n = h.name[:], &h.nlen
					}
					n0 := *n
					for j := range min(i, max(0, len(buf)-n0)) {
						buf[n0+j] = lowerASCII(p[j])
					}
					*n = n0 + i
					p = p[i:]
					continue
				}
			case htAttrValueUnquoted:
				if h.attr == atOther {
					i := 0
					for i < len(p) && !isHTMLSpace(p[i]) && p[i] != '>' {
						i++
					}
					if p = p[i:]; len(p) == 0 {
						continue
					}
				}
			case htComment:
				if h.cpre >= 5 && h.dash == 0 && h.clen >= len(h.cbuf) {
					if i := bytes.IndexByte(p, '-'); i > 0 {
						h.clen += i
						p = p[i:]
					} else if i < 0 {
						h.clen += len(p)
						p = nil
						continue
					}
				}
			case htRaw, htBogus:
				if h.st == htBogus || h.rawSeen == 0 && !h.rcdata && h.raw != "style" {
					target := byte('<')
					if h.st == htBogus {
						target = '>'
					}
					i := bytes.IndexByte(p, target)
					if h.st == htBogus && i != 0 {
						if i < 0 {
							h.bogus(p)
						} else {
							h.bogus(p[:i])
						}
					}
					if i > 0 {
						p = p[i:]
					} else if i < 0 {
						p = nil
						continue
					}
				}
			}
		}
		c := p[0]
		if h.cond && h.condEnd(c) {
			p = p[1:]
			continue
		}
		if h.step(c) {
			p = p[1:]
		}
	}
	h.v.flush()
}

// condEnd follows the raw bytes of a conditional comment's content: the
// comment, and so the content, ends at the first "-->" or "--!>" (HTML5).
func (h *htmlText) condEnd(c byte) bool {
	h.clen2++
	switch {
	case c == '-':
		h.cdash++
		h.cbang = false
	case c == '!' && h.cdash >= 2:
		h.cbang = true
		return false
	case c == '>' && (h.cdash >= 2 || h.cbang):
		h.cond, h.cdash, h.cbang = false, 0, false
		h.st = htText
		h.popTo(h.cdepth)
		if h.condNeg && h.clen2 <= 6 {
			// "<!--[if !mso]><!-->": what follows, up to "<!--<![endif]-->",
			// is shown by every client but Outlook.
			h.reveal = true
		}
		return true
	default:
		h.cdash, h.cbang = 0, false
	}
	return false
}

// step handles one byte; false means the byte must be read again in the
// new state.
func (h *htmlText) step(c byte) bool {
	switch h.st {
	case htText:
		switch {
		case c == '<':
			h.st = htTagOpen
		case c == '&':
			h.st, h.elen = htEntity, 0
		case isHTMLSpace(c):
			h.space()
		default:
			h.text([]byte{c})
		}
	case htPlaintext:
		if isHTMLSpace(c) {
			h.space()
		} else {
			h.text([]byte{c})
		}
	case htTagOpen:
		switch {
		case isASCIILetter(c):
			h.st, h.endTag, h.tlen = htTagName, false, 0
			return false
		case c == '/':
			h.st = htEndTagOpen
		case c == '!':
			h.st = htMarkup
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
			h.st, h.endTag, h.tlen = htTagName, true, 0
			return false
		case c == '>':
			h.st = htText
		default:
			h.st = htBogus
			return false
		}
	case htTagName:
		switch {
		case c == '>':
			h.endOfTag()
		case isHTMLSpace(c):
			h.st = htBeforeAttrName
		case c == '/':
			h.st = htSelfClosing
		default:
			if h.tlen < len(h.tag) {
				h.tag[h.tlen] = lowerASCII(c)
			}
			h.tlen++
		}
	case htBeforeAttrName:
		switch {
		case isHTMLSpace(c):
		case c == '/' || c == '>':
			h.st = htAfterAttrName
			return false
		default: // '=' here starts a name, as HTML5 says
			h.st, h.nlen = htAttrName, 0
			h.addName(c)
		}
	case htAttrName:
		switch {
		case isHTMLSpace(c) || c == '/' || c == '>':
			h.endAttrName()
			h.st = htAfterAttrName
			return false
		case c == '=':
			h.endAttrName()
			h.st = htBeforeAttrValue
		default: // quotes and '<' are part of the name
			h.addName(c)
		}
	case htAfterAttrName:
		switch {
		case isHTMLSpace(c):
		case c == '/':
			h.st = htSelfClosing
		case c == '=':
			h.st = htBeforeAttrValue
		case c == '>':
			h.endOfTag()
		default:
			h.st, h.nlen = htAttrName, 0
			return false
		}
	case htBeforeAttrValue:
		switch {
		case isHTMLSpace(c):
		case c == '"' || c == '\'':
			h.st, h.quote = htAttrValueQuoted, c
			h.startValue()
		case c == '>':
			h.attr = atOther
			h.endOfTag()
		default:
			h.st = htAttrValueUnquoted
			h.startValue()
			return false
		}
	case htAttrValueQuoted:
		if c == h.quote {
			h.endValue()
			h.st = htAfterAttrValueQuoted
		} else {
			h.valueByte(c)
		}
	case htAttrValueUnquoted:
		switch {
		case isHTMLSpace(c):
			h.endValue()
			h.st = htBeforeAttrName
		case c == '>':
			h.endValue()
			h.endOfTag()
		default: // quotes, '=', '<' and '`' are part of the value
			h.valueByte(c)
		}
	case htAfterAttrValueQuoted:
		switch {
		case isHTMLSpace(c):
			h.st = htBeforeAttrName
		case c == '/':
			h.st = htSelfClosing
		case c == '>':
			h.endOfTag()
		default:
			h.st = htBeforeAttrName
			return false
		}
	case htSelfClosing:
		if c == '>' {
			h.endOfTag() // the flag is ignored on HTML elements
		} else {
			h.st = htBeforeAttrName
			return false
		}
	case htMarkup:
		if c == '-' {
			h.st = htMarkupDash
		} else {
			h.st = htBogus // DOCTYPE, [CDATA[ outside foreign content, ...
			return false
		}
	case htMarkupDash:
		if c == '-' {
			h.st, h.dash, h.clen, h.cpre, h.prevBr, h.cneg = htComment, 0, 0, 0, false, false
		} else {
			h.st = htBogus
			return false
		}
	case htComment:
		h.commentStep(c)
	case htBogus:
		if c == '>' {
			h.st, h.cdata = htText, 0
		} else {
			h.one[0] = c
			h.bogus(h.one[:]) // as the bulk path in write does
		}
	case htRaw:
		h.rawStep(c)
	case htEntity:
		return h.entityStep(c)
	}
	return true
}

// cdataOpen starts a CDATA section after "<!".
const cdataOpen = "[CDATA["

// cdataIn: h.cdata inside a CDATA section.
const cdataIn = len(cdataOpen)

// bogus reads bytes of a bogus comment (up to, not including, its '>').
// The text of a CDATA section goes to the all-text view: in SVG and
// MathML "<![CDATA[[SECRET]]]>" is text a browser shows (in HTML it is a
// comment, and reading it anyway is the safe side). DOCTYPEs, processing
// instructions and Outlook's "<![endif]>" are not text.
func (h *htmlText) bogus(b []byte) {
	for len(b) > 0 && h.cdata >= 0 && h.cdata < cdataIn {
		if b[0] == cdataOpen[h.cdata] {
			h.cdata++
		} else {
			h.cdata = -1
		}
		b = b[1:]
	}
	if h.cdata == cdataIn && len(b) > 0 {
		h.v.emit(mAll, b)
	}
}

// commentStep follows a comment to its end (HTML5 comment states) and
// recognises a conditional comment, "<!--[if ...]>".
func (h *htmlText) commentStep(c byte) {
	switch {
	case c == '>' && (h.dash >= 2 || h.clen == h.dash && h.clen <= 1 || h.dash == -1):
		// "-->", "--!>", or the abrupt "<!-->" and "<!--->"
		h.st = htText
		if h.reveal && h.clen >= len(h.cbuf) && string(h.cbuf[:]) == "<![endif]" {
			h.reveal = false
		}
		return
	case c == '!' && h.dash >= 2:
		h.dash = -1
	case c == '-':
		h.dash = max(h.dash, 0) + 1
	default:
		h.dash = 0
	}
	switch {
	case h.cpre < 3:
		if c|0x20 == "[if"[h.cpre] || h.cpre == 0 && c == '[' {
			h.cpre++
		} else {
			h.cpre = 5
		}
	case h.cpre == 3:
		if isHTMLSpace(c) {
			h.cpre = 4
		} else {
			h.cpre = 5
		}
	case h.cpre == 4:
		if c == '>' && h.prevBr {
			// Outlook parses what follows as HTML, to "<![endif]-->".
			h.st, h.cond, h.cdash, h.cbang, h.clen2, h.condNeg = htText, true, 0, false, 0, h.cneg
			h.cdepth = len(h.stack) + h.overflow
			h.cpre = 5
		}
		if c == '!' {
			h.cneg = true
		}
		h.prevBr = c == ']'
	}
	if h.clen < len(h.cbuf) {
		h.cbuf[h.clen] = c
	}
	h.clen++
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (h *htmlText) addName(c byte) {
	if h.nlen < len(h.name) {
		h.name[h.nlen] = lowerASCII(c)
	}
	h.nlen++
}

// endAttrName acts on an attribute name: hidden (the HTML hidden
// attribute is display:none) and style.
func (h *htmlText) endAttrName() {
	h.attr = atOther
	if h.endTag || h.nlen > len(h.name) {
		return
	}
	switch string(h.name[:h.nlen]) {
	case "hidden": // as the UA style sheet's display:none: a style may undo it
		h.cls.disp, h.styled = -1, true
	case "style":
		h.attr, h.styled = atStyle, true
	case "class":
		if h.sheet != nil && len(h.sheet.rules) > 0 {
			h.attr, h.ctlen, h.styled = atClass, 0, true
		}
	case "alt":
		// Shown in place of an image, as Outlook does while it blocks
		// images: text of the all-text view.
		switch string(h.tag[:min(h.tlen, len(h.tag))]) {
		case "img", "area", "input":
			h.attr = atAlt
		}
	case "value", "placeholder":
		// The text in a form field, shown in the field (or a button):
		// text of the all-text view.
		switch string(h.tag[:min(h.tlen, len(h.tag))]) {
		case "input", "textarea", "button":
			h.attr = atAlt
		}
	case "title":
		// Shown as a tooltip over any element: text of the all-text view.
		h.attr = atAlt
	}
}

func (h *htmlText) startValue() {
	h.inAEnt = false
	if h.attr == atStyle {
		h.css.startDecl()
	}
}

// valueByte is a byte of an attribute value: only style values are read,
// with their character references decoded.
func (h *htmlText) valueByte(c byte) {
	switch h.attr {
	case atClass:
		h.classByte(c)
		return
	case atOther:
		return
	}
	if h.inAEnt {
		if (isASCIIAlnum(c) || c == '#') && h.aelen < len(h.aent) {
			h.aent[h.aelen] = c
			h.aelen++
			return
		}
		h.inAEnt = false
		ref := "&" + string(h.aent[:h.aelen])
		if c == ';' {
			ref += ";"
		}
		for _, b := range []byte(html.UnescapeString(ref)) {
			h.attrText(b)
		}
		if c == ';' {
			return
		}
	}
	if c == '&' {
		h.inAEnt, h.aelen = true, 0
		return
	}
	h.attrText(c)
}

// hiddenText is text of the all-text view only, from markup.
func (h *htmlText) hiddenText(b []byte) {
	h.flushWS()
	h.v.hidden(b)
}

// attrText is a decoded byte of a style or alt value.
func (h *htmlText) attrText(c byte) {
	if h.attr == atStyle {
		h.css.feed(c)
		return
	}
	h.hiddenText([]byte{c})
}

// classByte reads a class attribute: each class named by a rule of the
// style sheet applies its effect.
func (h *htmlText) classByte(c byte) {
	if !isHTMLSpace(c) {
		if h.ctlen < len(h.ctok) {
			h.ctok[h.ctlen] = lowerASCII(c)
		}
		h.ctlen++
		return
	}
	if h.ctlen > 0 && h.ctlen <= len(h.ctok) {
		h.sheet.apply(h.ctok[:h.ctlen], &h.cls)
	}
	h.ctlen = 0
}

func (h *htmlText) endValue() {
	if h.attr == atClass {
		h.classByte(' ')
	}
	if h.attr == atStyle || h.attr == atAlt {
		if h.inAEnt {
			h.inAEnt = false
			for _, b := range []byte(html.UnescapeString("&" + string(h.aent[:h.aelen]))) {
				h.attrText(b)
			}
		}
	}
	if h.attr == atStyle {
		h.css.endDecl()
	}
	h.attr = atOther
}

func (h *htmlText) endOfTag() {
	h.st = htText
	var css styleEffect
	if h.styled {
		// The inline style wins over the classes.
		c, k := &h.css, &h.cls
		css = styleEffect{dnone: c.dnone || k.dnone || c.disp < 0 || c.disp == 0 && k.disp < 0, vis: c.vis, upper: c.upper}
		if css.vis == 0 {
			css.vis = k.vis
		}
		if css.upper == 0 {
			css.upper = k.upper
		}
		h.css, h.cls, h.styled = cssParser{}, cssParser{}, false
	}
	name := h.tag[:min(h.tlen, len(h.tag))] // a longer name is known by its start
	switch string(name) {
	case "template", "rt", "rp":
		// Not rendered in the line of text: a template's content never,
		// ruby annotations above it (rt) or only without ruby support
		// (rp). "[SEC<ruby>R<rt>x</rt></ruby>ET]" reads [SECRET].
		if !h.endTag {
			css.dnone = true
		}
	}
	if h.tlen > len(h.tag) {
		if h.endTag {
			h.pop(name)
		} else {
			h.push(name, css)
		}
		return
	}
	// A block breaks the line in the views that show the block.
	block := htmlBlock(name)
	if h.endTag {
		if block {
			h.addWS('\n', h.mask())
		}
		h.pop(name)
		return
	}
	switch string(name) {
	case "script", "style", "iframe", "noembed", "noframes":
		h.st, h.raw, h.rawSeen, h.rcdata = htRaw, string(name), 0, false
	case "title", "textarea", "xmp":
		// xmp is raw text, shown as it is (like pre): read as the RCDATA
		// of a textarea, which decodes references too (fail safe).
		h.st, h.raw, h.rawSeen, h.rcdata = htRaw, string(name), 0, true
		h.title = string(name) == "title"
	case "plaintext":
		h.st = htPlaintext
	}
	if !htmlVoid(name) {
		h.push(name, css)
	}
	if block {
		h.addWS('\n', h.mask())
	}
}

// push opens an element with the style of its attributes.
func (h *htmlText) push(name []byte, css styleEffect) {
	h.implyEnd(name)
	top := htmlElem{}
	if len(h.stack) > 0 {
		top = h.stack[len(h.stack)-1]
	}
	if len(h.stack) >= maxHTMLDepth {
		// Counted, styled as its parent, except that hiding still hides
		// until this element closes.
		h.overflow++
		if !h.hidden && (css.dnone || css.vis < 0) {
			h.hidden, h.hideAt = true, h.overflow
		}
		return
	}
	e := htmlElem{dnone: top.dnone || css.dnone, visHide: top.visHide, upper: top.upper}
	e.nlen = copy(e.name[:], name)
	if css.vis != 0 {
		e.visHide = css.vis < 0
	}
	if css.upper != 0 {
		e.upper = css.upper > 0
	}
	h.stack = append(h.stack, e)
	h.restyle()
}

// pop closes the innermost open element of that name and those inside
// it; an end tag without an open element is ignored.
func (h *htmlText) pop(name []byte) {
	if h.overflow > 0 {
		if h.overflow == h.hideAt {
			h.hideAt = 0
			h.restyle()
		}
		h.overflow--
		return
	}
	for i := len(h.stack) - 1; i >= 0; i-- {
		e := &h.stack[i]
		if string(e.name[:e.nlen]) == string(name) {
			h.popTo(i)
			return
		}
	}
}

// popTo closes the elements above depth n.
func (h *htmlText) popTo(n int) {
	if n < len(h.stack) {
		h.stack = h.stack[:n]
		h.overflow = 0
	} else if n-len(h.stack) < h.overflow {
		h.overflow = n - len(h.stack)
	}
	if h.hideAt > h.overflow {
		h.hideAt = 0
	}
	h.restyle()
}

// implyEnd closes what HTML5 tree construction closes when an element
// starts (WHATWG HTML 13.2.6.4.7, simplified): a block closes an open p,
// li an open li, dt or dd an open dt or dd, td or th an open cell, tr an
// open row, option an open option; the search stops at the boundaries of
// the scope (table, td, th, ...). Without it, unclosed paragraphs would
// fill the bounded stack.
func (h *htmlText) implyEnd(name []byte) {
	var closes [3]string // the open elements this one closes
	switch string(name) {
	case "li":
		closes[0] = "li"
	case "dt", "dd":
		closes[0], closes[1] = "dt", "dd"
	case "td", "th":
		closes[0], closes[1] = "td", "th"
	case "tr":
		closes[0], closes[1], closes[2] = "tr", "td", "th"
	case "option":
		closes[0] = "option"
	case "br", "body", "html", "head", "title":
		return
	default:
		if !htmlBlock(name) {
			return
		}
		closes[0] = "p"
	}
	for i := len(h.stack) - 1; i >= 0; i-- {
		o := h.stack[i].name[:h.stack[i].nlen]
		if string(o) == closes[0] || string(o) == closes[1] || string(o) == closes[2] {
			h.popTo(i)
			return
		}
		switch string(o) {
		case "table", "caption", "html", "button", "object", "template", "marquee":
			return // the scope ends here
		case "td", "th":
			if string(name) != "tr" {
				return
			}
		case "ul", "ol":
			if string(name) == "li" {
				return
			}
		case "dl":
			if string(name) == "dt" || string(name) == "dd" {
				return
			}
		}
	}
}

func (h *htmlText) restyle() {
	h.hidden, h.upper = false, false
	if len(h.stack) > 0 {
		e := h.stack[len(h.stack)-1]
		h.hidden, h.upper = e.dnone || e.visHide, e.upper
	}
	h.hidden = h.hidden || h.hideAt > 0
}

// rawStep looks for the end tag "</script", "</style", ... in raw text;
// RCDATA (title, textarea) is text.
func (h *htmlText) rawStep(c byte) {
	target := len(h.raw) + 2
	matched := h.rawSeen
	switch {
	case h.rawSeen == 0:
		if c == '<' {
			h.rawSeen = 1
			return
		}
	case h.rawSeen == 1:
		h.rawSeen = 0
		if c == '/' {
			h.rawSeen = 2
			return
		} else if c == '<' {
			h.rawSeen = 1
		}
	case h.rawSeen < target:
		if c|0x20 == h.raw[h.rawSeen-2] {
			h.rawSeen++
			return
		} else if c == '<' {
			h.rawSeen = 1
		} else {
			h.rawSeen = 0
		}
	default: // matched "</name": the end tag if a delimiter follows
		switch {
		case isHTMLSpace(c) || c == '/' || c == '>':
			copy(h.tag[:], h.raw)
			h.tlen, h.endTag, h.rawSeen = len(h.raw), true, 0
			h.title = false
			if c == '>' {
				h.endOfTag()
			} else {
				h.st = htBeforeAttrName
			}
			return
		case c == '<':
			h.rawSeen = 1
		default:
			h.rawSeen = 0
		}
	}
	if h.rcdata || h.raw == "style" {
		// What looked like the start of the end tag was text.
		if matched > 0 {
			h.rawText([]byte("</" + h.raw)[:min(matched, target)])
		}
		if h.rawSeen == 0 {
			h.rawText([]byte{c})
		}
	}
}

// rawText is text of an RCDATA element, or of a style sheet.
func (h *htmlText) rawText(b []byte) {
	if h.raw == "style" {
		if h.sheet == nil {
			h.sheet = &styleSheet{content: h.hiddenText}
		}
		for _, c := range b {
			h.sheet.feed(c)
		}
		return
	}
	for _, c := range b {
		if isHTMLSpace(c) {
			h.space()
		} else {
			h.text([]byte{c})
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
			d, ok := message.Unhex(c)
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
			switch {
			case r == 0xA0:
				// A no-break space does not collapse; read as the space the
				// normaliser would make of it, without its slow path.
				h.text([]byte{' '})
			case r < utf8.RuneSelf && isHTMLSpace(byte(r)):
				h.space()
			default:
				var buf [utf8.UTFMax]byte
				h.text(buf[:utf8.EncodeRune(buf[:], r)])
			}
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
	if !semicolon && h.elen > 1 && h.ent[0] != '#' {
		// HTML5 leaves "&lbrack" literal; a lenient client reads the
		// longest reference it starts with: the all-text view does.
		if l := lenientEntity(h.ent[:h.elen]); l != "" && l != s {
			h.splitText(s, l)
			return
		}
	}
	if s == string(ref) { // not a reference: literal text
		h.text(ref)
		return
	}
	h.entityRunes(s)
}

// lenientEntity decodes the longest named reference that name starts
// with, as if it ended in a semicolon; "" when there is none.
func lenientEntity(name []byte) string {
	for j := len(name); j >= 2; j-- {
		ref := "&" + string(name[:j]) + ";"
		// A result ending in ';' is a shorter legacy name: not this one.
		if s := html.UnescapeString(ref); s != ref && (!strings.HasSuffix(s, ";") || string(name[:j]) == "semi") {
			return s + string(name[j:])
		}
	}
	return ""
}

// splitText emits rendered text r and all-text text a at the same place.
func (h *htmlText) splitText(r, a string) {
	h.flushWS()
	mask := h.mask()
	rb := []byte(r)
	if h.upper {
		rb = bytes.ToUpper(rb)
	}
	h.v.emit(mask&mRendered, rb)
	h.v.emit(mAll, []byte(a))
}

// entityRunes emits the characters of a reference; white space among
// them collapses like source white space (a no-break space does not: the
// normaliser reads it as a space).
func (h *htmlText) entityRunes(s string) {
	for len(s) > 0 {
		if isHTMLSpace(s[0]) {
			h.space()
			s = s[1:]
			continue
		}
		i := 1
		for i < len(s) && !isHTMLSpace(s[i]) {
			i++
		}
		h.text([]byte(s[:i]))
		s = s[i:]
	}
}

func (h *htmlText) close() {
	switch {
	case h.st == htEntity:
		h.entity(false)
	case h.st == htTagOpen:
		h.text([]byte{'<'})
	case h.st == htEndTagOpen:
		h.text([]byte("</"))
	}
	h.st = htText
	h.v.close()
}

// styleEffect is what the style of an element does to its text.
type styleEffect struct {
	dnone bool // not rendered
	vis   int  // visibility: -1 hidden, 1 visible, 0 inherited
	upper int  // capitals: 1, -1 not, 0 inherited
}

// cssParser reads the declarations of a style attribute, streaming, each
// bounded: property and value lower case, white space and comments
// dropped, "!important" ignored.
type cssParser struct {
	prop    [24]byte
	plen    int
	val     [32]byte
	vlen    int
	inVal   bool
	comment int // 1 after '/', 2 inside /* */, 3 after '*' inside

	dnone bool // mso-hide:all, font-size:0, opacity:0: not rendered
	disp  int  // display: -1 none, 1 another value, 0 not set
	vis   int  // visibility: -1 hidden, 1 visible, 0 inherited
	upper int  // text-transform / font-variant: 1 capitals, -1 none, 0 inherited
}

func (c *cssParser) startDecl() { c.plen, c.vlen, c.inVal, c.comment = 0, 0, false, 0 }

func (c *cssParser) feed(b byte) {
	switch c.comment {
	case 1:
		if b == '*' {
			c.comment = 2
			return
		}
		c.comment = 0
		c.add('/')
	case 2:
		if b == '*' {
			c.comment = 3
		}
		return
	case 3:
		switch b {
		case '/':
			c.comment = 0
		case '*':
		default:
			c.comment = 2
		}
		return
	}
	switch {
	case b == '/':
		c.comment = 1
	case b == ';':
		c.endDecl()
		c.startDecl()
	case b == ':' && !c.inVal:
		c.inVal = true
	case isHTMLSpace(b):
	default:
		c.add(lowerASCII(b))
	}
}

func (c *cssParser) add(b byte) {
	if c.inVal {
		if c.vlen < len(c.val) {
			c.val[c.vlen] = b
		}
		c.vlen++
	} else {
		if c.plen < len(c.prop) {
			c.prop[c.plen] = b
		}
		c.plen++
	}
}

func (c *cssParser) endDecl() {
	if c.comment == 1 {
		c.comment = 0
		c.add('/')
	}
	if !c.inVal || c.plen > len(c.prop) || c.vlen > len(c.val) {
		return
	}
	v := bytes.TrimSuffix(c.val[:c.vlen], []byte("!important"))
	switch string(c.prop[:c.plen]) {
	case "display":
		if string(v) == "none" {
			c.disp = -1
		} else {
			c.disp = 1
		}
	case "mso-hide":
		if string(v) == "all" {
			c.dnone = true
		}
	case "visibility":
		switch string(v) {
		case "hidden", "collapse":
			c.vis = -1
		case "visible":
			c.vis = 1
		}
	case "opacity", "width", "height", "max-width", "max-height":
		// A box of no size shows nothing of its text (an inline-block
		// with overflow hidden; without it the text may overflow, but
		// reading it as hidden only adds to what the rendered views
		// find: the all-text view keeps it).
		if isZero(v) {
			c.dnone = true
		}
	case "font-size":
		if isZero(v) || tinyLength(v) {
			c.dnone = true
		}
	case "color":
		// Transparent, or white: white on the usual white page is the
		// commonest way to hide words between the letters of a marking.
		switch string(v) {
		case "transparent", "white", "#fff", "#ffffff", "rgb(255,255,255)", "rgba(0,0,0,0)", "rgba(255,255,255,0)":
			c.dnone = true
		}
	case "transform":
		if bytes.Contains(v, []byte("scale(0)")) || bytes.Contains(v, []byte("scale(0,")) {
			c.dnone = true
		}
	case "clip":
		if bytes.HasPrefix(v, []byte("rect(0")) {
			c.dnone = true
		}
	case "text-indent", "left", "top", "margin-left", "margin-top":
		// Moved off the page: position:absolute; left:-9999px.
		if farNegative(v) {
			c.dnone = true
		}
	case "text-transform":
		if string(v) == "uppercase" {
			c.upper = 1
		} else {
			c.upper = -1
		}
	case "font-variant", "font-variant-caps":
		switch string(v) {
		case "small-caps", "all-small-caps", "petite-caps", "all-petite-caps", "unicase", "titling-caps":
			c.upper = 1
		case "normal":
			c.upper = -1
		}
	}
}

// tinyLength reports a font size too small to read: under 3px or 3pt, or
// under 0.2em, 0.2rem or 20%.
func tinyLength(v []byte) bool {
	n, unit, ok := cssNumber(v)
	if !ok {
		return false
	}
	switch unit {
	case "px", "pt":
		return n < 3
	case "em", "rem":
		return n < 0.2
	case "%":
		return n < 20
	}
	return false
}

// farNegative reports a length of -999 or less (in any unit): text moved
// off the page.
func farNegative(v []byte) bool {
	if len(v) < 2 || v[0] != '-' {
		return false
	}
	n, _, ok := cssNumber(v[1:])
	return ok && n >= 999
}

// cssNumber splits a non-negative CSS dimension into its number and unit.
func cssNumber(v []byte) (n float64, unit string, ok bool) {
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, "", false
	}
	n, err := strconv.ParseFloat(string(v[:i]), 64)
	return n, string(v[i:]), err == nil
}

// isZero reports a CSS length or number that is zero ("0", "0px", "0.0em").
func isZero(v []byte) bool {
	i := 0
	for i < len(v) && (v[i] == '0' || v[i] == '.') {
		i++
	}
	if i == 0 {
		return false
	}
	for _, b := range v[i:] {
		if !isASCIILetter(b) && b != '%' {
			return false
		}
	}
	return true
}

// Style sheet limits.
const (
	maxCSSRules = 64
	maxCSSName  = 32
	maxCSSSel   = 256
)

// styleSheet reads the rules of <style> blocks, streaming and bounded, and
// keeps those that hide or restyle text and select a class ("." name,
// optionally after an element name: ".hide", "span.x, .y"), so that a
// class cannot hide text from the rendered view unnoticed. Rules inside
// at-rules (@media, @font-face, ...) are not applied (a desktop client's
// view); nor are other selectors. Class names compare case-insensitively.
type styleSheet struct {
	rules   []cssRule
	sel     [maxCSSSel]byte
	slen    int
	inDecl  bool
	decl    cssParser
	comment int // in a selector: 1 after '/', 2 inside /* */, 3 after '*' inside
	atDepth int // inside an at-rule's block
	quote   byte
	inText  bool         // the string is generated content
	content func([]byte) // receives the strings of content declarations
	// A backslash escape in a string (CSS Syntax 4.3.7): 1 after the
	// backslash, 2 in its hex digits (escN of them, value escVal).
	esc    int
	escN   int
	escVal rune
}

type cssRule struct {
	name [maxCSSName]byte
	nlen int
	eff  cssParser
}

// escape follows a backslash escape in a string: "\5B " and "\[" are
// "[" (CSS Syntax 4.3.7), so content: "\5B SECRET\5D" renders [SECRET].
func (s *styleSheet) escape(c byte) {
	if v, ok := hexDigit(c); ok && s.escN < 6 {
		s.esc, s.escN, s.escVal = 2, s.escN+1, s.escVal<<4|rune(v)
		return
	}
	if s.esc == 2 {
		r := s.escVal
		if r == 0 || r > unicode.MaxRune || r >= 0xD800 && r <= 0xDFFF {
			r = unicode.ReplacementChar
		}
		s.esc = 0
		s.text(utf8.AppendRune(nil, r))
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			return // the one white space that ends a hex escape
		}
		s.feed(c)
		return
	}
	s.esc = 0
	if c == '\n' || c == '\r' || c == '\f' {
		return // an escaped line break continues the string
	}
	s.text([]byte{c})
}

// text passes a string's text on when it is generated content.
func (s *styleSheet) text(b []byte) {
	if s.inText && s.content != nil {
		s.content(b)
	}
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (s *styleSheet) feed(c byte) {
	if s.inDecl {
		if s.quote != 0 { // a string: ';' and '}' in it end nothing
			if s.esc > 0 {
				s.escape(c)
				return
			}
			switch {
			case c == '\\':
				s.esc, s.escN, s.escVal = 1, 0, 0
			case c == s.quote:
				s.quote = 0
			case s.inText && s.content != nil:
				s.content([]byte{c})
			}
			return
		}
		if c == '"' || c == '\'' {
			// "p:before { content: "[SECRET]" }": generated content is
			// rendered text (the all-text view).
			s.quote = c
			s.inText = s.decl.inVal && string(s.decl.prop[:min(s.decl.plen, len(s.decl.prop))]) == "content"
			return
		}
		if c == '}' {
			s.decl.endDecl()
			s.addRules()
			s.inDecl, s.slen = false, 0
			return
		}
		s.decl.feed(c)
		return
	}
	switch s.comment {
	case 1:
		if c == '*' {
			s.comment = 2
			return
		}
		s.comment = 0
		s.add('/')
	case 2:
		if c == '*' {
			s.comment = 3
		}
		return
	case 3:
		switch c {
		case '/':
			s.comment = 0
		case '*':
		default:
			s.comment = 2
		}
		return
	}
	if s.atDepth > 0 {
		switch c {
		case '{':
			s.atDepth++
		case '}':
			s.atDepth--
		}
		return
	}
	switch c {
	case '/':
		s.comment = 1
	case '{':
		sel := bytes.TrimSpace(s.sel[:min(s.slen, maxCSSSel)])
		if len(sel) > 0 && sel[0] == '@' {
			s.atDepth, s.slen = 1, 0
			return
		}
		s.inDecl = true
		s.decl = cssParser{}
		s.decl.startDecl()
	case '}', ';':
		s.slen = 0
	default:
		s.add(lowerASCII(c))
	}
}

func (s *styleSheet) add(c byte) {
	if s.slen < maxCSSSel {
		s.sel[s.slen] = c
	}
	s.slen++
}

// addRules keeps the rule just read if it matters and selects classes.
func (s *styleSheet) addRules() {
	eff := s.decl
	if !eff.dnone && eff.disp == 0 && eff.vis == 0 && eff.upper == 0 || s.slen > maxCSSSel {
		return
	}
	for _, sel := range bytes.Split(s.sel[:s.slen], []byte{','}) {
		sel = bytes.TrimSpace(sel)
		dot := bytes.IndexByte(sel, '.')
		if dot < 0 {
			continue
		}
		elem, name := sel[:dot], sel[dot+1:]
		if len(name) == 0 || len(name) > maxCSSName || !cssIdent(elem) || !cssIdent(name) {
			continue
		}
		s.addRule(name, eff)
	}
}

// cssIdent reports a plain identifier (no combinator, pseudo-class,
// attribute selector or second class).
func cssIdent(b []byte) bool {
	for _, c := range b {
		if !isASCIIAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func (s *styleSheet) addRule(name []byte, eff cssParser) {
	for i := range s.rules {
		r := &s.rules[i]
		if string(r.name[:r.nlen]) == string(name) {
			r.eff.merge(eff)
			return
		}
	}
	if len(s.rules) >= maxCSSRules {
		return
	}
	var r cssRule
	r.nlen = copy(r.name[:], name)
	r.eff.merge(eff)
	s.rules = append(s.rules, r)
}

// apply merges the effect of the rules for class name into eff.
func (s *styleSheet) apply(name []byte, eff *cssParser) {
	for i := range s.rules {
		r := &s.rules[i]
		if string(r.name[:r.nlen]) == string(name) {
			eff.merge(r.eff)
		}
	}
}

// merge takes the effects of a later rule: what it sets wins.
func (c *cssParser) merge(o cssParser) {
	c.dnone = c.dnone || o.dnone
	if o.disp != 0 {
		c.disp = o.disp
	}
	if o.vis != 0 {
		c.vis = o.vis
	}
	if o.upper != 0 {
		c.upper = o.upper
	}
}
