package tlspolicy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Status is the first word of a socketmap reply.
type Status string

const (
	OK       Status = "OK"
	NotFound Status = "NOTFOUND"
	Temp     Status = "TEMP"
	Timeout  Status = "TIMEOUT"
	Perm     Status = "PERM"
)

// Reply is one socketmap answer: for OK, Data is the TLS policy
// ("encrypt protocols=>=TLSv1.2"); otherwise an optional reason.
type Reply struct {
	Status Status
	Data   string
}

func (r Reply) String() string { return string(r.Status) + " " + r.Data }

// Lookuper answers one lookup of key in the map called name.
type Lookuper interface {
	Lookup(ctx context.Context, name, key string) Reply
}

// Server serves the socketmap protocol: each connection carries any number
// of request/reply pairs.
type Server struct {
	Lookup      Lookuper
	Log         *slog.Logger
	IdleTimeout time.Duration // per request; default 5 minutes
	LookupLimit time.Duration // per lookup; a slower one answers TIMEOUT; default 20s

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close stops the listener and every connection, and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	idle := s.IdleTimeout
	if idle == 0 {
		idle = 5 * time.Minute
	}
	r := bufio.NewReader(c)
	var out []byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		req, err := ReadNetstring(r, MaxRequest)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger().Warn("tlspolicy: bad request; closing the connection", "error", err.Error(), "peer", c.RemoteAddr().String())
				// A framing error leaves the stream unusable: answer and close.
				_, _ = c.Write(AppendNetstring(nil, []byte("PERM malformed request")))
			}
			return
		}
		reply := s.answer(string(req))
		out = AppendNetstring(out[:0], []byte(reply.String()))
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// answer parses "name key" and asks the Lookuper, bounding its time.
func (s *Server) answer(req string) Reply {
	name, key, ok := strings.Cut(req, " ")
	if !ok || name == "" || key == "" {
		return Reply{Perm, "request must be: name <space> key"}
	}
	limit := s.LookupLimit
	if limit == 0 {
		limit = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	done := make(chan Reply, 1)
	go func() { done <- s.Lookup.Lookup(ctx, name, key) }()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		s.logger().Warn("tlspolicy: lookup timed out", "map", name, "key", key)
		return Reply{Timeout, "lookup timed out"}
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
