package classify

// unfoldStage reads iCalendar (RFC 5545) and vCard (RFC 6350) content as
// its reader does: a line break followed by one space or tab is a fold
// and is removed with that character, no space inserted (RFC 5545 section
// 3.1, RFC 6350 section 3.2), so "[TOP SEC\r\n RET]" reads [TOP SECRET];
// then the escapes of TEXT values are read (RFC 5545 section 3.3.11, RFC
// 6350 section 3.4): "\," "\;" "\\" are the character, "\n" and "\N" a
// line break. A bare LF is taken as a line break too.
type unfoldStage struct {
	next stage
	out  []byte
	nl   int  // held line break: 0, 1 after CR, 2 after LF (with or without CR)
	cr   bool // the held line break had a CR
	esc  bool // a held backslash
}

func newUnfoldStage(next stage) *unfoldStage {
	return &unfoldStage{next: next, out: make([]byte, 0, outBufSize)}
}

func (u *unfoldStage) write(p []byte) {
	for _, c := range p {
		switch u.nl {
		case 1: // after CR
			if c == '\n' {
				u.nl = 2
				continue
			}
			u.nl = 0
			u.text('\r')
		case 2: // after a line break
			u.nl = 0
			if c == ' ' || c == '\t' {
				u.cr = false
				continue // a fold
			}
			if u.cr {
				u.text('\r')
			}
			u.text('\n')
			u.cr = false
		}
		switch c {
		case '\r':
			u.nl, u.cr = 1, true
		case '\n':
			u.nl = 2
		default:
			u.text(c)
		}
	}
	u.flush()
}

// text reads the unfolded content: the escapes.
func (u *unfoldStage) text(c byte) {
	if u.esc {
		u.esc = false
		switch c {
		case ',', ';', '\\':
			u.emit(c)
		case 'n', 'N':
			u.emit('\n')
		default:
			u.emit('\\')
			u.text(c)
		}
		return
	}
	if c == '\\' {
		u.esc = true
		return
	}
	u.emit(c)
}

func (u *unfoldStage) emit(c byte) {
	if len(u.out) == cap(u.out) {
		u.flush()
	}
	u.out = append(u.out, c)
}

func (u *unfoldStage) flush() {
	if len(u.out) > 0 {
		u.next.write(u.out)
		u.out = u.out[:0]
	}
}

func (u *unfoldStage) close() {
	switch u.nl {
	case 1:
		u.text('\r')
	case 2:
		if u.cr {
			u.text('\r')
		}
		u.text('\n')
	}
	u.nl, u.cr = 0, false
	if u.esc {
		u.esc = false
		u.emit('\\')
	}
	u.flush()
	u.next.close()
}
