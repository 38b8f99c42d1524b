package quickack

import (
	"io"
	"sync"
)

// Writes are coalesced as well (issue 13 point 7): go-milter writes each
// milter packet in two write(2) calls, the 5-byte header (length and
// command) and then the data, and at end of message it writes every
// header edit as a packet of its own before the final reply. With
// TCP_NODELAY each write is a segment and a system call. The coalescer
// keeps a packet until its data has come, and keeps modification packets
// (header and recipient edits, body replacement, quarantine) until the
// packet that ends the exchange (accept, continue, reject, ...), so one
// message's reply leaves in one write. Anything that does not look like
// the packet stream go-milter writes is passed through after what is kept,
// unchanged and in order; a Read first sends what is kept, so nothing
// the MTA waits for stays behind.

// maxHeld bounds what is kept (a body replacement comes in 64 KiB chunks).
const maxHeld = 64 << 10

// maxPacket: a length past it is not a milter packet (libmilter allows
// far less); such a write is passed through.
const maxPacket = 1 << 30

// modification: milter reply codes that are edits at end of message,
// always followed by the final reply (libmilter mfdef.h SMFIR_*): add,
// delete, add with parameters, change envelope sender, replace body,
// add, insert and change header, quarantine.
func modification(code byte) bool {
	switch code {
	case '+', '-', '2', 'e', 'b', 'h', 'i', 'm', 'q':
		return true
	}
	return false
}

type coalescer struct {
	w    io.Writer
	mu   sync.Mutex
	buf  []byte
	need int  // data bytes of the current packet still to come
	hold bool // the current packet is a modification
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.need == 0 {
		if len(p) != 5 {
			return c.through(p)
		}
		length := int(p[0])<<24 | int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		if length < 1 || length > maxPacket {
			return c.through(p)
		}
		c.buf = append(c.buf, p...)
		c.need, c.hold = length-1, modification(p[4])
		if c.need == 0 {
			return 5, c.end()
		}
		return 5, nil
	}
	if len(p) > c.need {
		// Not the data of the packet announced: stop coalescing.
		c.need = 0
		return c.through(p)
	}
	c.buf = append(c.buf, p...)
	c.need -= len(p)
	if c.need == 0 {
		return len(p), c.end()
	}
	return len(p), nil
}

// end: a packet is complete; it is sent with what is kept unless it is a
// modification and the buffer is small.
func (c *coalescer) end() error {
	if c.hold && len(c.buf) < maxHeld {
		return nil
	}
	return c.flushLocked()
}

// through writes what is kept and then p as they are.
func (c *coalescer) through(p []byte) (int, error) {
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Flush sends what is kept.
func (c *coalescer) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *coalescer) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	if cap(c.buf) > maxHeld*2 {
		c.buf = nil
	}
	return err
}
