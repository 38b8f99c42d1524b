// Package quickack makes a TCP listener's connections acknowledge every
// read at once (Linux TCP_QUICKACK, tcp(7)).
//
// Why: with the protocol options nzsecure-milter negotiates (no reply to
// connect, HELO, RCPT, DATA, each header and each body chunk), Postfix
// writes several small milter packets in a row and waits for nothing in
// between. Its second write is held by Nagle's algorithm until the first
// is acknowledged, and the milter, having nothing to send, acknowledges
// only when its delayed-ACK timer fires (about 40 ms on Linux): one stall
// per message per session. bench/throughput.sh measured a no-op milter at
// 216 msgs/s over TCP and 755 over a Unix socket; with TCP_QUICKACK after
// every read the TCP figure matched the Unix socket one (issue 13 point 7).
//
// The kernel leaves quick-ACK mode again on its own, so the option is set
// after every read from the socket rather than once. Reads are buffered:
// go-milter reads each packet in two (length, then payload), and Postfix
// sends several packets back to back, so one read(2) and one
// setsockopt(2) serve many packets. Elsewhere than Linux, and for
// connections other than TCP, the listener is returned unchanged.
package quickack

import (
	"bufio"
	"net"
)

// bufSize holds a typical burst of milter packets (headers, a 64 KiB
// body chunk goes past the buffer straight into the caller's slice).
const bufSize = 16 << 10

// Listener wraps ln so that every accepted TCP connection sets
// TCP_QUICKACK after each read. Unix-socket listeners are returned as
// they are (there is no delayed ACK on them).
func Listener(ln net.Listener) net.Listener {
	if !supported {
		return ln
	}
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		return ln
	}
	return listener{ln}
}

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &conn{TCPConn: tc, r: bufio.NewReaderSize(socket{tc}, bufSize), w: &coalescer{w: tc}}, nil
	}
	return c, err
}

// conn is a TCP connection read through a buffer that re-arms quick ACKs
// after each read from the socket, and written through the coalescer
// (coalesce.go). Deadlines are the TCPConn's own.
type conn struct {
	*net.TCPConn
	r *bufio.Reader
	w *coalescer
}

// Read sends what the coalescer keeps first: the peer may be waiting
// for it.
func (c *conn) Read(p []byte) (int, error) {
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c *conn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close sends what is kept before closing.
func (c *conn) Close() error {
	_ = c.w.Flush()
	return c.TCPConn.Close()
}

// socket reads the connection itself, then re-arms quick ACKs.
type socket struct{ c *net.TCPConn }

func (s socket) Read(p []byte) (int, error) {
	n, err := s.c.Read(p)
	if n > 0 {
		// Best effort: a failure only costs the delayed ACK again.
		_ = setQuickAck(s.c)
	}
	return n, err
}
