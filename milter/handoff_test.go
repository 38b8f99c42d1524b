package milter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
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
