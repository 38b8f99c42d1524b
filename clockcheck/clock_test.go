package clockcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fake returns an Adjtimex that reports status, esterror (µs) and rc.
func fake(status int32, esterror int64, rc int, err error) Adjtimex {
	return func(t *unix.Timex) (int, error) {
		if t.Modes != 0 {
			panic("the check must only read (Modes 0)")
		}
		t.Status = status
		t.Esterror = esterror
		t.Maxerror = 2 * esterror
		return rc, err
	}
}

func TestRead(t *testing.T) {
	cases := []struct {
		name    string
		adj     Adjtimex
		synced  bool
		problem string
	}{
		{"synchronised", fake(unix.STA_PLL, 1500, unix.TIME_OK, nil), true, ""},
		{"unsync bit", fake(unix.STA_UNSYNC, 0, unix.TIME_OK, nil), false, "unsynchronised"},
		{"time error", fake(0, 0, unix.TIME_ERROR, nil), false, "unsynchronised"},
		{"error above bound", fake(0, 2_500_000, unix.TIME_OK, nil), false, "estimated clock error 2.5s is above 1s"},
		{"error at bound", fake(0, 1_000_000, unix.TIME_OK, nil), true, ""},
		{"call fails", fake(0, 0, -1, errors.New("operation not permitted")), false, "cannot be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Read(c.adj, 0)
			if s.Synced != c.synced || !strings.Contains(s.Problem, c.problem) {
				t.Errorf("Read = synced %v, problem %q; want %v, %q", s.Synced, s.Problem, c.synced, c.problem)
			}
			if c.synced && !strings.Contains(s.String(), "synchronised with UTC") {
				t.Errorf("String %q", s.String())
			}
		})
	}
	if s := Read(fake(0, 1500, unix.TIME_OK, nil), 0); s.EstError != 1500*time.Microsecond || s.MaxErr != 3*time.Millisecond {
		t.Errorf("errors %v / %v, want 1.5ms / 3ms", s.EstError, s.MaxErr)
	}
	if s := Read(fake(0, 50_000, unix.TIME_OK, nil), 10*time.Millisecond); s.Synced {
		t.Error("a 50ms error passed a 10ms bound")
	}
}

func TestMonitorReadsAtStartAndPeriodically(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan State, 10)
	calls := 0
	adj := func(t *unix.Timex) (int, error) {
		calls++
		if calls > 1 {
			t.Status = unix.STA_UNSYNC // the time source went away
		}
		return unix.TIME_OK, nil
	}
	done := make(chan struct{})
	go func() {
		Monitor(ctx, adj, 0, 5*time.Millisecond, func(s State) { got <- s })
		close(done)
	}()
	if s := <-got; !s.Synced {
		t.Errorf("first reading %v, want synchronised", s)
	}
	if s := <-got; s.Synced {
		t.Errorf("second reading synchronised, want the unsync bit seen")
	}
	cancel()
	<-done
}
