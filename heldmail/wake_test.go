package heldmail

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
)

// Wake (a peer certificate arrived by mail, R44, R51) starts a round at
// once, long before the interval; wakes never block and do not pile up.
func TestWakeRetriesNow(t *testing.T) {
	rg := newRig(t)
	rg.put(t, testMsg)
	var calls atomic.Int32
	rg.r.Retry = func(_ context.Context, _ pipeline.HeldMessage, msg io.Reader) (Outcome, error) {
		calls.Add(1)
		_, _ = io.ReadAll(msg)
		return Outcome{Result: StillHeld}, nil
	}
	rg.r.After = func(time.Duration) <-chan time.Time { return make(chan time.Time) } // the interval never passes
	// Wakes before Run starts, and many at once, do not block.
	for range 5 {
		rg.r.Wake()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rg.r.Run(ctx); close(done) }()
	wait := func(n int32) bool {
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return calls.Load() >= n
	}
	// The round at start, then one for the wakes already sent (coalesced).
	if !wait(2) {
		t.Fatalf("calls %d: no round after the wake", calls.Load())
	}
	time.Sleep(50 * time.Millisecond)
	if c := calls.Load(); c != 2 {
		t.Errorf("calls %d, want 2 (five early wakes are one round)", c)
	}
	rg.r.Wake()
	if !wait(3) {
		t.Errorf("calls %d: no round after the second wake", calls.Load())
	}
	cancel()
	<-done
}
