package notify

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRateLimiterWindow(t *testing.T) {
	clock := &fakeClock{now: testNow}
	l, err := NewRateLimiter(RateLimit{Count: 2, Window: 10 * time.Minute}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		rcpt    string
		code    string
		want    bool
	}{
		{0, "a@x.nz", "002", true},
		{time.Minute, "A@X.NZ", "002", true}, // same recipient, any case
		{time.Minute, "<a@x.nz>", "002", false},
		{0, "a@x.nz", "003", true},                           // per code
		{0, "b@x.nz", "002", true},                           // per recipient
		{8*time.Minute + time.Second, "a@x.nz", "002", true}, // the first left the window
		{0, "a@x.nz", "002", false},
		{10 * time.Minute, "a@x.nz", "002", true},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := l.Allow(s.rcpt, s.code); got != s.want {
			t.Errorf("step %d: Allow(%s, %s) = %v", i, s.rcpt, s.code, got)
		}
	}
}

// TestRateLimiterBounded: memory is bounded by MaxKeys.
func TestRateLimiterBounded(t *testing.T) {
	clock := &fakeClock{now: testNow}
	l, err := NewRateLimiter(RateLimit{Count: 1, Window: time.Hour, MaxKeys: 100}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		l.Allow(fmt.Sprintf("user%d@agency.govt.nz", i), "002")
	}
	if l.Keys() > 100 {
		t.Errorf("%d keys kept, limit 100", l.Keys())
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	l, err := NewRateLimiter(RateLimit{Count: 5, Window: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if l.Allow("pm@agency.govt.nz", "002") {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 5 {
		t.Errorf("%d allowed, want 5", allowed)
	}
	if l.Suppressed() != 795 {
		t.Errorf("%d suppressed", l.Suppressed())
	}
}

func TestRateLimiterConfig(t *testing.T) {
	for _, c := range []RateLimit{{}, {Count: 1}, {Window: time.Second}, {Count: -1, Window: time.Second}, {Count: maxCount + 1, Window: time.Second}} {
		if _, err := NewRateLimiter(c, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
