package milter

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// handoffListener closes the gap between accepting an MTA connection and
// go-milter registering it as a session. go-milter's Serve hands each
// accepted connection to a new goroutine, which registers it; if its
// Shutdown has begun by then, that goroutine closes the connection unread.
// The MTA, whose SMTP session the connection belonged to, then applies
// milter_default_action (tempfail) to the message: one 451 in about 300
// messages sent across restarts in tests/e2e/package.sh d (issue 16).
//
// Shutdown therefore first stops this listener and waits until every
// connection it handed out has been read from (go-milter registers before
// its first read) or closed, and only then calls go-milter's Shutdown,
// which finds each of them registered and lets it finish.
//
// It also counts the connections whose session goroutine is busy, that is
// not waiting in Read for the MTA's next command. A transaction counts as
// ended (Server.inflight) before go-milter writes its end-of-message
// reply; closing the idle sessions then would lose that reply, and the
// MTA would tempfail a message already decided (and any S/MIME copies
// already submitted would go again on its retry). Shutdown closes them
// only when no connection is busy: each has written its last reply (what
// the quickack coalescer still holds is sent by Close).
type handoffListener struct {
	net.Listener
	busy atomic.Int64 // connections handed out, open, and not in Read

	mu       sync.Mutex
	stopped  bool
	pending  int           // handed out, neither read from nor closed yet
	settled  chan struct{} // signalled when pending drops to 0 after stop
	closed   chan struct{} // closed by Close
	once     sync.Once
	accepter sync.WaitGroup // an Accept call in progress
}

func newHandoffListener(ln net.Listener) *handoffListener {
	return &handoffListener{Listener: ln, settled: make(chan struct{}, 1), closed: make(chan struct{})}
}

// errStopped is what Accept returns once the listener is stopped and
// closed: go-milter then sees its own shutdown and returns from Serve.
var errStopped = net.ErrClosed

func (l *handoffListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		<-l.closed
		return nil, errStopped
	}
	// Only before stop (under mu): stop's Wait never races this Add.
	l.accepter.Add(1)
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	l.mu.Lock()
	stopped := l.stopped
	if err == nil {
		// Accepted, even if stop came meanwhile: the kernel will not
		// give this connection to the next process, so it is ours to
		// serve.
		l.pending++
		l.busy.Add(1)
	}
	l.mu.Unlock()
	l.accepter.Done()
	if err != nil {
		if stopped {
			// stop closed the socket under us. Block until go-milter
			// closes us in its Shutdown: an error now would end Serve
			// with an error before that Shutdown began.
			<-l.closed
			return nil, errStopped
		}
		return nil, err
	}
	return &handoffConn{Conn: c, l: l}, nil
}

// settle marks one handed-out connection as registered (read) or closed.
func (l *handoffListener) settle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	if l.pending == 0 && l.stopped {
		select {
		case l.settled <- struct{}{}:
		default:
		}
	}
}

// stop closes the listening socket (ours: a socket held by systemd stays
// open there, and connections not yet accepted wait in its backlog for
// the next process), waits for an Accept in progress to return, then for
// every connection handed out to be registered or closed, until ctx ends.
func (l *handoffListener) stop(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	l.mu.Unlock()
	err := l.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	accepted := make(chan struct{})
	go func() { l.accepter.Wait(); close(accepted) }()
	select {
	case <-accepted:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		n := l.pending
		l.mu.Unlock()
		if n == 0 {
			return err
		}
		select {
		case <-l.settled:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close is go-milter's: it ends a blocked Accept.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	l.mu.Lock()
	stopped := l.stopped
	l.stopped = true
	l.mu.Unlock()
	if stopped {
		return nil
	}
	return l.Listener.Close()
}

// handoffConn settles its listener's count on its first Read or Close,
// and keeps its busy count: busy from Accept, idle while in Read, neither
// once closed.
type handoffConn struct {
	net.Conn
	l      *handoffListener
	once   sync.Once
	stack  sync.Once
	mu     sync.Mutex
	inRead bool
	closed bool
}

// SetReadDeadline is go-milter's first call on the session goroutine
// (before each packet is read): the stack is grown there, while it is
// shallowest, instead of in steps as the first read and then the checks
// go deeper (growStack).
func (c *handoffConn) SetReadDeadline(t time.Time) error {
	c.stack.Do(growStack)
	return c.Conn.SetReadDeadline(t)
}

func (c *handoffConn) Read(p []byte) (int, error) {
	c.once.Do(c.l.settle)
	c.mu.Lock()
	if !c.closed {
		c.inRead = true
		c.l.busy.Add(-1)
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.inRead {
		c.inRead = false
		if !c.closed {
			c.l.busy.Add(1)
		}
	}
	c.mu.Unlock()
	return n, err
}

func (c *handoffConn) Close() error {
	c.once.Do(c.l.settle)
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if !c.inRead {
			c.l.busy.Add(-1)
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
