package dkim

import (
	"io"
	"strings"
)

// bodyCanon canonicalizes a message body as it streams (RFC 6376 section
// 3.4.3 simple, 3.4.4 relaxed) and writes the result to w. Memory use is
// independent of the body: only counts and flags are kept between writes.
// Lone CR and LF are taken as line ends, as mail systems deliver them as
// CRLF (the same as go-msgauth, which signs our outbound mail).
type bodyCanon struct {
	w       io.Writer
	relaxed bool
	pending int  // line ends not yet written: dropped if only empty lines follow
	cr      bool // the last byte was CR
	wsp     bool // relaxed: white space seen, not yet written
	wrote   bool // some content was written
	n       int64
	buf     []byte
}

func newBodyCanon(w io.Writer, relaxed bool) *bodyCanon {
	return &bodyCanon{w: w, relaxed: relaxed, buf: make([]byte, 0, 8<<10)}
}

func (c *bodyCanon) content(b byte) {
	for ; c.pending > 0; c.pending-- {
		c.buf = append(c.buf, '\r', '\n')
	}
	if c.wsp {
		c.buf = append(c.buf, ' ')
		c.wsp = false
	}
	c.buf = append(c.buf, b)
	c.wrote = true
}

func (c *bodyCanon) Write(p []byte) (int, error) {
	for _, b := range p {
		if c.cr {
			c.cr = false
			if b == '\n' {
				continue // the CRLF was counted at the CR
			}
		}
		switch {
		case b == '\r' || b == '\n':
			c.cr = b == '\r'
			c.wsp = false // relaxed: white space at the end of a line goes
			c.pending++
		case c.relaxed && (b == ' ' || b == '\t'):
			c.wsp = true
		default:
			c.content(b)
		}
		if len(c.buf) >= 8<<10-8 {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(p), c.flush()
}

func (c *bodyCanon) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	n, err := c.w.Write(c.buf)
	c.n += int64(n)
	c.buf = c.buf[:0]
	return err
}

// Close ends the body: one CRLF after the last non-empty line; an empty
// body is CRLF under simple, nothing under relaxed (RFC 6376 section 3.4.3,
// 3.4.4 and erratum 3951).
func (c *bodyCanon) Close() error {
	if c.wrote || !c.relaxed {
		c.buf = append(c.buf, '\r', '\n')
	}
	return c.flush()
}

// limitWriter passes on the first n bytes (l=, RFC 6376 section 3.5) and
// drops the rest; n < 0 means all.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n < 0 {
		return l.w.Write(p)
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	l.n -= int64(len(q))
	if len(q) > 0 {
		if _, err := l.w.Write(q); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// canonHeader canonicalizes one raw header field (with its CRLF) for the
// header hash (RFC 6376 section 3.4.1 simple, 3.4.2 relaxed).
func canonHeader(field string, relaxed bool) string {
	if !relaxed {
		return field
	}
	k, v, _ := strings.Cut(field, ":")
	k = strings.ToLower(strings.TrimSpace(k))
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	}), " ")
	return k + ":" + v + crlf
}

// withoutB is a DKIM-Signature field with the value of its b= tag
// deleted, white space around it included (RFC 6376 section 3.7).
func withoutB(field string) string {
	name, value, _ := strings.Cut(field, ":")
	tags := strings.Split(value, ";")
	for i, t := range tags {
		k, _, ok := strings.Cut(t, "=")
		if ok && strings.TrimSpace(k) == "b" {
			tags[i] = k + "="
			if i == len(tags)-1 {
				tags[i] += crlf // keep the field's line end for simple
			}
		}
	}
	return name + ":" + strings.Join(tags, ";")
}
