package classify

import (
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// rtfText turns RTF into the text a reader sees (R33), streaming with
// bounded state:
//   - control words are dropped; \par, \line, \row, \cell, ... break the
//     line and \tab is a tab;
//   - \'hh is a byte in the document code page (\ansicpgN, Windows-1252 by
//     default) and \uN a Unicode character, whose N fallback characters
//     (\ucN, default 1) are skipped;
//   - groups do not split words: "{\b [SEC}RET]" reads "[SECRET]";
//   - destinations that are not text are skipped: \fonttbl, \colortbl,
//     \stylesheet, \info, \pict, every {\* ...} group, and so on; \binN
//     data is skipped;
//   - \~ (no-break space) reads as a space.
//
// Both views of styled text (issue 11 point 4; see views): hidden text
// (\v, \webhidden), tracked deletions (\deleted) and text under 3pt
// (\fs5 or less) go to the all-text view only, and \caps and \scaps text is read
// in capitals in the rendered view. RTF that encapsulates HTML (\fromhtml,
// [MS-OXRTFEX], as Outlook stores HTML mail in TNEF) is also read as the
// HTML it carries: the markup of {\*\htmltag ...} and \mhtmltag groups and
// the text outside \htmlrtf ... \htmlrtf0 go to an HTML renderer (with
// its own two views), while the RTF views read the document as an RTF
// reader does (htmltag groups skipped, \htmlrtf text included).
type rtfText struct {
	v    *views
	html stage  // the encapsulated HTML, once \fromhtml or \htmltag is seen
	hb   []byte // buffered for html
	st   int

	word     [32]byte // control word, truncated
	wlen     int
	param    int
	neg      bool
	hasParam bool
	digits   int
	hex      byte
	nhex     int
	bin      int // \bin bytes left to skip

	groups   []rtfGroup // enclosing groups; bounded by maxRTFDepth
	cur      rtfGroup
	overflow int // groups deeper than maxRTFDepth: counted, not stacked
	skipAt   int // the overflow depth that turned skip on, 0 if none
	ucSkip   int // fallback characters left to skip after \u
	high     rune
	cp       *[128]rune // high half of the \'hh code page
}

type rtfGroup struct {
	skip    bool // inside a destination that is not text
	uc      int  // \ucN: fallback characters after \uN
	hidden  bool // \v, \webhidden, \deleted: hidden text
	tiny    bool // \fsN under 3pt: too small to read
	caps    bool // \caps, \scaps: shown in capitals
	htmltag bool // {\*\htmltag ...}: encapsulated HTML markup
	htmlrtf bool // \htmlrtf: RTF only, not part of the encapsulated HTML
}

const (
	rtText = iota
	rtEscape
	rtWord
	rtParam
	rtHex
	rtBin
)

const maxRTFDepth = 512

var rtfDestinations = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "info": true,
	"pict": true, "listtable": true, "listoverridetable": true,
	"rsidtbl": true, "revtbl": true, "filetbl": true, "generator": true,
	"themedata": true, "colorschememapping": true, "datastore": true,
	"latentstyles": true, "xmlnsdecl": true, "objdata": true,
	"fldinst": true, "pgdsctbl": true, "mmathPr": true, "protusertbl": true,
	"nonshppict": true, "userprops": true, "docvar": true, "xe": true,
	"tc": true, "bkmkstart": true, "bkmkend": true, "listpicture": true,
	"passwordhash": true, "wgrffmtfilter": true, "fchars": true,
	"lchars": true, "atnid": true,
	"atnauthor": true, "operator": true, "author": true, "title": true,
	"subject": true, "keywords": true, "comment": true, "doccomm": true,
	"company": true, "category": true, "manager": true, "hlinkbase": true,
}

// rtfSpecial marks the bytes that end a run of plain text.
var rtfSpecial = func() (t [256]bool) {
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	for _, c := range []byte{'\\', '{', '}', '\r', '\n', 0} {
		t[c] = true
	}
	return t
}()

var cp1252High = codePageHigh(charmap.Windows1252)

func codePageHigh(cm *charmap.Charmap) *[128]rune {
	var t [128]rune
	for i := range t {
		t[i] = cm.DecodeByte(byte(0x80 + i))
	}
	return &t
}

// rtfCodePages are the single-byte code pages \ansicpgN may name.
var rtfCodePages = map[int]*charmap.Charmap{
	437: charmap.CodePage437, 850: charmap.CodePage850, 852: charmap.CodePage852,
	866: charmap.CodePage866, 874: charmap.Windows874, 1250: charmap.Windows1250,
	1251: charmap.Windows1251, 1252: charmap.Windows1252, 1253: charmap.Windows1253,
	1254: charmap.Windows1254, 1255: charmap.Windows1255, 1256: charmap.Windows1256,
	1257: charmap.Windows1257, 1258: charmap.Windows1258, 10000: charmap.Macintosh,
	28591: charmap.ISO8859_1, 28592: charmap.ISO8859_2, 28605: charmap.ISO8859_15,
}

var rtfCodePageHigh = func() map[int]*[128]rune {
	m := make(map[int]*[128]rune, len(rtfCodePages))
	for n, cm := range rtfCodePages {
		m[n] = codePageHigh(cm)
	}
	return m
}()

// newRTFText renders RTF into next; the all-text view and the HTML
// renderer's matchers are cloned from next when needed (next is a matcher).
func newRTFText(next stage) *rtfText { return newRTFViews(next, nil) }

// newRTFViews renders RTF into the rendered and the all-text views (all
// nil: cloned from rendered when needed).
func newRTFViews(rendered, all stage) *rtfText {
	return &rtfText{v: newViews(rendered, all), cur: rtfGroup{uc: 1}, cp: cp1252High}
}

func (r *rtfText) flushOut() {
	r.v.flush()
	if len(r.hb) > 0 {
		r.html.write(r.hb)
		r.hb = r.hb[:0]
	}
}

// startHTML starts the renderer of the encapsulated HTML, into a new
// matcher at the rendered view's place (sharing its collector); its
// all-text view is cloned from that one when needed.
func (r *rtfText) startHTML() {
	if r.html != nil {
		return
	}
	var next stage = discard{}
	if m := matcherOf(r.v.s[vBrowser]); m != nil {
		h := newMatcher(m.ctx, m.where)
		h.def = &deferred{} // a second view of the document
		next = h
	}
	r.html = newHTMLText(next)
	r.hb = make([]byte, 0, outBufSize)
}

func (r *rtfText) write(p []byte) {
	for len(p) > 0 {
		switch r.st {
		case rtText:
			if !r.cur.skip && r.ucSkip == 0 && r.high == 0 {
				i := 0
				for i < len(p) && !rtfSpecial[p[i]] {
					i++
				}
				if i > 0 {
					r.emitBytes(p[:i])
					p = p[i:]
					continue
				}
			}
		case rtBin:
			n := min(len(p), r.bin)
			r.bin -= n
			p = p[n:]
			if r.bin == 0 {
				r.st = rtText
			}
			continue
		}
		if r.step(p[0]) {
			p = p[1:]
		}
	}
	r.flushOut()
}

// emitBytes routes document text to the views and the HTML renderer.
func (r *rtfText) emitBytes(b []byte) {
	if r.cur.htmltag {
		if r.html != nil {
			appendBuf(&r.hb, r.html, b)
		}
		return
	}
	switch {
	case r.cur.hidden || r.cur.tiny:
		r.v.hidden(b)
	case r.cur.caps:
		r.v.upper(mEvery, b)
	default:
		r.v.both(b)
	}
	if r.html != nil && !r.cur.htmlrtf {
		appendBuf(&r.hb, r.html, b)
	}
}

// char is one visible character of the document.
func (r *rtfText) char(c rune) {
	if r.cur.skip && !r.cur.htmltag {
		return
	}
	if r.ucSkip > 0 {
		r.ucSkip--
		return
	}
	if r.high != 0 {
		if c >= 0xDC00 && c <= 0xDFFF {
			c = utf16.DecodeRune(r.high, c)
			r.high = 0
		} else {
			r.high = 0
			r.put(utf8.RuneError)
		}
	}
	r.put(c)
}

func (r *rtfText) put(c rune) {
	var buf [utf8.UTFMax]byte
	r.emitBytes(buf[:utf8.EncodeRune(buf[:], c)])
}

// byteChar is a document byte (a literal or \'hh) in the code page.
func (r *rtfText) byteChar(b byte) {
	if b < 0x80 {
		r.char(rune(b))
	} else {
		r.char(r.cp[b-0x80])
	}
}

// step handles one byte; false means it must be read again.
func (r *rtfText) step(c byte) bool {
	switch r.st {
	case rtText:
		switch c {
		case '{':
			r.open()
		case '}':
			r.closeGroup()
		case '\\':
			r.st = rtEscape
		case '\r', '\n', 0:
		default:
			r.byteChar(c)
		}
	case rtEscape:
		r.st = rtText
		switch {
		case isASCIILetter(c):
			r.st, r.wlen, r.param, r.neg, r.hasParam, r.digits = rtWord, 0, 0, false, false, 0
			return false
		case c == '\'':
			r.st, r.hex, r.nhex = rtHex, 0, 0
		case c == '*':
			r.skip() // {\*\dest ...}: an optional destination
		case c == '~': // no-break space
			r.char(' ')
		case c == '_': // non-breaking hyphen
			r.char('-')
		case c == '\\' || c == '{' || c == '}':
			r.char(rune(c))
		case c == '\r' || c == '\n': // same as \par
			r.char('\n')
		default: // \- optional hyphen, \| \: and the like
			r.symbol()
		}
	case rtWord:
		switch {
		case isASCIILetter(c):
			if r.wlen < len(r.word) {
				r.word[r.wlen] = c
			}
			r.wlen++
		case c == '-' || '0' <= c && c <= '9':
			r.st, r.hasParam = rtParam, true
			return false
		default:
			r.st = rtText
			r.controlWord()
			return c == ' ' // a space delimiter is part of the word
		}
	case rtParam:
		switch {
		case c == '-' && r.digits == 0 && !r.neg:
			r.neg = true
		case '0' <= c && c <= '9':
			if r.digits < 10 {
				r.param = r.param*10 + int(c-'0')
			}
			r.digits++
		default:
			if r.neg {
				r.param = -r.param
			}
			r.st = rtText
			r.controlWord()
			return c == ' '
		}
	case rtHex:
		v, ok := message.Unhex(c)
		if !ok {
			r.st = rtText
			return false
		}
		r.hex = r.hex<<4 | v
		r.nhex++
		if r.nhex == 2 {
			r.st = rtText
			r.byteChar(r.hex)
		}
	}
	return true
}

func (r *rtfText) open() {
	r.ucSkip = 0
	if len(r.groups) >= maxRTFDepth || r.overflow > 0 {
		r.overflow++
		return
	}
	r.groups = append(r.groups, r.cur)
}

// skip makes the current group a destination that is not text. Beyond
// maxRTFDepth, the depth that did it is remembered instead of stacked.
func (r *rtfText) skip() {
	if !r.cur.skip && r.overflow > 0 {
		r.skipAt = r.overflow
	}
	r.cur.skip = true
}

func (r *rtfText) closeGroup() {
	r.ucSkip = 0
	switch {
	case r.overflow > 0:
		if r.overflow == r.skipAt {
			r.cur.skip, r.skipAt = false, 0
		}
		r.overflow--
	case len(r.groups) > 0:
		r.cur = r.groups[len(r.groups)-1]
		r.groups = r.groups[:len(r.groups)-1]
	}
}

// symbol is a control symbol with no output: it still counts as a
// fallback character after \uN.
func (r *rtfText) symbol() {
	if r.ucSkip > 0 && (!r.cur.skip || r.cur.htmltag) {
		r.ucSkip--
	}
}

func (r *rtfText) controlWord() {
	if r.wlen > len(r.word) {
		r.symbol()
		return
	}
	w := string(r.word[:r.wlen])
	if w == "bin" {
		if r.hasParam && r.param > 0 {
			r.st, r.bin = rtBin, r.param
		}
		return
	}
	if r.ucSkip > 0 && (!r.cur.skip || r.cur.htmltag) && w != "u" {
		r.ucSkip--
		return
	}
	if rtfDestinations[w] {
		r.skip()
		return
	}
	on := !r.hasParam || r.param != 0
	switch w {
	case "v", "webhidden", "deleted":
		// Hidden text, text hidden in a web view, and a tracked
		// deletion (gone from the final document a reader sees).
		r.cur.hidden = on
	case "fs":
		// Half-points: \fs24 is 12pt; \fs1 is text no one can read.
		r.cur.tiny = r.hasParam && r.param < 6
	case "caps", "scaps":
		r.cur.caps = on
	case "plain":
		r.cur.hidden, r.cur.caps, r.cur.tiny = false, false, false
	case "htmlrtf":
		r.cur.htmlrtf = on
	case "fromhtml":
		r.startHTML()
	case "htmltag", "mhtmltag":
		if r.cur.skip { // {\*\htmltagN ...}
			r.startHTML()
			r.cur.htmltag = true
		}
	case "par", "line", "sect", "page", "row", "cell", "nestcell", "nestrow", "softline":
		r.char('\n')
	case "tab":
		r.char('\t')
	case "emspace", "enspace", "qmspace":
		r.char(' ')
	case "lquote":
		r.char('\u2018')
	case "rquote":
		r.char('\u2019')
	case "ldblquote":
		r.char('\u201C')
	case "rdblquote":
		r.char('\u201D')
	case "endash":
		r.char('\u2013')
	case "emdash":
		r.char('\u2014')
	case "bullet":
		r.char('\u2022')
	case "uc":
		if r.hasParam && r.param >= 0 && r.param <= 16 {
			r.cur.uc = r.param
		}
	case "u":
		if !r.hasParam {
			return
		}
		u := rune(r.param)
		if u < 0 {
			u += 0x10000
		}
		if u < 0 || u > 0xFFFF {
			u = utf8.RuneError
		}
		r.ucSkip = 0
		if !r.cur.skip || r.cur.htmltag {
			if u >= 0xD800 && u <= 0xDBFF {
				if r.high != 0 {
					r.put(utf8.RuneError)
				}
				r.high = u
			} else {
				r.char(u)
			}
		}
		r.ucSkip = r.cur.uc
	case "ansicpg":
		if t, ok := rtfCodePageHigh[r.param]; ok {
			r.cp = t
		}
	}
}

func (r *rtfText) close() {
	if r.high != 0 {
		r.high = 0
		r.put(utf8.RuneError)
	}
	r.v.close()
	if r.html != nil {
		if len(r.hb) > 0 {
			r.html.write(r.hb)
			r.hb = r.hb[:0]
		}
		r.html.close()
	}
}
