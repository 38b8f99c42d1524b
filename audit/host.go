package audit

import (
	"os"

	"github.com/nzsecure-milter/nzsecure-milter/clockcheck"
)

// KindHost is the kind of the local host's row group (issue 17 point 3).
const KindHost = "host"

// CheckClock is the host's clock synchronisation check (R90, R141).
const CheckClock = "clock"

// hostReport checks the local host: its clock is synchronised with UTC
// (R90, R141, spec 000 Timekeeping). The gateway cannot keep the time; a
// clock that is off makes certificates, CRLs and R100's timestamps wrong.
func hostReport(clock func() clockcheck.State) DomainReport {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	s := clock()
	st := Pass
	switch {
	case s.Err != nil:
		st = Error
	case !s.Synced:
		st = Fail
	}
	return DomainReport{Domain: name, Kind: KindHost, Checks: []Check{
		row(CheckClock, st, "R90, R141", "%s", s.String()),
	}}
}
