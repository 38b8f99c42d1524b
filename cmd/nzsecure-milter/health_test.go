package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nzsecure-milter/nzsecure-milter/metrics"
)

// serve's clock check with a fake adjtimex (issue 17 point 3).
func TestWatchClockWarns(t *testing.T) {
	old := clockAdjtimex
	defer func() { clockAdjtimex = old }()
	ctx, cancel := context.WithCancel(context.Background())
	clockAdjtimex = func(tx *unix.Timex) (int, error) {
		tx.Status = unix.STA_UNSYNC
		cancel() // one reading: Monitor returns at its first wait
		return unix.TIME_ERROR, nil
	}
	var buf bytes.Buffer
	m := metrics.New()
	watchClock(ctx, m, slog.New(slog.NewJSONHandler(&buf, nil)))
	if !strings.Contains(buf.String(), `"level":"WARN","msg":"clock not synchronised with UTC (R90, R141)`) {
		t.Errorf("no warning logged:\n%s", buf.String())
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "nzsecure_clock_synchronised" {
			found = true
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("nzsecure_clock_synchronised %v, want 0", v)
			}
		}
	}
	if !found {
		t.Error("nzsecure_clock_synchronised not exposed")
	}
}
