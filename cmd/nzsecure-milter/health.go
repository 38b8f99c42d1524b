package main

import (
	"context"
	"log/slog"

	"github.com/nzsecure-milter/nzsecure-milter/clockcheck"
	"github.com/nzsecure-milter/nzsecure-milter/metrics"
)

// clockAdjtimex is the system call serve reads the clock state with;
// tests replace it.
var clockAdjtimex clockcheck.Adjtimex = clockcheck.System

// watchClock checks the kernel's clock synchronisation at start and every
// hour until ctx ends (R90, R141, issue 17 point 3): a warning at every
// check that finds the clock not synchronised, and the nzsecure_clock_*
// metrics.
func watchClock(ctx context.Context, m *metrics.Metrics, log *slog.Logger) {
	clockcheck.Monitor(ctx, clockAdjtimex, clockcheck.MaxError, clockcheck.Every, func(s clockcheck.State) {
		m.Clock(s.Synced, s.EstError)
		if s.Synced {
			log.Info("clock synchronised", "estimated_error", s.EstError.String(), "max_error", s.MaxErr.String())
			return
		}
		log.Warn("clock not synchronised with UTC (R90, R141): certificate, CRL and timestamp checks depend on it; run NTP (chrony, systemd-timesyncd)",
			"problem", s.Problem, "estimated_error", s.EstError.String())
	})
}
