package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// QueueConfig configures a Queue; zero fields take the defaults.
type QueueConfig struct {
	// Size is the number of messages waiting at most (default 1000).
	Size int
	// Workers submit in parallel (default 2).
	Workers int
	// Attempts is the number of tries per message (default 5).
	Attempts int
	// Backoff is the wait before the second try; it doubles each time up
	// to MaxBackoff (defaults 30s and 30m).
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one try (default 2m).
	Timeout time.Duration
	// Logger gets one line per failure and give-up; nil is slog.Default().
	Logger *slog.Logger
}

// QueueStats are the Queue's counters.
type QueueStats struct {
	Enqueued, Sent, Retried, Failed, Dropped uint64
}

// Queue submits generated messages asynchronously so that a milter
// callback never waits for the MTA: Enqueue returns at once; workers
// submit with retries and exponential backoff, and log (slog) every
// failure. When the queue is full the message is dropped with an ERROR
// line: notices are rate limited (R94) and must never hold up mail.
type Queue struct {
	sub    Submitter
	cfg    QueueConfig
	log    *slog.Logger
	ch     chan *Message
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	enqueued, sent, retried, failed, dropped atomic.Uint64
}

// NewQueue starts the workers.
func NewQueue(sub Submitter, cfg QueueConfig) *Queue {
	if cfg.Size <= 0 {
		cfg.Size = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Minute
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{sub: sub, cfg: cfg, log: log, ch: make(chan *Message, cfg.Size), ctx: ctx, cancel: cancel}
	for i := 0; i < cfg.Workers; i++ {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

// Enqueue queues m without blocking; false (and an ERROR line) when the
// queue is full or closed.
func (q *Queue) Enqueue(m *Message) bool {
	if m == nil {
		return false
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		q.log.Error("notify queue closed: generated message dropped", msgAttrs(m)...)
		return false
	}
	select {
	case q.ch <- m:
		q.enqueued.Add(1)
		return true
	default:
		q.dropped.Add(1)
		q.log.Error("notify queue full: generated message dropped", append(msgAttrs(m), "queue_size", q.cfg.Size)...)
		return false
	}
}

// Close stops accepting messages and waits for the queued ones to be
// submitted (with their retries) until ctx ends; then it abandons the
// rest, logging how many, and returns ctx's error.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return ctx.Err()
	}
}

// Stats returns the counters.
func (q *Queue) Stats() QueueStats {
	return QueueStats{
		Enqueued: q.enqueued.Load(), Sent: q.sent.Load(), Retried: q.retried.Load(),
		Failed: q.failed.Load(), Dropped: q.dropped.Load(),
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	for m := range q.ch {
		if q.ctx.Err() != nil {
			q.dropped.Add(1)
			q.log.Error("notify queue shut down: generated message abandoned", msgAttrs(m)...)
			continue
		}
		q.deliver(m)
	}
}

// deliver tries m up to Attempts times.
func (q *Queue) deliver(m *Message) {
	delay := q.cfg.Backoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(q.ctx, q.cfg.Timeout)
		err := q.sub.Submit(ctx, m.EnvelopeFrom, m.Rcpts, m.Data)
		cancel()
		if err == nil {
			q.sent.Add(1)
			q.log.Debug("generated message submitted", append(msgAttrs(m), "attempt", attempt)...)
			return
		}
		attrs := append(msgAttrs(m), "attempt", attempt, "attempts", q.cfg.Attempts, "error", err.Error())
		switch {
		case errors.Is(err, ErrPermanent):
			q.failed.Add(1)
			q.log.Error("generated message not submitted: permanent failure, giving up", attrs...)
			return
		case attempt >= q.cfg.Attempts:
			q.failed.Add(1)
			q.log.Error("generated message not submitted: giving up after all attempts", attrs...)
			return
		case q.ctx.Err() != nil:
			q.failed.Add(1)
			q.log.Error("generated message not submitted: queue shut down during retries", attrs...)
			return
		}
		q.retried.Add(1)
		q.log.Warn("generated message not submitted; will retry", append(attrs, "retry_in", delay.String())...)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
			q.failed.Add(1)
			q.log.Error("generated message not submitted: queue shut down during retries", attrs...)
			return
		}
		delay *= 2
		if delay > q.cfg.MaxBackoff {
			delay = q.cfg.MaxBackoff
		}
	}
}

func msgAttrs(m *Message) []any {
	return []any{"kind", m.Kind, "envelope_from", m.EnvelopeFrom, "rcpts", m.Rcpts, "size", len(m.Data)}
}
