// Package clockcheck reads the kernel's clock synchronisation state
// (adjtimex(2)) for `serve` and `audit`: R90 and R141 ("The Gateway MUST
// maintain an accurate clock synchronised with UTC"), spec 000
// "Timekeeping". The gateway cannot keep the time itself (NTP or chrony
// does); it checks that something does, because certificate validity, CRL
// freshness and the R100 timestamps all depend on it.
package clockcheck

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// MaxError is the largest estimated error accepted as synchronised: far
// below what certificate and CRL times need, far above what NTP keeps.
const MaxError = time.Second

// Every is how often serve checks again.
const Every = time.Hour

// Adjtimex is the system call; tests give fake states.
type Adjtimex func(*unix.Timex) (int, error)

// System is the kernel's adjtimex. With Modes 0 it only reads, which needs
// no privilege.
func System(t *unix.Timex) (int, error) { return unix.Adjtimex(t) }

// State is one reading.
type State struct {
	// Synced: the kernel does not flag the clock unsynchronised
	// (STA_UNSYNC clear and the call did not return TIME_ERROR) and the
	// estimated error is within MaxError.
	Synced bool
	// EstError and MaxErr are the kernel's estimated and maximum error.
	EstError time.Duration
	MaxErr   time.Duration
	// Status is the kernel's status word (STA_* bits).
	Status int64
	// Problem says why the clock does not count as synchronised; "" when
	// it does.
	Problem string
	// Err is set when the state could not be read at all.
	Err error
}

// Read asks adj for the state and judges it against bound (MaxError when
// 0). An error reading it is not synchronised: the gateway cannot tell
// (fail safe).
func Read(adj Adjtimex, bound time.Duration) State {
	if bound <= 0 {
		bound = MaxError
	}
	var tx unix.Timex // Modes 0: read only
	rc, err := adj(&tx)
	if err != nil {
		return State{Err: err, Problem: fmt.Sprintf("the clock state cannot be read (adjtimex: %v)", err)}
	}
	s := State{
		EstError: time.Duration(int64(tx.Esterror)) * time.Microsecond,
		MaxErr:   time.Duration(int64(tx.Maxerror)) * time.Microsecond,
		Status:   int64(tx.Status),
	}
	switch {
	case s.Status&unix.STA_UNSYNC != 0 || rc == unix.TIME_ERROR:
		s.Problem = "the kernel reports the clock unsynchronised (no NTP or other time source disciplines it)"
	case s.EstError > bound:
		s.Problem = fmt.Sprintf("the estimated clock error %v is above %v", s.EstError, bound)
	default:
		s.Synced = true
	}
	return s
}

// String is the state in words, for logs and the audit row.
func (s State) String() string {
	if s.Err != nil || !s.Synced {
		return s.Problem
	}
	return fmt.Sprintf("synchronised with UTC (estimated error %v, maximum error %v)", s.EstError, s.MaxErr)
}

// Monitor reads the state now and then every interval until ctx ends,
// handing each reading to report (serve logs it and sets the metric).
func Monitor(ctx context.Context, adj Adjtimex, bound, interval time.Duration, report func(State)) {
	report(Read(adj, bound))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			report(Read(adj, bound))
		}
	}
}
