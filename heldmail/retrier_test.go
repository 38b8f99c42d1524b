package heldmail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
)

type submitted struct {
	from  string
	rcpts []string
	data  string
}

type fakeSubmitter struct {
	mu   sync.Mutex
	got  []submitted
	fail error
}

func (f *fakeSubmitter) Submit(_ context.Context, from string, rcpts []string, msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, submitted{from, append([]string(nil), rcpts...), string(msg)})
	return nil
}

// fakeRetry answers with out and records the message it was given.
type fakeRetry struct {
	out   Outcome
	err   error
	calls int
	msgs  []string
}

func (f *fakeRetry) retry(_ context.Context, _ pipeline.HeldMessage, msg io.Reader) (Outcome, error) {
	f.calls++
	b, err := io.ReadAll(msg)
	if err != nil {
		return Outcome{}, err
	}
	f.msgs = append(f.msgs, string(b))
	return f.out, f.err
}

type testRig struct {
	s     *Store
	r     *Retrier
	retry *fakeRetry
	sub   *fakeSubmitter
	clock time.Time
	log   *bytes.Buffer
}

func newRig(t *testing.T) *testRig {
	t.Helper()
	rg := &testRig{retry: &fakeRetry{}, sub: &fakeSubmitter{}, log: &bytes.Buffer{}}
	rg.clock = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	rg.s = openStore(t, Options{Now: func() time.Time { return rg.clock }})
	rg.r = &Retrier{Store: rg.s, Retry: rg.retry.retry, Notices: rg.sub,
		Generator: notify.Generator{Domain: "agency.govt.nz", Now: func() time.Time { return rg.clock }},
		GiveUp:    72 * time.Hour, Interval: 15 * time.Minute,
		Log: slog.New(slog.NewJSONHandler(rg.log, nil)), Now: func() time.Time { return rg.clock }}
	return rg
}

func (rg *testRig) put(t *testing.T, msg string) string {
	t.Helper()
	id, err := rg.s.Put(context.Background(), held(rg.clock), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// decisions are the decision-log lines written so far.
func (rg *testRig) decisions(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(rg.log.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

// TestRetrySent: a retry that sends removes the entry and logs
// held-sent; the Retry function got the stored message exactly.
func TestRetrySent(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: Sent, Reason: "the peer certificate is valid again"}
	st := rg.r.Round(context.Background())
	if st[ActSent] != 1 || rg.retry.calls != 1 || rg.retry.msgs[0] != testMsg {
		t.Fatalf("stats %v calls %d msgs %q", st, rg.retry.calls, rg.retry.msgs)
	}
	if _, err := rg.s.Entry(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry after sent: %v", err)
	}
	if f, _, _ := rg.s.ListFailed(); len(f) != 0 {
		t.Fatalf("failed/ = %v", f)
	}
	if len(rg.sub.got) != 0 {
		t.Fatalf("notice sent for a delivered message: %v", rg.sub.got)
	}
	d := rg.decisions(t)
	if len(d) != 1 || d[0]["action"] != string(ActSent) || d[0]["held_id"] != id || d[0]["queue_id"] != "ABC123" {
		t.Fatalf("decisions %v", d)
	}
}

// TestRetryStillHeld: still held updates tries, last try, reason and the
// current code, and keeps the entry.
func TestRetryStillHeld(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: StillHeld, Code: "202", Reason: "CRL unreachable"}
	rg.clock = rg.clock.Add(15 * time.Minute)
	rg.r.Round(context.Background())
	rg.clock = rg.clock.Add(15 * time.Minute)
	rg.r.Round(context.Background())
	e, err := rg.s.Entry(id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Tries != 2 || e.Code != "202" || e.LastReason != "CRL unreachable" || !e.LastTry.Equal(rg.clock) {
		t.Fatalf("entry %+v", e)
	}
	if len(rg.sub.got) != 0 {
		t.Fatal("notice sent before give-up")
	}
	d := rg.decisions(t)
	if len(d) != 2 || d[1]["action"] != string(ActStillHeld) || d[1]["warning_code"] != "202" {
		t.Fatalf("decisions %v", d)
	}
	// A Retry error is the gateway's own failure: still held.
	rg.retry.err = errors.New("chain failed")
	rg.r.Round(context.Background())
	if e, _ := rg.s.Entry(id); e.Tries != 3 || !strings.Contains(e.LastReason, "chain failed") {
		t.Fatalf("after an error: %+v", e)
	}
}

// TestGiveUpExactly: still held one second before smime.give_up; at
// exactly give_up one SECURE DELIVERY FAILURE notice with the code goes to
// the sender and the sender's postmaster, from postmaster, carrying only
// the original's Date/From/To/Subject, and the message moves to failed/;
// later rounds send nothing more.
func TestGiveUpExactly(t *testing.T) {
	rg := newRig(t)
	received := rg.clock
	id := rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: StillHeld, Reason: "peer certificate revoked"}

	rg.clock = received.Add(72*time.Hour - time.Second)
	if st := rg.r.Round(context.Background()); st[ActStillHeld] != 1 {
		t.Fatalf("before give_up: %v", st)
	}
	if len(rg.sub.got) != 0 {
		t.Fatal("notice before give_up")
	}
	rg.clock = received.Add(72 * time.Hour)
	if st := rg.r.Round(context.Background()); st[ActGaveUp] != 1 {
		t.Fatalf("at give_up: %v", st)
	}
	if len(rg.sub.got) != 1 {
		t.Fatalf("%d notices, want 1", len(rg.sub.got))
	}
	n := rg.sub.got[0]
	if n.from != "" || strings.Join(n.rcpts, ",") != "alice@agency.govt.nz,postmaster@agency.govt.nz" {
		t.Fatalf("notice envelope %q %v", n.from, n.rcpts)
	}
	data := decodeQP(t, n.data)
	for _, want := range []string{
		"From: Postmaster <postmaster@agency.govt.nz>",
		"Subject: SECURE DELIVERY FAILURE [Code: 201]: budget",
		"SECURE DELIVERY FAILURE – Your message could not be delivered securely, therefore, it was not sent. [Code: 201, peer.govt.nz]",
		"Not delivered to: bob@peer.govt.nz",
		"The gateway kept trying for 72 hours and has now given up",
		"Subject: budget", "Date: Tue, 01 Dec 2026 10:00:00 +1300", "To: bob@peer.govt.nz",
		"Auto-Submitted: auto-generated",
	} {
		if !strings.Contains(data, want) {
			t.Errorf("notice lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(data, "body line") {
		t.Error("notice carries the original's body (R77)")
	}
	if _, err := rg.s.Entry(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry still held: %v", err)
	}
	fe, err := rg.s.FailedEntry(id)
	if err != nil || !fe.Notified || !strings.Contains(fe.Note, "smime.give_up") {
		t.Fatalf("failed entry %+v %v", fe, err)
	}
	for i := 0; i < 3; i++ {
		rg.clock = rg.clock.Add(15 * time.Minute)
		rg.r.Round(context.Background())
	}
	if len(rg.sub.got) != 1 || rg.retry.calls != 2 {
		t.Fatalf("after give-up: %d notices, %d retries", len(rg.sub.got), rg.retry.calls)
	}
	d := rg.decisions(t)
	if last := d[len(d)-1]; last["action"] != string(ActGaveUp) || last["moved_to"] != FailedDir {
		t.Fatalf("last decision %v", last)
	}
}

// TestGiveUpNoticeFails: a notice the MTA cannot take now keeps the
// entry; the next round sends it once and moves the message.
func TestGiveUpNoticeFails(t *testing.T) {
	rg := newRig(t)
	received := rg.clock
	id := rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: StillHeld}
	rg.clock = received.Add(73 * time.Hour)
	rg.sub.fail = errors.New("connection refused")
	if st := rg.r.Round(context.Background()); st[ActNoticeFailed] != 1 {
		t.Fatalf("stats %v", st)
	}
	if _, err := rg.s.Entry(id); err != nil {
		t.Fatalf("entry gone after a failed notice: %v", err)
	}
	rg.sub.fail = nil
	if st := rg.r.Round(context.Background()); st[ActGaveUp] != 1 || len(rg.sub.got) != 1 {
		t.Fatalf("stats %v notices %d", st, len(rg.sub.got))
	}
}

// TestNoticeSentMoveInterrupted: an entry whose notice went (Notified)
// is only moved, never notified again.
func TestNoticeSentMoveInterrupted(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	e, _ := rg.s.Entry(id)
	e.Notified = true
	if err := rg.s.Update(e); err != nil {
		t.Fatal(err)
	}
	rg.r.Round(context.Background())
	if len(rg.sub.got) != 0 || rg.retry.calls != 0 {
		t.Fatalf("notices %d retries %d", len(rg.sub.got), rg.retry.calls)
	}
	if _, err := rg.s.FailedEntry(id); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedAndLoops: refused gives the FAILURE notice at once; a held
// message from the null sender or from MAILER-DAEMON gets none (R93), but
// still moves to failed/.
func TestRefusedAndLoops(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: Refused, Reason: "rejected: classified mail to an unaccredited domain"}
	if st := rg.r.Round(context.Background()); st[ActRefused] != 1 || len(rg.sub.got) != 1 {
		t.Fatalf("stats %v notices %d", st, len(rg.sub.got))
	}
	if _, err := rg.s.FailedEntry(id); err != nil {
		t.Fatal(err)
	}

	h := held(rg.clock)
	h.Envelope.From = ""
	nid, _ := rg.s.Put(context.Background(), h, strings.NewReader("From: MAILER-DAEMON@agency.govt.nz\r\nSubject: x\r\n\r\nx\r\n"))
	if st := rg.r.Round(context.Background()); st[ActRefused] != 1 || len(rg.sub.got) != 1 {
		t.Fatalf("null sender: stats %v notices %d", st, len(rg.sub.got))
	}
	fe, err := rg.s.FailedEntry(nid)
	if err != nil || !strings.Contains(fe.Note, "null envelope sender") {
		t.Fatalf("%+v %v", fe, err)
	}
}

// TestCorruptNeverSent: a stored message changed on disk is never handed
// to the MTA: the retry sees ErrCorrupt and the message goes to failed/.
func TestCorruptNeverSent(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	if err := writeFile(rg.s.path(id, ".eml"), strings.ToUpper(testMsg)); err != nil {
		t.Fatal(err)
	}
	rg.retry.out = Outcome{Result: Sent}
	rg.r.Round(context.Background())
	fe, err := rg.s.FailedEntry(id)
	if err != nil || !strings.Contains(fe.Note, "damaged") {
		t.Fatalf("%+v %v", fe, err)
	}
}

// TestRoundBounded: one round does at most MaxPerRound, least recently
// tried first, so the next round takes the others; a cancelled context
// does nothing.
func TestRoundBounded(t *testing.T) {
	rg := newRig(t)
	for i := 0; i < 5; i++ {
		rg.put(t, testMsg)
	}
	rg.r.MaxPerRound = 2
	rg.retry.out = Outcome{Result: StillHeld}
	tried := map[string]bool{}
	for round := 0; round < 3; round++ {
		rg.clock = rg.clock.Add(time.Minute)
		if st := rg.r.Round(context.Background()); st[ActStillHeld] > 2 {
			t.Fatalf("round did %v", st)
		}
		l, _, _ := rg.s.List()
		for _, e := range l {
			if e.Tries > 0 {
				tried[e.ID] = true
			}
		}
	}
	if len(tried) != 5 {
		t.Fatalf("%d of 5 tried in three rounds of 2", len(tried))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := rg.retry.calls
	rg.r.Round(ctx)
	if rg.retry.calls != calls {
		t.Fatal("a cancelled round retried")
	}
}

// TestRunOnceAtStartThenEveryInterval: Run retries at start, then at each
// tick of the (fake) clock, and returns when the context ends.
func TestRunOnceAtStartThenEveryInterval(t *testing.T) {
	rg := newRig(t)
	rg.put(t, testMsg)
	rg.retry.out = Outcome{Result: StillHeld}
	ticks := make(chan time.Time)
	var asked []time.Duration
	var mu sync.Mutex
	rg.r.After = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		return ticks
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rg.r.Run(ctx); close(done) }()
	ticks <- time.Now() // only received once the first round is over
	ticks <- time.Now()
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if rg.retry.calls < 2 || asked[0] != 15*time.Minute {
		t.Fatalf("calls %d intervals %v", rg.retry.calls, asked)
	}
}

// TestDelete: held delete moves to failed/ with the note.
func TestDelete(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	if err := rg.r.Delete(id, "sent by hand"); err != nil {
		t.Fatal(err)
	}
	fe, err := rg.s.FailedEntry(id)
	if err != nil || fe.Note != "deleted by the administrator: sent by hand" {
		t.Fatalf("%+v %v", fe, err)
	}
	if d := rg.decisions(t); len(d) != 1 || d[0]["action"] != string(ActDeleted) {
		t.Fatalf("decisions %v", d)
	}
}

// decodeQP gives the notice's headers and its quoted-printable body
// decoded.
func decodeQP(t *testing.T, data string) string {
	t.Helper()
	head, body, ok := strings.Cut(data, "\r\n\r\n")
	if !ok {
		t.Fatalf("no body in %q", data)
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	return head + "\r\n\r\n" + string(dec)
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

// TestRetryPanicKeepsHeld: a panic in the chain keeps the message held
// and the loop alive.
func TestRetryPanicKeepsHeld(t *testing.T) {
	rg := newRig(t)
	id := rg.put(t, testMsg)
	rg.r.Retry = func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) { panic("boom") }
	if st := rg.r.Round(context.Background()); st[ActStillHeld] != 1 {
		t.Fatalf("stats %v", st)
	}
	if e, err := rg.s.Entry(id); err != nil || e.Tries != 1 || !strings.Contains(e.LastReason, "panicked: boom") {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestRetryHours(t *testing.T) {
	for iv, want := range map[time.Duration]int{15 * time.Minute: 1, time.Hour: 1, 61 * time.Minute: 2, 24 * time.Hour: 24} {
		if got := RetryHours(iv); got != want {
			t.Errorf("RetryHours(%s) = %d, want %d", iv, got, want)
		}
	}
}
