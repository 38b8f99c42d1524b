package classify

import "bytes"

// flowedStage joins the soft line breaks of text/plain; format=flowed
// (RFC 3676 section 4.2): a line that ends in a space continues on the
// next line, as the reader sees it, so "[TOP \r\nSECRET]" reads
// "[TOP SECRET]". With DelSp=yes the space goes too (section 4.5). The
// signature separator "-- " is not flowed (section 4.3). Quote depths are
// not tracked: joining lines of different depths is harmless here.
type flowedStage struct {
	next  stage
	delsp bool
	out   []byte
	space bool // a held-back trailing space
	cr    bool // a held-back CR after it
	col   int  // bytes in the current line, up to 4 (for "-- ")
	sig   bool // the current line starts "-- " so far
}

func newFlowedStage(delsp bool, next stage) *flowedStage {
	return &flowedStage{next: next, delsp: delsp, out: make([]byte, 0, outBufSize), sig: true}
}

func (f *flowedStage) emit(b []byte) {
	for len(b) > 0 {
		if len(f.out) == cap(f.out) {
			f.flush()
		}
		n := min(len(b), cap(f.out)-len(f.out))
		f.out = append(f.out, b[:n]...)
		b = b[n:]
	}
}

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

func (f *flowedStage) write(p []byte) {
	for len(p) > 0 {
		c := p[0]
		switch {
		case c == '\n':
			soft := f.space && !(f.sig && f.col == 3)
			switch {
			case soft && f.delsp:
				f.space, f.cr = false, false
			case soft:
				f.space, f.cr = false, false
				f.emit([]byte{' '})
			default:
				f.release()
				f.emit([]byte{'\n'})
			}
			f.col, f.sig = 0, true
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
	f.release()
	f.flush()
	f.next.close()
}
