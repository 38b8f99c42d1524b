package classify

import (
	"bytes"
	"strings"
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

// views feeds the two views of styled text (issue 11 point 4): the text as
// rendered, and the text with every hidden run included. A marking counts
// if it appears in either, so hiding a few characters inside a word cannot
// split it (the rendered view reads it whole) and hiding a whole marking
// cannot hide it (the all-text view reads it). Both views usually end in
// matchers sharing one collector, whose markings are deduplicated. Until
// the views first differ, only the rendered one runs; the all-text one is
// then cloned from it (lazy), so text without hidden or restyled runs is
// matched once.
type views struct {
	r, a   stage // rendered view; all-text view (nil until cloned when lazy)
	rb, ab []byte
}

// newViews returns the views; all nil means clone it from rendered at the
// first difference (rendered must then be a cloner, else the all-text-only
// runs are dropped).
func newViews(rendered, all stage) *views {
	v := &views{r: rendered, a: all, rb: make([]byte, 0, outBufSize)}
	if all != nil {
		v.ab = make([]byte, 0, outBufSize)
	}
	return v
}

func (v *views) flush() {
	if len(v.rb) > 0 {
		v.r.write(v.rb)
		v.rb = v.rb[:0]
	}
	if len(v.ab) > 0 {
		v.a.write(v.ab)
		v.ab = v.ab[:0]
	}
}

// diverge makes sure the all-text view exists.
func (v *views) diverge() {
	if v.a != nil {
		return
	}
	v.flush()
	if c, ok := v.r.(cloner); ok {
		v.a = c.clone()
	} else {
		v.a = discard{}
	}
	v.ab = make([]byte, 0, outBufSize)
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

// both is text in both views.
func (v *views) both(b []byte) {
	appendBuf(&v.rb, v.r, b)
	if v.a != nil {
		appendBuf(&v.ab, v.a, b)
	}
}

// rendered is text only the rendered view shows (restyled text).
func (v *views) rendered(b []byte) {
	v.diverge()
	appendBuf(&v.rb, v.r, b)
}

// hidden is text only the all-text view includes.
func (v *views) hidden(b []byte) {
	v.diverge()
	appendBuf(&v.ab, v.a, b)
}

// upper is text the rendered view shows in capitals (CSS text-transform:
// uppercase, RTF \caps): the rendered view reads it upper cased, the
// all-text view as written.
func (v *views) upper(b []byte) {
	u := bytes.ToUpper(b)
	if bytes.Equal(u, b) {
		v.both(b)
		return
	}
	v.rendered(u)
	appendBuf(&v.ab, v.a, b)
}

func (v *views) close() {
	v.flush()
	v.r.close()
	if v.a != nil {
		v.a.close()
	}
}
