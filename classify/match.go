package classify

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// stage is one step of a streaming decoding pipeline (transfer decoding,
// charset, HTML/RTF/TNEF extraction, matching). write never fails:
// malformed input is decoded best effort and reported to the collector;
// close flushes at the end of the part. A stage never retains the slice
// passed to write.
type stage interface {
	write(p []byte)
	close()
}

// discard is the stage for content that is not scanned.
type discard struct{}

func (discard) write([]byte) {}
func (discard) close()       {}

// Match results of matcher.try.
const (
	noMatch = iota
	matched
	needMore
)

// matcher finds trigger words in UTF-8 text (R29-R32, R35, R109, R114): an
// opening bracket, a configured word exactly (upper case, R30), then either
// the closing bracket or a colon, an endorsement of at most MaxEndorsement
// bytes without line breaks or brackets, and the closing bracket (R31).
//
// It reads the text as a reader sees it (R29-R32, issue 11 point 3): the
// text first goes through the normaliser (normalise.go: default-ignorable
// code points removed, Unicode spaces read as spaces, NFKC), so R30's
// upper case is judged on the folded text. Then, inside a candidate, any
// run of white space reads as one space (or one line break when the run
// holds one): in a multi-word marking a space, a double space, a tab or a
// line break all read as the word's space, so "[TOP  SECRET]" and
// "[TOP\r\n SECRET]" are [TOP SECRET]; the quote markers of a reply
// after a line break are part of that run ("[TOP\r\n> > SECRET]", a
// marking wrapped in a quoted reply, is [TOP SECRET] too). One run of white space without a
// line break is also allowed right after '[' and before ']' or ':', as a
// reader takes "[ SECRET ]" for the marking; a line break there is not
// ("[SECRET" at the end of one line and "]" on the next, as two HTML
// paragraphs render, is not a marking).
//
// The hot loop is bytes.IndexByte for '['; only the bytes after a '['
// are copied, white space compressed, into pend (at most maxLen bytes), so
// the memory is O(1) whatever the input.
type matcher struct {
	ctx    *scanCtx
	where  string
	pend   []byte // undecided candidate, starting with '[', white space compressed
	maxLen int
	norm   normaliser
	// def, for a matcher of a second view, holds its findings until it
	// closes, so that the markings and the first found among equal ranks
	// (R29) do not depend on how the views' buffers met the chunks.
	def *deferred
}

// deferred findings of a second view, bounded: at most MaxMarkings listed,
// the others counted per word.
type deferred struct {
	list  []Marking
	words []int
	over  []int // findings past the list, per word index
}

func (m *matcher) found(w int, endorsement string) {
	d := m.def
	if d == nil {
		m.ctx.col.found(w, endorsement, m.where)
		return
	}
	for i, x := range d.list {
		if d.words[i] == w && x.Endorsement == endorsement {
			return
		}
	}
	if len(d.list) < MaxMarkings {
		d.list = append(d.list, Marking{Endorsement: endorsement})
		d.words = append(d.words, w)
		return
	}
	if d.over == nil {
		d.over = make([]int, len(m.ctx.dict.words))
	}
	d.over[w]++
}

// commit passes deferred findings on to the collector.
func (m *matcher) commit() {
	d := m.def
	if d == nil {
		return
	}
	m.def = &deferred{}
	for i, x := range d.list {
		m.ctx.col.found(d.words[i], x.Endorsement, m.where)
	}
	for w, n := range d.over {
		if n > 0 {
			m.ctx.col.foundUnlisted(w, n)
		}
	}
}

func newMatcher(ctx *scanCtx, where string) *matcher {
	n := 1 + 1 + ctx.dict.maxWord + 1 + 1 + MaxEndorsement + 1
	return &matcher{ctx: ctx, where: where, maxLen: n, pend: make([]byte, 0, n)}
}

// clone returns a matcher in the same state, for a second view of the same
// text (views.diverge); it shares the collector, its findings deferred.
func (m *matcher) clone() stage {
	c := *m
	c.pend = append(make([]byte, 0, m.maxLen), m.pend...)
	c.norm = m.norm.clone()
	c.def = &deferred{}
	return &c
}

func (m *matcher) write(p []byte) { m.norm.write(p, m.match) }

func (m *matcher) close() {
	m.norm.flush(m.match)
	b := m.pend
	for len(b) > 0 {
		i := bytes.IndexByte(b, '[')
		if i < 0 {
			break
		}
		b = b[i:]
		if st, n := m.try(b, true); st == matched {
			b = b[n:]
		} else {
			b = b[1:]
		}
	}
	m.pend = m.pend[:0]
	m.commit()
}

// isSpaceByte reports the ASCII white space of normalised text; isBreak
// the bytes that break a line.
func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isBreak(c byte) bool { return c == '\n' || c == '\r' || c == '\f' || c == '\v' }

// match consumes normalised text.
func (m *matcher) match(p []byte) {
	for len(p) > 0 || len(m.pend) > 0 {
		if len(m.pend) == 0 {
			i := bytes.IndexByte(p, '[')
			if i < 0 {
				return
			}
			m.pend = append(m.pend, '[')
			p = p[i+1:]
		}
		// Copy as little as decides: most brackets in prose are decided
		// by their first letter, most candidates by the word.
		p = m.fill(p, 3)
		st, n := m.try(m.pend, false)
		for _, step := range [2]int{m.ctx.dict.maxWord + 4, m.maxLen} {
			if st != needMore || len(p) == 0 {
				break
			}
			p = m.fill(p, step)
			st, n = m.try(m.pend, false)
		}
		if st == needMore {
			if len(m.pend) < m.maxLen {
				return // p is empty: wait for more text
			}
			st = noMatch // cannot happen: a full candidate is decided
		}
		if st == noMatch {
			n = 1
		}
		rest := m.pend[n:]
		if j := bytes.IndexByte(rest, '['); j >= 0 {
			m.pend = m.pend[:copy(m.pend, rest[j:])]
		} else {
			m.pend = m.pend[:0]
		}
	}
}

// fill appends p to the candidate until it holds target bytes, reading a
// run of white space as one ' ', or one '\n' when it breaks the line; it
// returns the rest of p. A long run is consumed without growing pend.
func (m *matcher) fill(p []byte, target int) []byte {
	i := 0
	for i < len(p) && len(m.pend) < target {
		c := p[i]
		i++
		if c == '>' && m.pend[len(m.pend)-1] == '\n' {
			continue // a quote marker after a line break, "[TOP\n> SECRET]"
		}
		if isSpaceByte(c) {
			last := &m.pend[len(m.pend)-1]
			if *last == ' ' || *last == '\n' {
				if isBreak(c) {
					*last = '\n'
				}
				continue
			}
			if isBreak(c) {
				c = '\n'
			} else {
				c = ' '
			}
		}
		m.pend = append(m.pend, c)
	}
	return p[i:]
}

// try decides whether b, which starts with '[' and has its white space
// compressed, starts a marking. It returns needMore only when !final and
// more bytes could decide. On a match it records the marking and returns
// its length in b.
func (m *matcher) try(b []byte, final bool) (int, int) {
	rest, off := b[1:], 1
	if len(rest) > 0 && rest[0] == ' ' { // "[ SECRET]"
		rest, off = rest[1:], 2
	}
	if len(rest) == 0 {
		if final {
			return noMatch, 0
		}
		return needMore, 0
	}
	d := m.ctx.dict
	more := false
	for _, w := range d.byFirst[rest[0]] {
		word := d.words[w]
		k := 0
		for k < len(word) && k < len(rest) && (rest[k] == word[k] || word[k] == ' ' && rest[k] == '\n') {
			k++
		}
		if k < len(word) {
			if k == len(rest) {
				more = true
			}
			continue
		}
		j := k
		if j < len(rest) && rest[j] == ' ' { // "[SECRET ]", "[SECRET :X]"
			j++
		}
		if j == len(rest) {
			more = true
			continue
		}
		switch rest[j] {
		case ']':
			m.found(w, "")
			return matched, off + j + 1
		case ':':
			e := rest[j+1:]
			lim := min(len(e), MaxEndorsement+1)
			for i := 0; i < lim; i++ {
				c := e[i]
				if c == ']' {
					m.found(w, cleanEndorsement(e[:i]))
					return matched, off + j + 1 + i + 1
				}
				if c < 0x20 || c == '[' || c == 0x7f {
					lim = -1 // broken: not a marking
					break
				}
			}
			if lim >= 0 && len(e) <= MaxEndorsement {
				more = true
			}
		}
	}
	if more && !final {
		return needMore, 0
	}
	return noMatch, 0
}

func cleanEndorsement(e []byte) string {
	return strings.ToValidUTF8(strings.TrimSpace(string(e)), "\uFFFD")
}

// cloner is a stage that can be duplicated with its state (a matcher).
type cloner interface{ clone() stage }

// views feeds the views of styled text (issue 11 point 4): the text as a
// browser renders it, the text as Outlook renders it (which differs by
// conditional comments: <!--[if mso]> content only Outlook shows,
// <!--[if !mso]><!--> content only others show), and the text with every
// hidden run included. A marking counts if it appears in any, so hiding a
// few characters inside a word cannot split it (a rendered view reads it
// whole) and hiding a whole marking cannot hide it (the all-text view reads
// it). The views usually end in matchers sharing one collector, whose
// markings are deduplicated. Until a view first differs from the browser
// view, it is not run; it is then cloned from the browser view's matcher
// (lazy), so text without hidden or restyled runs is matched once.
type views struct {
	s [numViews]stage // nil: the same as s[vBrowser] so far
	b [numViews][]byte
	// upTail is the incomplete UTF-8 sequence an upper call ended with
	// (cut by a write boundary), for the next upper call of the same
	// views (upMask) to complete: upper-cased in pieces, each piece of a
	// rune would read as U+FFFD, and the result would depend on the
	// chunks.
	upTail []byte
	upMask int
}

// The views, and masks of them.
const (
	vBrowser = iota
	vOutlook
	vAll
	numViews

	mBrowser  = 1 << vBrowser
	mOutlook  = 1 << vOutlook
	mAll      = 1 << vAll
	mRendered = mBrowser | mOutlook
	mEvery    = mRendered | mAll
)

// newViews returns the views; all nil means clone it from rendered at the
// first difference (rendered must then be a cloner, else the text only
// another view has is dropped). The Outlook view is always cloned.
func newViews(rendered, all stage) *views {
	v := &views{}
	v.s[vBrowser], v.s[vAll] = rendered, all
	for i := range v.s {
		if v.s[i] != nil {
			v.b[i] = make([]byte, 0, outBufSize)
		}
	}
	return v
}

func (v *views) flush() {
	for i, s := range v.s {
		if s != nil && len(v.b[i]) > 0 {
			s.write(v.b[i])
			v.b[i] = v.b[i][:0]
		}
	}
}

// materialise makes view i a stage of its own, a clone of the browser view.
func (v *views) materialise(i int) {
	if len(v.b[vBrowser]) > 0 {
		v.s[vBrowser].write(v.b[vBrowser])
		v.b[vBrowser] = v.b[vBrowser][:0]
	}
	if c, ok := v.s[vBrowser].(cloner); ok {
		v.s[i] = c.clone()
	} else {
		v.s[i] = discard{}
	}
	v.b[i] = make([]byte, 0, outBufSize)
}

func appendBuf(buf *[]byte, s stage, b []byte) {
	for len(b) > 0 {
		if len(*buf) == cap(*buf) {
			s.write(*buf)
			*buf = (*buf)[:0]
		}
		n := min(len(b), cap(*buf)-len(*buf))
		*buf = append(*buf, b[:n]...)
		b = b[n:]
	}
}

// emit is text in the views of mask.
func (v *views) emit(mask int, b []byte) {
	if len(v.upTail) > 0 {
		v.flushUpper()
	}
	inBrowser := mask&mBrowser != 0
	for i := vBrowser + 1; i < numViews; i++ {
		// A view that follows the browser view gets a stage of its own
		// when this text goes to one of them and not the other.
		if v.s[i] == nil && (mask&(1<<i) != 0) != inBrowser {
			v.materialise(i)
		}
	}
	for i, s := range v.s {
		if s != nil && mask&(1<<i) != 0 {
			appendBuf(&v.b[i], s, b)
		}
	}
}

// both is text in every view.
func (v *views) both(b []byte) { v.emit(mEvery, b) }

// hidden is text only the all-text view includes.
func (v *views) hidden(b []byte) { v.emit(mAll, b) }

// upper is text of the views of mask that the rendered views show in
// capitals (CSS text-transform: uppercase, RTF \caps): they read it upper
// cased, the all-text view as written.
func (v *views) upper(mask int, b []byte) {
	if len(v.upTail) > 0 {
		if mask == v.upMask {
			b = append(v.upTail, b...)
			v.upTail = nil
		} else {
			v.flushUpper()
		}
	}
	var tail []byte
	if k := incompleteTail(b); k > 0 {
		tail, b = append([]byte(nil), b[len(b)-k:]...), b[:len(b)-k]
	}
	v.upperNow(mask, b) // before the tail is kept: its emits would flush it
	v.upTail, v.upMask = tail, mask
}

// flushUpper passes on an upTail that no upper call completed (invalid
// UTF-8, as one write would have had it).
func (v *views) flushUpper() {
	if t := v.upTail; len(t) > 0 {
		v.upTail = nil
		v.upperNow(v.upMask, t)
	}
}

// incompleteTail is the length of the UTF-8 sequence b ends with when it
// is a start that more bytes could complete, else 0.
func incompleteTail(b []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		if c := b[len(b)-k]; utf8.RuneStart(c) {
			if c >= utf8.RuneSelf && !utf8.FullRune(b[len(b)-k:]) {
				return k
			}
			return 0
		}
	}
	return 0
}

func (v *views) upperNow(mask int, b []byte) {
	if len(b) == 0 {
		return
	}
	u := bytes.ToUpper(b)
	if bytes.Equal(u, b) {
		v.emit(mask, b)
		return
	}
	v.emit(mask&mRendered, u)
	v.emit(mask&mAll, b)
}

func (v *views) close() {
	v.flushUpper()
	v.flush()
	for _, s := range v.s {
		if s != nil {
			s.close()
		}
	}
}
