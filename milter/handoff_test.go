package milter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// lateListener holds each connection it accepts until it is closed: the
// connection reaches the server only once Shutdown has begun, as one does
// when SIGTERM comes while Accept is returning.
type lateListener struct {
	net.Listener
	accepted chan struct{}
	closed   chan struct{}
	once     sync.Once
}

func (l *lateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
		<-l.closed
	}
	return c, err
}

func (l *lateListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// A connection the listener had already accepted when SIGTERM came is
// served, not closed unread: Postfix would tempfail the SMTP session whose
// milter connection it was (issue 16's restarts; CI saw one 451 in 300
// messages). go-milter drops a connection whose goroutine has not yet
// registered it when its Shutdown starts, so Shutdown must wait for that.
func TestShutdownServesConnectionsAlreadyAccepted(t *testing.T) {
	p := testPolicy(t)
	for i := 0; i < 20; i++ {
		srv, err := NewServer(p, testChecker(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sl := &lateListener{Listener: ln, accepted: make(chan struct{}, 1), closed: make(chan struct{})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(sl) }()
		type result struct {
			m   *mta
			err error
		}
		dialed := make(chan result, 1)
		go func() {
			m, err := openMTA(t, ln.Addr().String())
			dialed <- result{m, err}
		}()
		<-sl.accepted
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopped <- srv.Shutdown(ctx)
		}()
		r := <-dialed
		if r.err != nil {
			t.Fatalf("round %d: the connection accepted before Shutdown was dropped: %v", i, r.err)
		}
		m := r.m
		m.connect("203.0.113.9", "smtpd", "TLSv1.3")
		if a := m.must(m.session.Mail("<sender@example.com>", "")); a.Type != gomilter.ActionContinue {
			t.Fatalf("round %d: MAIL FROM on the connection accepted before Shutdown: %v", i, a)
		}
		m.must(m.session.Rcpt("<bob@agency.govt.nz>", ""))
		m.must(m.session.DataStart())
		m.must(m.session.HeaderField("From", "sender@example.com", nil))
		m.must(m.session.HeaderEnd())
		if _, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n")); err != nil || a.Type != gomilter.ActionAccept {
			t.Fatalf("round %d: transaction: %v %v", i, a, err)
		}
		m.session.Close()
		if err := <-stopped; err != nil {
			t.Fatalf("round %d: Shutdown: %v", i, err)
		}
		if err := <-served; err != nil {
			t.Fatalf("round %d: Serve: %v", i, err)
		}
	}
}

// slowListener's connections delay their first accept reply (the milter
// packet 'a', libmilter's SMFIR_ACCEPT) after slow is set.
type slowListener struct {
	net.Listener
	slow *atomic.Bool
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, slow: l.slow}, nil
}

type slowConn struct {
	net.Conn
	slow *atomic.Bool
}

func (c *slowConn) Write(p []byte) (int, error) {
	if len(p) == 5 && p[4] == 'a' && c.slow.CompareAndSwap(true, false) {
		time.Sleep(300 * time.Millisecond)
	}
	return c.Conn.Write(p)
}

// A transaction ends (it no longer counts as in flight) just before
// go-milter writes its end-of-message reply. Shutdown, past its session
// grace, must not close the session in that gap: the MTA would tempfail a
// message the milter had already logged as accepted.
func TestShutdownKeepsTheLastReply(t *testing.T) {
	srv, err := NewServer(testPolicy(t), testChecker(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.sessionGrace = 10 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	served := make(chan error, 1)
	go func() { served <- srv.Serve(slowListener{Listener: ln, slow: &slow}) }()
	m := dial(t, ln.Addr().String())
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	m.must(m.session.Mail("<sender@example.com>", ""))
	m.must(m.session.Rcpt("<bob@agency.govt.nz>", ""))
	m.must(m.session.DataStart())
	m.must(m.session.HeaderField("From", "sender@example.com", nil))
	m.must(m.session.HeaderEnd())
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	for deadline := time.Now().Add(5 * time.Second); !srv.draining.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not draining 5s after Shutdown")
		}
	}
	slow.Store(true) // the end-of-message reply waits 300 ms
	_, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n"))
	if err != nil || a.Type != gomilter.ActionAccept {
		t.Fatalf("the reply of a transaction that ended during Shutdown: %v %v", a, err)
	}
	m.session.Close()
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
