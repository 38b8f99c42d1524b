package classify

import "bytes"

// flowedStage joins the soft line breaks of text/plain; format=flowed
// (RFC 3676 section 4.2): a line that ends in a space continues on the
// next line, as the reader sees it, so "[TOP \r\nSECRET]" reads
// "[TOP SECRET]". With DelSp=yes the space goes too (section 4.5). The
// signature separator "-- " is not flowed (section 4.3).
//
// Quoted replies (section 4.5): the quote markers ('>' at the start of a
// line, the quote depth) are removed before joining, and a space-stuffed
// line (section 4.4) loses its stuffing space, so "> [TOP \r\n> SECRET]"
// in a Thunderbird reply reads "[TOP SECRET]". A flowed line joins the
// next only at the same quote depth; at another depth its break stays.
type flowedStage struct {
	next  stage
	delsp bool
	out   []byte
	start bool // reading the quote prefix of a line
	depth int  // quote depth of the current line
	space bool // a held-back trailing space
	cr    bool // a held-back CR after it
	col   int  // bytes in the current line after the prefix, up to 4 (for "-- ")
	sig   bool // the current line starts "-- " so far
	join  bool // the previous line was flowed: its break is held back
	jdep  int  // its quote depth
}

func newFlowedStage(delsp bool, next stage) *flowedStage {
	return &flowedStage{next: next, delsp: delsp, out: make([]byte, 0, outBufSize), sig: true, start: true}
}

func (f *flowedStage) emit(b []byte) { appendBuf(&f.out, f.next, b) }

func (f *flowedStage) flush() {
	if len(f.out) > 0 {
		f.next.write(f.out)
		f.out = f.out[:0]
	}
}

// release emits what was held back: the line did not end there.
func (f *flowedStage) release() {
	if f.space {
		f.emit([]byte{' '})
		f.space = false
	}
	if f.cr {
		f.emit([]byte{'\r'})
		f.cr = false
	}
}

// resolve decides the held break of a flowed line once the quote depth of
// the next line is known.
func (f *flowedStage) resolve() {
	if !f.join {
		return
	}
	f.join = false
	switch {
	case f.depth != f.jdep: // not flowed across a change of depth
		f.emit([]byte(" \n"))
	case !f.delsp:
		f.emit([]byte{' '})
	}
}

func (f *flowedStage) write(p []byte) {
	for len(p) > 0 {
		c := p[0]
		if f.start {
			if c == '>' {
				f.depth++
				p = p[1:]
				continue
			}
			f.start = false
			f.resolve()
			if c == ' ' { // space-stuffing (section 4.4)
				p = p[1:]
				continue
			}
		}
		switch {
		case c == '\n':
			if f.space && !(f.sig && f.col == 3) {
				f.space, f.cr = false, false
				f.join, f.jdep = true, f.depth
			} else {
				f.release()
				f.emit([]byte{'\n'})
			}
			f.col, f.sig, f.start, f.depth = 0, true, true, 0
			p = p[1:]
		case c == '\r' && f.space && !f.cr:
			f.cr = true
			p = p[1:]
		case c == ' ' && !f.cr:
			f.release()
			f.space = true
			f.track(c)
			p = p[1:]
		case f.space || f.cr:
			f.release() // then read c again with nothing held back
		case c == '\r':
			f.track(c)
			f.emit(p[:1])
			p = p[1:]
		default: // a run up to the next space or line break
			i := bytes.IndexAny(p, " \r\n")
			if i < 0 {
				i = len(p)
			}
			for _, c := range p[:min(i, max(0, 4-f.col))] {
				f.track(c)
			}
			f.emit(p[:i])
			p = p[i:]
		}
	}
	f.flush()
}

// track follows the start of a line, to recognise "-- ".
func (f *flowedStage) track(c byte) {
	if f.col < 4 {
		if f.col >= 3 || c != "-- "[f.col] {
			f.sig = false
		}
		f.col++
	}
}

func (f *flowedStage) close() {
	if f.join {
		f.join = false
		if !f.delsp {
			f.emit([]byte{' '})
		}
	}
	f.release()
	f.flush()
	f.next.close()
}
