package notify

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// RateLimit is the administrator's setting for notification frequency
// (R94: "some failures could cause a log/mail notification storm").
type RateLimit struct {
	// Count notices per recipient and code are allowed in any Window.
	Count  int
	Window time.Duration
	// Global, when > 0, caps all notices together in any Window: a storm
	// across many recipients (or more keys than MaxKeys) is still bounded.
	Global int
	// MaxKeys bounds the (recipient, code) pairs remembered (LRU); the
	// least recently used pair is forgotten first. Default 10000.
	MaxKeys int
}

// maxCount bounds Count and Global: each allowed notice in the window costs
// one timestamp of memory.
const maxCount = 100000

// RateLimiter counts notices per (recipient, code) over a sliding window,
// in bounded memory, with an injectable clock. It is safe for concurrent
// use.
type RateLimiter struct {
	mu         sync.Mutex
	cfg        RateLimit
	now        func() time.Time
	keys       *simplelru.LRU[string, *window]
	global     window
	suppressed uint64
}

// window is the times of the notices allowed in the current window,
// oldest first.
type window struct{ times []time.Time }

// admit drops what has left the window and reports whether one more fits.
func (w *window) admit(now time.Time, d time.Duration, limit int) bool {
	cut := 0
	for cut < len(w.times) && !w.times[cut].After(now.Add(-d)) {
		cut++
	}
	if cut > 0 {
		w.times = append(w.times[:0], w.times[cut:]...)
	}
	return len(w.times) < limit
}

// NewRateLimiter returns a limiter; now nil is time.Now.
func NewRateLimiter(cfg RateLimit, now func() time.Time) (*RateLimiter, error) {
	if cfg.Count <= 0 || cfg.Window <= 0 {
		return nil, fmt.Errorf("rate limit: need a positive count and window (R94), got %d per %s", cfg.Count, cfg.Window)
	}
	if cfg.Count > maxCount || cfg.Global > maxCount {
		return nil, fmt.Errorf("rate limit: at most %d notices per window", maxCount)
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	if now == nil {
		now = time.Now
	}
	keys, err := simplelru.NewLRU[string, *window](cfg.MaxKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	return &RateLimiter{cfg: cfg, now: now, keys: keys}, nil
}

// Allow reports whether a notice with code to recipient may be sent now,
// and counts it if so. Recipients compare without regard to case.
func (l *RateLimiter) Allow(recipient, code string) bool {
	key := strings.ToLower(bareAddress(recipient)) + "\x00" + code
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.keys.Get(key)
	if !ok {
		w = &window{}
	}
	if !w.admit(now, l.cfg.Window, l.cfg.Count) ||
		(l.cfg.Global > 0 && !l.global.admit(now, l.cfg.Window, l.cfg.Global)) {
		l.suppressed++
		l.keys.Add(key, w)
		return false
	}
	w.times = append(w.times, now)
	if l.cfg.Global > 0 {
		l.global.times = append(l.global.times, now)
	}
	l.keys.Add(key, w)
	return true
}

// Suppressed is the number of notices refused so far (for metrics and the
// log).
func (l *RateLimiter) Suppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suppressed
}

// Keys is the number of (recipient, code) pairs remembered.
func (l *RateLimiter) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys.Len()
}
