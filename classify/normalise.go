package classify

import (
	"bytes"
	"encoding/binary"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// normaliser turns decoded text into the text a reader sees, before the
// matcher (R29-R32, issue 11 point 3), streaming:
//   - default-ignorable code points (Unicode's DerivedCoreProperties
//     Default_Ignorable_Code_Point: zero-width space and joiners, soft
//     hyphen, combining grapheme joiner, word joiner, BOM, bidi controls,
//     variation selectors, tag characters, Hangul fillers) are removed, so
//     "[SEC\u200bRET]" reads [SECRET];
//   - every space separator (Zs: no-break space, ideographic space, the
//     en/em spaces, ...) reads as ' ', and the line and paragraph
//     separators and NEL as '\n' (the matcher then reads any run of white
//     space as one);
//   - compatibility forms are folded (NFKC, golang.org/x/text/unicode/norm):
//     full-width "［ＳＥＣＲＥＴ］" reads [SECRET], and R30 is judged on the
//     folded text, so full-width lower case is still not a marking;
//   - a right-to-left override (U+202E ... U+202C, or to the end of the
//     paragraph) is read in the order it is displayed, reversed with its
//     brackets mirrored (Unicode Bidirectional Algorithm, rule L2 for an
//     override), so "[\u202eTERCES\u202c]", which a reader sees as [SECRET],
//     is [SECRET]; an override longer than maxOverride bytes is read as
//     stored.
//
// Pure ASCII needs none of this: ASCII runs are passed on as they are,
// without copying, and only the ASCII character right before a non-ASCII
// one (it may compose with a combining mark) and the non-ASCII run go
// through the slow path. NFKC across writes: the filtered text after the
// last segment boundary (norm.LastBoundary) is held back, at most
// maxNormHold bytes, as is an incomplete UTF-8 sequence.
type normaliser struct {
	inRLO bool
	rlo   []byte // the raw text of a right-to-left override so far
	hold  []byte // filtered text from the last possible segment boundary
	part  [utf8.UTFMax]byte
	npart int
	out   []byte
	conf  []byte // latin's output
	marks []byte // stripMarks' output
	// afterASCII: the last character passed on, combining marks aside,
	// was ASCII (stripMarks).
	afterASCII bool
}

// maxNormHold bounds the held-back text; a longer run without a segment
// boundary (only in pathological input: norm caps segments at 30
// non-starters) is normalised as it is.
const maxNormHold = 1024

// maxNormRegion bounds the non-ASCII text normalised at once.
const maxNormRegion = 4096

// maxOverride bounds a right-to-left override read in display order.
const maxOverride = 256

var (
	rloBytes = []byte("\u202e")
	pdfBytes = []byte("\u202c")
)

func (n *normaliser) clone() normaliser {
	c := *n
	c.hold = append([]byte(nil), n.hold...)
	c.rlo = append([]byte(nil), n.rlo...)
	c.out, c.conf, c.marks = nil, nil, nil
	return c
}

// asciiPrefix returns the length of the ASCII prefix of p, 32 then eight
// bytes at a time.
func asciiPrefix(p []byte) int {
	i := 0
	for ; i+32 <= len(p); i += 32 {
		le := binary.LittleEndian
		if (le.Uint64(p[i:])|le.Uint64(p[i+8:])|le.Uint64(p[i+16:])|le.Uint64(p[i+24:]))&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i+8 <= len(p); i += 8 {
		if binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 != 0 {
			break
		}
	}
	for i < len(p) && p[i] < utf8.RuneSelf {
		i++
	}
	return i
}

func (n *normaliser) write(p []byte, emit func([]byte)) {
	for len(p) > 0 {
		if n.inRLO {
			p = n.override(p)
			continue
		}
		if n.npart > 0 {
			p = n.completeRune(p)
			continue
		}
		if len(n.hold) > 0 {
			if p[0] >= utf8.RuneSelf {
				p = n.region(p, emit)
				continue
			}
			// No composition has an ASCII second character: a segment
			// boundary is before p[0].
			n.normOut(n.hold, emit)
			n.hold = n.hold[:0]
		}
		i := asciiPrefix(p)
		if i == len(p) {
			if i > 1 {
				emit(p[:i-1])
				n.afterASCII = true
			}
			n.hold = append(n.hold, p[i-1])
			return
		}
		if i > 1 {
			emit(p[:i-1])
			n.afterASCII = true
			p = p[i-1:]
		}
		p = n.region(p, emit)
	}
}

// region filters the non-ASCII run at the start of p (with the ASCII
// starter before it) into hold, up to the next ASCII character, and
// normalises what is complete.
func (n *normaliser) region(p []byte, emit func([]byte)) []byte {
	j := 1
	for j < len(p) && j < maxNormRegion && p[j] >= utf8.RuneSelf {
		j++
	}
	for j < len(p) && j > 1 && !utf8.RuneStart(p[j]) {
		j-- // cut by maxNormRegion: end at a rune start
	}
	atBoundary := j < len(p) && p[j] < utf8.RuneSelf
	r := p[:j]
	if k := bytes.Index(r, rloBytes); k >= 0 {
		n.hold = filterAppend(n.hold, r[:k])
		n.inRLO, n.rlo = true, n.rlo[:0]
		return p[k+len(rloBytes):]
	}
	if !atBoundary {
		// An incomplete sequence at the end waits for the next write.
		k := len(r) - 1
		for k > 0 && len(r)-k < utf8.UTFMax && !utf8.RuneStart(r[k]) {
			k--
		}
		if !utf8.FullRune(r[k:]) {
			n.npart = copy(n.part[:], r[k:])
			r = r[:k]
		}
	}
	n.hold = filterAppend(n.hold, r)
	if atBoundary {
		n.normOut(n.hold, emit)
		n.hold = n.hold[:0]
	} else {
		n.flushComplete(emit)
	}
	return p[j:]
}

// completeRune adds bytes to an incomplete UTF-8 sequence.
func (n *normaliser) completeRune(p []byte) []byte {
	for len(p) > 0 && n.npart < utf8.UTFMax && !utf8.FullRune(n.part[:n.npart]) {
		if utf8.RuneStart(p[0]) {
			break // invalid: the sequence ends here
		}
		n.part[n.npart] = p[0]
		n.npart++
		p = p[1:]
	}
	if len(p) == 0 && !utf8.FullRune(n.part[:n.npart]) && n.npart < utf8.UTFMax {
		return p // still incomplete
	}
	if bytes.Equal(n.part[:n.npart], rloBytes) {
		n.inRLO, n.rlo = true, n.rlo[:0]
	} else {
		n.hold = filterAppend(n.hold, n.part[:n.npart])
	}
	n.npart = 0
	return p
}

// override collects a right-to-left override up to its end: U+202C, a
// paragraph end (CR, LF, NEL, U+2029) or maxOverride bytes.
func (n *normaliser) override(p []byte) []byte {
	for i, c := range p {
		if c == '\n' || c == '\r' {
			n.endOverride(true)
			return p[i:]
		}
		n.rlo = append(n.rlo, c)
		switch {
		case bytes.HasSuffix(n.rlo, pdfBytes):
			n.endOverride(true)
			return p[i+1:]
		case bytes.HasSuffix(n.rlo, []byte("\u2029")), bytes.HasSuffix(n.rlo, []byte("\u0085")):
			_, size := utf8.DecodeLastRune(n.rlo)
			n.rlo = n.rlo[:len(n.rlo)-size]
			n.endOverride(true)
			n.hold = append(n.hold, '\n') // the paragraph end, after the override
			return p[i+1:]
		case len(n.rlo) > maxOverride:
			n.endOverride(false)
			return p[i+1:]
		}
	}
	return nil
}

// endOverride adds the override to hold, in display order if reverse.
func (n *normaliser) endOverride(reverse bool) {
	n.inRLO = false
	f := filterAppend(nil, n.rlo)
	n.rlo = n.rlo[:0]
	if reverse {
		f = []byte(bidi.ReverseString(string(f)))
	}
	n.hold = append(n.hold, f...)
}

// flushComplete normalises hold up to its last segment boundary.
func (n *normaliser) flushComplete(emit func([]byte)) {
	k := norm.NFKC.LastBoundary(n.hold)
	if len(n.hold) > maxNormHold {
		k = len(n.hold)
	}
	if k <= 0 {
		return
	}
	n.normOut(n.hold[:k], emit)
	n.hold = n.hold[:copy(n.hold, n.hold[k:])]
}

func (n *normaliser) flush(emit func([]byte)) {
	if n.inRLO {
		n.endOverride(true)
	}
	if n.npart > 0 {
		n.hold = filterAppend(n.hold, n.part[:n.npart])
		n.npart = 0
	}
	if len(n.hold) > 0 {
		n.normOut(n.hold, emit)
		n.hold = n.hold[:0]
	}
}

// normOut folds b (complete segments) with NFKC and passes it on; a
// compatibility decomposition may yield an ignorable or a space, so the
// result is filtered again.
func (n *normaliser) normOut(b []byte, emit func([]byte)) {
	if asciiPrefix(b) == len(b) || norm.NFKC.QuickSpan(b) == len(b) {
		emit(n.stripMarks(n.latin(b))) // already folded (b is filtered)
		return
	}
	n.out = norm.NFKC.Append(n.out[:0], b...)
	if asciiPrefix(n.out) < len(n.out) {
		n.out = filterInPlace(n.out)
	}
	emit(n.stripMarks(n.latin(n.out)))
	if cap(n.out) > 4*maxNormRegion {
		n.out = nil // do not keep a buffer grown by a rare expansion
	}
}

// Default_Ignorable_Code_Point, as DerivedCoreProperties derives it:
// Other_Default_Ignorable_Code_Point + Variation_Selector + Cf, less white
// space, the interlinear annotation characters U+FFF9..FFFB, the Egyptian
// hieroglyph format controls U+13430..1343F and the prepended concatenation
// marks (which are visible).
func ignorable(r rune) bool {
	switch {
	case r < 0xAD:
		return false
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.Is(unicode.Variation_Selector, r):
		return true
	case !unicode.Is(unicode.Cf, r):
		return false
	case r >= 0xFFF9 && r <= 0xFFFB, r >= 0x13430 && r <= 0x1343F:
		return false
	case unicode.Is(unicode.Prepended_Concatenation_Mark, r), unicode.Is(unicode.White_Space, r):
		return false
	}
	return true
}

// bmpSpecial marks the runes of the Basic Multilingual Plane that mapRune
// changes, so that most text needs no unicode.Is lookups.
var bmpSpecial = func() *[0x10000 / 64]uint64 {
	var t [0x10000 / 64]uint64
	for r := rune(0x80); r < 0x10000; r++ {
		if r == 0x85 || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Zs, r) || ignorable(r) {
			t[r/64] |= 1 << (r % 64)
		}
	}
	return &t
}()

// mapRune returns what a rune reads as: -1 removed, else the rune.
func mapRune(r rune) rune {
	switch {
	case r < utf8.RuneSelf:
		return r
	case r < 0x10000 && bmpSpecial[r/64]&(1<<(r%64)) == 0:
		return r
	case r == 0x85 || r == 0x2028 || r == 0x2029:
		return '\n'
	case unicode.Is(unicode.Zs, r):
		return ' '
	case ignorable(r):
		return -1
	}
	return r
}

// filterAppend appends b to dst with mapRune applied; an invalid byte
// reads as U+FFFD (so NFKC only ever sees valid UTF-8).
func filterAppend(dst, b []byte) []byte {
	for len(b) > 0 {
		if b[0] < utf8.RuneSelf {
			dst = append(dst, b[0])
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, runeError...)
			b = b[1:]
			continue
		}
		switch m := mapRune(r); {
		case m < 0:
		case m == r:
			dst = append(dst, b[:size]...)
		default:
			dst = utf8.AppendRune(dst, m)
		}
		b = b[size:]
	}
	return dst
}

// filterInPlace applies mapRune to b in place (the result is never longer).
func filterInPlace(b []byte) []byte {
	w := 0
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			b[w] = b[i]
			w, i = w+1, i+1
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		m := mapRune(r)
		switch {
		case r == utf8.RuneError && size <= 1, m == r:
			w += copy(b[w:], b[i:i+size])
		case m >= 0:
			w += utf8.EncodeRune(b[w:], m) // ' ' or '\n': one byte, shorter
		}
		i += size
	}
	return b[:w]
}

// foldWord is a trigger word as the matcher compares it: normalised like
// the text, runs of white space read as one space.
func foldWord(w string) []byte {
	var n normaliser
	var out []byte
	n.write([]byte(w), func(b []byte) { out = append(out, b...) })
	n.flush(func(b []byte) { out = append(out, b...) })
	var c []byte
	for _, b := range out {
		if isSpaceByte(b) {
			if len(c) > 0 && c[len(c)-1] == ' ' {
				continue
			}
			b = ' '
		}
		c = append(c, b)
	}
	return c
}

// stripMarks removes the combining marks (Mn) that NFKC left on an ASCII
// character: "[S\u0332E\u0332C\u0332R\u0332E\u0332T\u0332]", underlined,
// or with U+0336 struck through, is read as [SECRET], as a reader reads
// it. A mark NFKC composes with its letter ("E\u0301" is "\u00c9") is a
// letter of its own and stays; so do the marks of other scripts (after a
// character that is not ASCII), which no marking is spelt with. The state
// (n.afterASCII) runs across writes, so chunks do not change the result.
func (n *normaliser) stripMarks(b []byte) []byte {
	// Only a run of marks right after an ASCII character goes: runes are
	// decoded there alone, the runs between are skipped eight bytes at a
	// time.
	var out []byte
	dropped, last, after := false, 0, n.afterASCII
	for j := 0; j < len(b); {
		if b[j] < utf8.RuneSelf {
			j += asciiPrefix(b[j:])
			after = true
			continue
		}
		if after {
			k := j
			for k < len(b) && b[k] >= utf8.RuneSelf {
				r, size := utf8.DecodeRune(b[k:])
				if !isMark(r) {
					break
				}
				k += size
			}
			if k > j {
				if !dropped {
					out, dropped = append(n.marks[:0], b[:j]...), true
				} else {
					out = append(out, b[last:j]...)
				}
				last, j = k, k
				continue
			}
			after = false
		}
		// A character that is not ASCII and not a mark on ASCII: the
		// rest of its run is kept as it is.
		j += nonASCIIPrefix(b[j:])
	}
	n.afterASCII = after
	if !dropped {
		return b
	}
	out = append(out, b[last:]...)
	n.marks = out
	if cap(n.marks) > 4*maxNormRegion {
		n.marks = nil
	}
	return out
}

// nonASCIIPrefix returns the length of the prefix of p without ASCII
// bytes, eight bytes at a time.
func nonASCIIPrefix(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		if binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 != 0x8080808080808080 {
			break
		}
	}
	for i < len(p) && p[i] >= utf8.RuneSelf {
		i++
	}
	return i
}

// bmpMark marks the nonspacing marks (Mn) of the Basic Multilingual Plane.
var bmpMark = func() *[0x10000 / 64]uint64 {
	var t [0x10000 / 64]uint64
	for r := rune(0x300); r < 0x10000; r++ {
		if unicode.Is(unicode.Mn, r) {
			t[r/64] |= 1 << (r % 64)
		}
	}
	return &t
}()

func isMark(r rune) bool {
	if r < 0x10000 {
		return bmpMark[r/64]&(1<<(r%64)) != 0
	}
	return unicode.Is(unicode.Mn, r)
}

// latinLookalike maps the Greek and Cyrillic capitals that a reader cannot
// tell from Latin ones (Unicode's confusables, UTS #39 section 4) to the
// Latin letter, so "[SE\u0421RET]" with a Cyrillic Es, which a reader sees
// as [SECRET], is [SECRET]. No trigger word can be spelt in Greek or
// Cyrillic capitals alone (each has a letter, R, F, D, L, U, V or S, with
// no lookalike in one script or the other), so text in those languages is
// never read as a marking; only a word mixing scripts is. Lower case needs
// no mapping: markings are upper case (R30).
var latinLookalike = map[rune]byte{
	// Greek
	'\u0391': 'A', '\u0392': 'B', '\u0395': 'E', '\u0396': 'Z', '\u0397': 'H', '\u0399': 'I', '\u039A': 'K',
	'\u039C': 'M', '\u039D': 'N', '\u039F': 'O', '\u03A1': 'P', '\u03A4': 'T', '\u03A5': 'Y', '\u03A7': 'X',
	// Cyrillic
	'\u0405': 'S', '\u0406': 'I', '\u0408': 'J', '\u0410': 'A', '\u0412': 'B', '\u0415': 'E', '\u041A': 'K',
	'\u041C': 'M', '\u041D': 'H', '\u041E': 'O', '\u0420': 'P', '\u0421': 'C', '\u0422': 'T', '\u0423': 'Y',
	'\u0425': 'X', '\u04AE': 'Y', '\u04C0': 'I',
	// Brackets a reader takes for square ones, which NFKC leaves as they
	// are (it maps the full-width and vertical forms itself): with quill,
	// white, tortoise-shell and lenticular, and with underbar or ticks.
	// "〔SECRET〕" and "⟦SECRET⟧" are read as [SECRET].
	'\u2045': '[', '\u2046': ']', '\u27E6': '[', '\u27E7': ']', '\u3010': '[', '\u3011': ']',
	'\u3014': '[', '\u3015': ']', '\u3016': '[', '\u3017': ']', '\u301A': '[', '\u301B': ']',
	'\u298B': '[', '\u298C': ']', '\u298D': '[', '\u298E': ']', '\u298F': '[', '\u2990': ']',
	// Latin small capitals (IPA and phonetic extensions), which NFKC
	// leaves alone and a reader reads as capitals: "[ꜱᴇᴄʀᴇᴛ]".
	'\u1D00': 'A', '\u0299': 'B', '\u1D04': 'C', '\u1D05': 'D', '\u1D07': 'E', '\uA730': 'F', '\u0262': 'G',
	'\u029C': 'H', '\u026A': 'I', '\u1D0A': 'J', '\u1D0B': 'K', '\u029F': 'L', '\u1D0D': 'M', '\u0274': 'N',
	'\u1D0F': 'O', '\u1D18': 'P', '\u0280': 'R', '\uA731': 'S', '\u1D1B': 'T', '\u1D1C': 'U', '\u1D20': 'V',
	'\u1D21': 'W', '\u028F': 'Y', '\u1D22': 'Z',
}

// hasLookalikeRune reports whether b may hold one of latinLookalike's
// brackets, U+2045-2046 (E2 81), U+27E6-27E7 (E2 9F), U+298B-2990 (E2 A6),
// U+3010-301B (E3 80 90-9B), or small capitals, U+0262-029F (C9, CA),
// U+1D00-1D22 (E1 B4), U+A730-A731 (EA 9C). Punctuation common in text,
// such as curly quotes and dashes (E2 80), keeps the fast path.
func hasLookalikeRune(b []byte) bool {
	for i := 0; i+1 < len(b); i++ {
		switch b[i] {
		case 0xC9, 0xCA:
			return true
		case 0xE1:
			if b[i+1] == 0xB4 {
				return true
			}
		case 0xEA:
			if b[i+1] == 0x9C {
				return true
			}
		}
		if i+2 >= len(b) {
			continue
		}
		switch b[i] {
		case 0xE2:
			if c := b[i+1]; c == 0x81 || c == 0x9F || c == 0xA6 {
				return true
			}
		case 0xE3:
			if b[i+1] == 0x80 && b[i+2] >= 0x90 && b[i+2] <= 0x9B {
				return true
			}
		}
	}
	return false
}

// latin returns b with latinLookalike applied (b itself when it holds no
// Greek or Cyrillic capital, lead bytes 0xCE, 0xD0, 0xD2 and 0xD3, and
// none of the other lookalikes, hasLookalikeRune).
func (n *normaliser) latin(b []byte) []byte {
	if bytes.IndexByte(b, 0xCE) < 0 && bytes.IndexByte(b, 0xD0) < 0 && bytes.IndexByte(b, 0xD2) < 0 && bytes.IndexByte(b, 0xD3) < 0 &&
		!hasLookalikeRune(b) {
		return b
	}
	n.conf = n.conf[:0]
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if c, ok := latinLookalike[r]; ok {
			n.conf = append(n.conf, c)
		} else {
			n.conf = append(n.conf, b[i:i+size]...)
		}
		i += size
	}
	if cap(n.conf) > 4*maxNormRegion {
		out := n.conf
		n.conf = nil
		return out
	}
	return n.conf
}
