package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// flaky fails its first n calls with err, then succeeds.
type flaky struct {
	n     int32
	err   error
	calls atomic.Int32
	block chan struct{} // when set, Submit waits on it
}

func (f *flaky) Submit(ctx context.Context, _ string, _ []string, _ []byte) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.calls.Add(1) <= f.n {
		return f.err
	}
	return nil
}

func testMessage(i int) *Message {
	return &Message{Rcpts: []string{fmt.Sprintf("user%d@agency.govt.nz", i)}, Data: []byte("x"), Kind: "notice 002"}
}

func TestQueueRetriesThenSucceeds(t *testing.T) {
	log, buf := testLogger()
	sub := &flaky{n: 2, err: errors.New("connection refused")}
	q := NewQueue(sub, QueueConfig{Attempts: 5, Backoff: time.Millisecond, Logger: log})
	if !q.Enqueue(testMessage(1)) {
		t.Fatal("not queued")
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if sub.calls.Load() != 3 || st.Sent != 1 || st.Retried != 2 || st.Failed != 0 {
		t.Errorf("calls %d, stats %+v", sub.calls.Load(), st)
	}
	if n := strings.Count(buf.String(), "will retry"); n != 2 {
		t.Errorf("%d retry lines:\n%s", n, buf.String())
	}
}

func TestQueueGivesUp(t *testing.T) {
	log, buf := testLogger()
	sub := &flaky{n: 1000, err: errors.New("451 try later")}
	q := NewQueue(sub, QueueConfig{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Logger: log})
	q.Enqueue(testMessage(1))
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sub.calls.Load() != 3 || q.Stats().Failed != 1 {
		t.Errorf("calls %d, stats %+v", sub.calls.Load(), q.Stats())
	}
	out := buf.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "giving up after all attempts") ||
		!strings.Contains(out, "attempt=3") || !strings.Contains(out, "user1@agency.govt.nz") {
		t.Errorf("no give-up line:\n%s", out)
	}
}

func TestQueuePermanentNotRetried(t *testing.T) {
	log, buf := testLogger()
	sub := &flaky{n: 1000, err: fmt.Errorf("%w: 550 no such user", ErrPermanent)}
	q := NewQueue(sub, QueueConfig{Attempts: 5, Backoff: time.Millisecond, Logger: log})
	q.Enqueue(testMessage(1))
	_ = q.Close(context.Background())
	if sub.calls.Load() != 1 || !strings.Contains(buf.String(), "permanent failure") {
		t.Errorf("calls %d:\n%s", sub.calls.Load(), buf.String())
	}
}

// TestQueueFullNeverBlocks: Enqueue returns at once; a full queue drops and
// logs an ERROR.
func TestQueueFullNeverBlocks(t *testing.T) {
	log, buf := testLogger()
	sub := &flaky{block: make(chan struct{})}
	q := NewQueue(sub, QueueConfig{Size: 2, Workers: 1, Logger: log})
	start := time.Now()
	accepted := 0
	for i := 0; i < 100; i++ {
		if q.Enqueue(testMessage(i)) {
			accepted++
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Enqueue blocked for %s", d)
	}
	if accepted > 3 || accepted < 2 { // 2 in the channel, maybe 1 taken by the worker
		t.Errorf("%d accepted with size 2", accepted)
	}
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "queue full") {
		t.Errorf("no drop line:\n%s", buf.String())
	}
	close(sub.block)
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if int(st.Sent) != accepted || int(st.Dropped) != 100-accepted {
		t.Errorf("stats %+v, accepted %d", st, accepted)
	}
	if q.Enqueue(testMessage(200)) {
		t.Error("Enqueue after Close accepted")
	}
}

// TestQueueCloseDrains: Close waits for queued messages.
func TestQueueCloseDrains(t *testing.T) {
	rec := &recorder{}
	q := NewQueue(rec, QueueConfig{Size: 100, Workers: 3})
	for i := 0; i < 50; i++ {
		q.Enqueue(testMessage(i))
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 50 {
		t.Errorf("%d of 50 submitted", rec.count())
	}
}

// TestQueueCloseDeadline: Close gives up at its deadline, abandoning
// messages that are still retrying, with a log line.
func TestQueueCloseDeadline(t *testing.T) {
	log, buf := testLogger()
	sub := &flaky{n: 1000, err: errors.New("down")}
	q := NewQueue(sub, QueueConfig{Attempts: 10, Backoff: time.Hour, Workers: 1, Logger: log})
	q.Enqueue(testMessage(1))
	q.Enqueue(testMessage(2))
	// The worker has tried message 1 once (and waits an hour to retry).
	for deadline := time.Now().Add(5 * time.Second); sub.calls.Load() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not try the first message within 5s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Close took %s", time.Since(start))
	}
	out := buf.String()
	if !strings.Contains(out, "shut down during retries") || !strings.Contains(out, "abandoned") {
		t.Errorf("log:\n%s", out)
	}
}
