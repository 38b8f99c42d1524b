// Package logbuf writes log lines to an io.Writer from one goroutine, so
// that lines logged while a write(2) is under way leave together in the
// next one (group commit).
//
// Why (issue 13 point 7): serve logs one JSON decision line per message,
// and on a busy gateway the write(2) of each line to the journal's stream
// socket was a system call of its own. Writes are not delayed: the writer
// goroutine is woken at once, and a line waits only for the write before
// it. Nothing is dropped: past MaxBuffered the logging goroutine waits
// until the line is taken (back pressure, bounded memory), and Close
// writes whatever is left before it returns.
package logbuf

import (
	"io"
	"sync"
)

// MaxBuffered bounds what waits for the writer: past it Write blocks.
const MaxBuffered = 4 << 20

// Writer is an io.Writer that hands what it is given to a goroutine
// writing to the underlying writer, in order. It is safe for concurrent
// use; each Write call's bytes stay together.
type Writer struct {
	w io.Writer

	mu      sync.Mutex
	taken   *sync.Cond // signalled when the writer takes the buffer
	buf     []byte
	closed  bool
	err     error // the underlying writer's first error
	kick    chan struct{}
	stopped chan struct{}
}

// New starts the writer goroutine; Close stops it.
func New(w io.Writer) *Writer {
	b := &Writer{w: w, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	b.taken = sync.NewCond(&b.mu)
	go b.run()
	return b
}

// Write queues p; it returns an error only after Close, or when an earlier
// write to the underlying writer failed (what was queued then is written
// anyway, as far as the writer takes it).
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	for !b.closed && len(b.buf) > 0 && len(b.buf)+len(p) > MaxBuffered {
		b.taken.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	b.buf = append(b.buf, p...)
	err := b.err
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default: // already woken: it takes this with the rest
	}
	return len(p), err
}

// run writes whatever has been queued each time it is woken.
func (b *Writer) run() {
	defer close(b.stopped)
	var out []byte
	for range b.kick {
		b.mu.Lock()
		out, b.buf = b.buf, out[:0]
		closed := b.closed
		b.taken.Broadcast()
		b.mu.Unlock()
		if len(out) > 0 {
			if _, err := b.w.Write(out); err != nil {
				b.mu.Lock()
				if b.err == nil {
					b.err = err
				}
				b.mu.Unlock()
			}
		}
		if closed {
			b.mu.Lock()
			empty := len(b.buf) == 0
			b.mu.Unlock()
			if empty {
				return
			}
		}
		if cap(out) > 64<<10 {
			out = nil // a burst's buffer is not kept
		}
	}
}

// Close writes what is queued and stops the writer goroutine; later
// writes fail. It returns the underlying writer's first error.
func (b *Writer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.stopped
		return b.err
	}
	b.closed = true
	b.taken.Broadcast()
	b.mu.Unlock()
	// The writer goroutine may be between taking the buffer and reading
	// kick: keep kicking until it has seen closed with nothing left.
	for {
		select {
		case b.kick <- struct{}{}:
		case <-b.stopped:
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.err
		}
	}
}
