// Package runtimetune sets the Go runtime for a milter that shares its
// machine with the MTA (issue 13 point 7, bench/throughput.sh). The
// settings apply only where the environment sets none, so GOGC,
// GOMEMLIMIT and GOMAXPROCS stay the administrator's to choose.
//
//   - GOGC=400 with a 1 GiB soft memory limit: the live heap is small
//     (bodies over the memory spool limit are spooled to disk) and each
//     message allocates and drops a few tens of kilobytes, so at Go's
//     default GOGC=100 the collector runs every few hundred messages and
//     costs about a tenth of the milter's CPU. The soft limit makes the
//     collector work harder instead once the heap nears 1 GiB, so a burst
//     of large messages cannot grow the process without bound.
//   - GOMAXPROCS at half the CPUs the runtime would use (at least one):
//     Postfix's smtpd, cleanup, qmgr and smtp processes do most of the
//     work of each message, and with a P for every CPU the Go scheduler
//     spins and hands goroutines between threads looking for work the
//     MTA could have used the CPU for. Measured on two CPUs: 0.52 against
//     0.60 ms of milter CPU a message. One transaction's work is short
//     (well under a millisecond, a few for S/MIME), and the runtime
//     preempts a long one, so the other sessions are not held up.
package runtimetune

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// The collector's settings (see the package comment).
const (
	GCPercent   = 400
	MemoryLimit = 1 << 30
)

// Procs is the GOMAXPROCS for a runtime default of n: half, at least one.
func Procs(n int) int { return max(1, n/2) }

// Apply sets GOGC, GOMEMLIMIT and GOMAXPROCS where the environment does
// not, and returns what the process now runs with, for its start log line
// ("GOGC=400 GOMEMLIMIT=1073741824 GOMAXPROCS=1", an environment setting
// marked "(environment)").
func Apply() string {
	var out []string
	if v := os.Getenv("GOGC"); v != "" {
		out = append(out, "GOGC="+v+" (environment)")
	} else {
		debug.SetGCPercent(GCPercent)
		out = append(out, fmt.Sprintf("GOGC=%d", GCPercent))
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		out = append(out, "GOMEMLIMIT="+v+" (environment)")
	} else {
		debug.SetMemoryLimit(MemoryLimit)
		out = append(out, fmt.Sprintf("GOMEMLIMIT=%d", MemoryLimit))
	}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		out = append(out, "GOMAXPROCS="+v+" (environment)")
	} else {
		// runtime.GOMAXPROCS(0) is the runtime's default: the CPUs this
		// process may use, the container's CPU limit included.
		n := Procs(runtime.GOMAXPROCS(0))
		runtime.GOMAXPROCS(n)
		out = append(out, fmt.Sprintf("GOMAXPROCS=%d", n))
	}
	return strings.Join(out, " ")
}
