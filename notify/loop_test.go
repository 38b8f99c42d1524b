package notify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// TestShouldNotify: the loop rules of R93-R95.
func TestShouldNotify(t *testing.T) {
	ok := ""
	cases := []struct {
		name          string
		from, envFrom string
		ctx           NotifyContext
		want          string
	}{
		{"ordinary", "Alice <alice@example.org>", "alice@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ok},
		{"null sender", "Alice <alice@example.org>", "",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonNullSender},
		{"null sender <>", "Alice <alice@example.org>", "<>",
			NotifyContext{To: "alice@example.org"}, ReasonNullSender},
		{"envelope postmaster", "Alice <alice@example.org>", "PostMaster@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonFromSystem},
		{"header postmaster", "Postmaster <POSTMASTER@example.org>", "bounces@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonFromSystem},
		{"header postmaster, quoted", `"postmaster"@example.org`, "x@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonFromSystem},
		{"mailer-daemon", "Mail Delivery System <MAILER-DAEMON@mx.example.org>", "x@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonFromSystem},
		{"bare postmaster", "postmaster", "postmaster",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}, ReasonFromSystem},
		{"auto-submitted", "alice@example.org", "alice@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true, Headers: hs("Auto-Submitted", "auto-replied (vacation)")}, ReasonAutoSubmitted},
		{"auto-submitted: no", "alice@example.org", "alice@example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true, Headers: hs("Auto-Submitted", "no")}, ok},
		{"report", "alice@example.org", "alice@example.org",
			NotifyContext{To: "alice@example.org", Headers: hs("Content-Type", `multipart/report; report-type=delivery-status; boundary="x"`)}, ReasonReport},
		{"report, malformed parameters (read leniently)", "alice@example.org", "alice@example.org",
			NotifyContext{To: "alice@example.org", Headers: hs("Content-Type", `Multipart/Report; report-type=delivery-status; boundary=x; boundary=y; =z`)}, ReasonReport},
		{"R95: sending agency's postmaster", "alice@other.govt.nz", "alice@other.govt.nz",
			NotifyContext{To: "postmaster@other.govt.nz", Inbound: true}, ReasonSenderPM},
		{"R95: parent domain's postmaster", "alice@mail1.other.govt.nz", "bounce@mail1.other.govt.nz",
			NotifyContext{To: "Postmaster <postmaster@other.govt.nz>", Inbound: true}, ReasonSenderPM},
		{"R95: header domain differs from envelope", "alice@other.govt.nz", "bounce@esp.example",
			NotifyContext{To: "postmaster@other.govt.nz", Inbound: true}, ReasonSenderPM},
		{"outbound: our own postmaster (Table 1 Sender's Postmaster)", "bob@agency.govt.nz", "bob@agency.govt.nz",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: false}, ok},
		{"list mail, notice to the list", "alice@example.org", "staff-bounces@lists.example.org",
			NotifyContext{To: "staff-bounces@lists.example.org", Inbound: true, Headers: hs("List-Id", "<staff.lists.example.org>")}, ReasonListSender},
		{"list mail, notice to our postmaster", "alice@example.org", "staff-bounces@lists.example.org",
			NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true, Headers: hs("Precedence", "bulk")}, ok},
		{"no recipient", "alice@example.org", "alice@example.org", NotifyContext{To: ""}, ReasonNoRecipient},
		{"recipient without domain", "alice@example.org", "alice@example.org", NotifyContext{To: "postmaster"}, ReasonNoRecipient},
	}
	for _, c := range cases {
		got, reason := ShouldNotify(c.from, c.envFrom, c.ctx)
		if got != (c.want == "") || reason != c.want {
			t.Errorf("%s: ShouldNotify = %v %q, want %q", c.name, got, reason, c.want)
		}
	}
}

// recorder is a Submitter that records what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []*Message
}

func (r *recorder) Submit(_ context.Context, from string, rcpts []string, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, &Message{EnvelopeFrom: from, Rcpts: rcpts, Data: msg})
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// notifier is the path the engine takes for one triggering message: the
// loop rules, the rate limit, the notice, the queue.
type notifier struct {
	gen     Generator
	limiter *RateLimiter
	queue   *Queue
}

func (n *notifier) trigger(t *testing.T, code string, headers []policy.Header, envFrom, to string) bool {
	t.Helper()
	from := ""
	if v := policy.HeaderValues(headers, "From"); len(v) > 0 {
		from = v[0]
	}
	if ok, _ := ShouldNotify(from, envFrom, NotifyContext{To: to, Inbound: true, Headers: headers}); !ok {
		return false
	}
	if !n.limiter.Allow(to, code) {
		return false
	}
	m, err := n.gen.Notice(NoticeParams{Code: code, To: []string{to}, Original: OriginalFromHeaders(headers)})
	if err != nil {
		t.Fatal(err)
	}
	return n.queue.Enqueue(m)
}

func newNotifier(t *testing.T, limit RateLimit, clock func() time.Time) (*notifier, *recorder) {
	t.Helper()
	rec := &recorder{}
	l, err := NewRateLimiter(limit, clock)
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(rec, QueueConfig{Size: 10000, Workers: 4, Backoff: time.Millisecond})
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return &notifier{gen: Generator{Domain: "agency.govt.nz", Now: clock, Rand: testRand(9)}, limiter: l, queue: q}, rec
}

// TestLoopNoNotice: a postmaster's or a null sender's message makes no
// notice (R93); an ordinary one does.
func TestLoopNoNotice(t *testing.T) {
	clock := func() time.Time { return testNow }
	n, rec := newNotifier(t, RateLimit{Count: 100, Window: time.Hour}, clock)
	pm := hs("From", "Postmaster <postmaster@other.govt.nz>", "To", "bob@agency.govt.nz", "Subject", "Undeliverable")
	daemon := hs("From", "MAILER-DAEMON@mx.other.govt.nz (Mail Delivery System)", "Subject", "failure notice")
	plain := hs("From", "alice@other.govt.nz", "To", "bob@agency.govt.nz", "Subject", "hello")
	for i := 0; i < 50; i++ {
		if n.trigger(t, "002", pm, "postmaster@other.govt.nz", "postmaster@agency.govt.nz") ||
			n.trigger(t, "002", plain, "", "postmaster@agency.govt.nz") ||
			n.trigger(t, "002", plain, "<>", "alice@other.govt.nz") ||
			n.trigger(t, "101", daemon, "", "postmaster@agency.govt.nz") ||
			n.trigger(t, "002", plain, "alice@other.govt.nz", "postmaster@other.govt.nz") {
			t.Fatal("a notice was made in answer to a postmaster, a daemon or a null sender, or to the sender's postmaster")
		}
	}
	if err := n.queue.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 0 {
		t.Fatalf("%d notices submitted", rec.count())
	}
	n2, rec2 := newNotifier(t, RateLimit{Count: 100, Window: time.Hour}, clock)
	if !n2.trigger(t, "002", plain, "alice@other.govt.nz", "postmaster@agency.govt.nz") {
		t.Fatal("an ordinary message made no notice")
	}
	_ = n2.queue.Close(context.Background())
	if rec2.count() != 1 {
		t.Fatalf("%d notices", rec2.count())
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestStorm: 1000 triggering messages in a short (simulated) window make
// no more notices than the administrator's limit allows (R94).
func TestStorm(t *testing.T) {
	clock := &fakeClock{now: testNow}
	n, rec := newNotifier(t, RateLimit{Count: 3, Window: time.Hour, Global: 10}, clock.Now)
	msg := hs("From", "alice@other.govt.nz", "To", "bob@agency.govt.nz", "Subject", "storm")
	sent := 0
	for i := 0; i < 1000; i++ {
		clock.Advance(100 * time.Millisecond) // 1000 messages in 100 s
		if n.trigger(t, "002", msg, "alice@other.govt.nz", "postmaster@agency.govt.nz") {
			sent++
		}
		if n.trigger(t, "003", msg, "alice@other.govt.nz", "postmaster@agency.govt.nz") {
			sent++
		}
	}
	if sent != 6 {
		t.Errorf("%d notices for 2000 triggers, want 3 per code", sent)
	}
	// Many recipients: the global cap holds.
	for i := 0; i < 1000; i++ {
		clock.Advance(time.Millisecond)
		to := "user" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "@agency.govt.nz"
		if n.trigger(t, "002", msg, "alice@other.govt.nz", to) {
			sent++
		}
	}
	if sent != 10 {
		t.Errorf("%d notices, the global cap is 10", sent)
	}
	// After the window, notices flow again.
	clock.Advance(time.Hour)
	if !n.trigger(t, "002", msg, "alice@other.govt.nz", "postmaster@agency.govt.nz") {
		t.Error("no notice after the window passed")
	}
	sent++
	_ = n.queue.Close(context.Background())
	if rec.count() != sent {
		t.Errorf("%d submitted, %d allowed", rec.count(), sent)
	}
	if n.limiter.Suppressed() == 0 {
		t.Error("nothing counted as suppressed")
	}
}
