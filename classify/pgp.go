package classify

import "bytes"

// pgpArmor opens an ASCII-armored OpenPGP message (RFC 9580 section 6.2):
// encrypted (or compressed) data that a client decrypts and shows, so the
// scanner cannot judge it. A clear-signed message ("BEGIN PGP SIGNED
// MESSAGE") is readable text and is not this.
var pgpArmor = []byte("-----BEGIN PGP MESSAGE-----")

// pgpDetect passes text through to next and reports the part unreadable
// (issue 11 point 1) when it holds inline PGP armor. Only the last
// len(pgpArmor)-1 bytes are kept between writes.
type pgpDetect struct {
	ctx   *scanCtx
	where string
	next  stage
	tail  []byte // the last bytes seen, at most len(pgpArmor)-1
	join  []byte // scratch: tail + the head of the next write
	found bool
}

func newPGPDetect(ctx *scanCtx, where string, next stage) *pgpDetect {
	n := len(pgpArmor)
	return &pgpDetect{ctx: ctx, where: where, next: next, tail: make([]byte, 0, 2*n), join: make([]byte, 0, 2*n)}
}

func (d *pgpDetect) write(p []byte) {
	d.next.write(p)
	if d.found || len(p) == 0 {
		return
	}
	// Join the kept tail with the head of p to see an armor line split
	// between writes, then search p itself.
	k := min(len(p), len(pgpArmor)-1)
	if len(d.tail) > 0 {
		d.join = append(append(d.join[:0], d.tail...), p[:k]...)
		if bytes.Contains(d.join, pgpArmor) {
			d.report()
			return
		}
	}
	if bytes.Contains(p, pgpArmor) {
		d.report()
		return
	}
	keep := len(pgpArmor) - 1
	if len(p) >= keep {
		d.tail = append(d.tail[:0], p[len(p)-keep:]...)
	} else {
		d.tail = append(d.tail, p...)
		if len(d.tail) > keep {
			d.tail = d.tail[:copy(d.tail, d.tail[len(d.tail)-keep:])]
		}
	}
}

func (d *pgpDetect) report() {
	d.found = true
	d.tail = nil
	d.ctx.col.unreadable("%s: inline PGP encrypted message, content not readable", d.where)
}

func (d *pgpDetect) close() { d.next.close() }

// clone duplicates the detector and the matcher behind it, for a second
// view of styled text (views.materialise): without it that view would see
// nothing (issue 11 point 4).
func (d *pgpDetect) clone() stage {
	c := *d
	c.tail = append(make([]byte, 0, cap(d.tail)), d.tail...)
	c.join = make([]byte, 0, cap(d.join))
	if n, ok := d.next.(cloner); ok {
		c.next = n.clone()
	} else {
		c.next = discard{}
	}
	return &c
}

// matcherOf is the matcher at the end of s (s itself, or behind the PGP
// detector), nil when s is neither.
func matcherOf(s stage) *matcher {
	switch s := s.(type) {
	case *matcher:
		return s
	case *pgpDetect:
		return matcherOf(s.next)
	}
	return nil
}
