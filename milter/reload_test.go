package milter

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// SIGHUP can change notify.* (issue 13 point 5): a reload with another
// notify.submit builds a new notifier; a transaction in flight sends its
// notices through the notifier it began with, which is closed once that
// transaction ends; a reload that keeps the notify settings keeps the
// notifier (and the rate limiter's counts, R95).
func TestReloadSwapsNotifier(t *testing.T) {
	addr, srv, _ := startServer(t, testPolicy(t))
	var mu sync.Mutex
	subs := map[string]*captureSubmitter{} // by notify.submit
	if err := srv.enableNotices(func(p *policy.Policy) (*Notifier, error) {
		mu.Lock()
		defer mu.Unlock()
		sub := &captureSubmitter{}
		subs[p.Runtime.Submit.Method] = sub
		lim, err := notify.NewRateLimiter(notify.RateLimit{Count: p.Notify.RateCount, Window: p.Notify.RateWindow}, time.Now)
		if err != nil {
			return nil, err
		}
		return &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{}), Limiter: lim, Log: srv.log, Product: "nzsecure-milter", Version: "test"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })
	first := srv.Notifier()
	if first == nil {
		t.Fatal("no notifier after enableNotices")
	}

	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	m.macros.Set(gomilter.MacroAuthAuthen, "alice")
	if a := m.must(m.session.Mail("<alice@agency.govt.nz>", "")); a.Type != gomilter.ActionContinue {
		t.Fatal(a)
	}

	smtp := `notify.submit="smtp:127.0.0.1:2525"`
	if err := srv.SetPolicy(testPolicy(t, smtp), testChecker()); err != nil {
		t.Fatal(err)
	}
	second := srv.Notifier()
	if second == first || srv.Policy().Runtime.Submit.Method != "smtp:127.0.0.1:2525" {
		t.Fatalf("notify.submit change did not give a new notifier (%p, %p) or policy (%q)", first, second, srv.Policy().Runtime.Submit.Method)
	}

	// The transaction in flight finishes on the old notifier.
	m.must(m.session.Rcpt("<x@example.org>", ""))
	m.must(m.session.DataStart())
	m.must(m.session.HeaderField("From", "alice@agency.govt.nz", nil))
	m.must(m.session.HeaderField("Subject", "minutes [RSVPDR]", nil))
	m.must(m.session.HeaderEnd())
	if _, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n")); err != nil || a.Type != gomilter.ActionAccept {
		t.Fatalf("in-flight transaction: %v %v", a, err)
	}
	mu.Lock()
	oldSub, newSub := subs["sendmail"], subs["smtp:127.0.0.1:2525"]
	mu.Unlock()
	if got := oldSub.wait(t, 1); !strings.Contains(got[0], "Subject: DELIVERY RECEIPT") {
		t.Errorf("receipt of the in-flight transaction:\n%s", got[0])
	}
	// Its last user gone, the old notifier is closed.
	done := make(chan struct{})
	go func() { srv.retiring.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced notifier was not closed after its transaction ended")
	}
	if first.Queue.Enqueue(&notify.Message{}) {
		t.Error("the replaced notifier still accepts messages")
	}

	// The next transaction uses the new notifier.
	r := m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"x@example.org"},
		headers: [][2]string{{"From", " alice@agency.govt.nz"}, {"Subject", " minutes [RSVPDR]"}}})
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v", r.act)
	}
	if got := newSub.wait(t, 1); !strings.Contains(got[0], "Subject: DELIVERY RECEIPT") {
		t.Errorf("receipt after the reload:\n%s", got[0])
	}

	// Same notify settings: same notifier.
	if err := srv.SetPolicy(testPolicy(t, smtp, `log.level="debug"`), testChecker()); err != nil {
		t.Fatal(err)
	}
	if srv.Notifier() != second {
		t.Error("a reload keeping notify.* replaced the notifier")
	}
	// A new rate limit: a new notifier.
	if err := srv.SetPolicy(testPolicy(t, smtp, `notify.rate_count=3`), testChecker()); err != nil {
		t.Fatal(err)
	}
	if srv.Notifier() == second {
		t.Error("notify.rate_count change did not give a new notifier")
	}
}

// A notifier that cannot be built refuses the reload: nothing changes.
func TestReloadNotifierFailureKeepsState(t *testing.T) {
	_, srv, _ := startServer(t, testPolicy(t))
	if err := srv.enableNotices(func(p *policy.Policy) (*Notifier, error) {
		if p.Runtime.Submit.Method != "sendmail" {
			return nil, context.Canceled
		}
		return &Notifier{Queue: notify.NewQueue(&captureSubmitter{}, notify.QueueConfig{}), Log: srv.log}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })
	p0, n0 := srv.Policy(), srv.Notifier()
	if err := srv.SetPolicy(testPolicy(t, `notify.submit="smtp:127.0.0.1:2525"`), testChecker()); err == nil {
		t.Fatal("SetPolicy succeeded with a notifier that cannot be built")
	}
	if srv.Policy() != p0 || srv.Notifier() != n0 {
		t.Error("a refused reload changed the state")
	}
}
