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
// The hot loop is bytes.IndexByte for '['; only the bytes after a '[' near
// the end of a chunk are kept between writes (at most maxLen bytes).
type matcher struct {
	ctx    *scanCtx
	where  string
	pend   []byte // undecided bytes starting with '['
	maxLen int
}

func newMatcher(ctx *scanCtx, where string) *matcher {
	n := 1 + ctx.dict.maxWord + 1 + MaxEndorsement + 1
	return &matcher{ctx: ctx, where: where, maxLen: n, pend: make([]byte, 0, n)}
}

func (m *matcher) write(p []byte) {
	for len(m.pend) > 0 && len(p) > 0 {
		old := len(m.pend)
		k := min(len(p), m.maxLen-old)
		m.pend = append(m.pend, p[:k]...)
		st, n := m.try(m.pend, false)
		if st == needMore { // only when len(m.pend) < maxLen, so k == len(p)
			p = p[k:]
			continue
		}
		if st == noMatch {
			n = 1
		}
		if n >= old { // decided; go on in p after the consumed bytes
			m.pend = m.pend[:0]
			p = p[n-old:]
			break
		}
		// Decided within the old pending bytes: look for the next '['
		// there before going back to p.
		rest := m.pend[n:old]
		j := bytes.IndexByte(rest, '[')
		if j < 0 {
			m.pend = m.pend[:0]
			break
		}
		m.pend = m.pend[:copy(m.pend, rest[j:])]
	}
	if len(m.pend) > 0 {
		return
	}
	m.scan(p)
}

// scan matches within b and keeps an undecided tail in m.pend.
func (m *matcher) scan(b []byte) {
	for {
		i := bytes.IndexByte(b, '[')
		if i < 0 {
			return
		}
		b = b[i:]
		switch st, n := m.try(b, false); st {
		case matched:
			b = b[n:]
		case noMatch:
			b = b[1:]
		default:
			m.pend = append(m.pend[:0], b...)
			return
		}
	}
}

func (m *matcher) close() {
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
}

// try decides whether b, which starts with '[', starts a marking. It
// returns needMore only when !final and len(b) < m.maxLen. On a match it
// records the marking and returns its length.
func (m *matcher) try(b []byte, final bool) (int, int) {
	rest := b[1:]
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
		if len(rest) <= len(word) {
			if bytes.HasPrefix(word, rest) {
				more = true
			}
			continue
		}
		if !bytes.Equal(rest[:len(word)], word) {
			continue
		}
		switch rest[len(word)] {
		case ']':
			m.ctx.col.found(w, "", m.where)
			return matched, 1 + len(word) + 1
		case ':':
			e := rest[len(word)+1:]
			lim := min(len(e), MaxEndorsement+1)
			for i := 0; i < lim; i++ {
				c := e[i]
				if c == ']' {
					m.ctx.col.found(w, cleanEndorsement(e[:i]), m.where)
					return matched, 1 + len(word) + 1 + i + 1
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
