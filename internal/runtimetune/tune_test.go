package runtimetune

import (
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestProcs(t *testing.T) {
	for _, c := range []struct{ n, want int }{{1, 1}, {2, 1}, {3, 1}, {4, 2}, {16, 8}} {
		if got := Procs(c.n); got != c.want {
			t.Errorf("Procs(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// Apply sets the three only where the environment sets none: GOGC,
// GOMEMLIMIT and GOMAXPROCS stay the administrator's.
func TestApplyKeepsTheEnvironment(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	prevProcs := runtime.GOMAXPROCS(4)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
		runtime.GOMAXPROCS(prevProcs)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOMAXPROCS", "")
	line := Apply()
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("GC percent %d, want %d", got, GCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != MemoryLimit {
		t.Errorf("memory limit %d, want %d", got, MemoryLimit)
	}
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS %d from 4, want 2", got)
	}
	if line != "GOGC=400 GOMEMLIMIT=1073741824 GOMAXPROCS=2" {
		t.Errorf("reported %q", line)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	runtime.GOMAXPROCS(4)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "2GiB")
	t.Setenv("GOMAXPROCS", "3")
	line = Apply()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: memory limit changed to %d", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Errorf("GOMAXPROCS set: changed to %d", got)
	}
	if !strings.Contains(line, "GOGC=150 (environment)") || !strings.Contains(line, "GOMAXPROCS=3 (environment)") {
		t.Errorf("reported %q", line)
	}
}
