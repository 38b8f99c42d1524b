package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// health are the gauges of the gateway's own checks (issue 17): the clock
// (R90, R141) and the last self-test (R19-R21).
type health struct {
	clockSynced   prometheus.Gauge
	clockError    prometheus.Gauge
	selftestOK    prometheus.Gauge
	selftestFails prometheus.Gauge
	selftestTime  prometheus.Gauge
}

func newHealth(r *prometheus.Registry) *health {
	h := &health{
		clockSynced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nzsecure_clock_synchronised", Help: "1 when the kernel reports the clock synchronised with an estimated error within the bound (R90, R141), else 0.",
		}),
		clockError: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nzsecure_clock_estimated_error_seconds", Help: "The kernel's estimated clock error (adjtimex esterror).",
		}),
		selftestOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nzsecure_selftest_ok", Help: "1 when the last self-test (R19-R21) passed every scenario, 0 when one failed; absent before the first run.",
		}),
		selftestFails: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nzsecure_selftest_failed_scenarios", Help: "Scenarios that failed in the last self-test.",
		}),
		selftestTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nzsecure_selftest_last_run_timestamp_seconds", Help: "When the last self-test ended (Unix time).",
		}),
	}
	r.MustRegister(h.clockSynced, h.clockError)
	return h
}

// Clock records a clock check.
func (m *Metrics) Clock(synced bool, estError time.Duration) {
	if m == nil {
		return
	}
	m.health.clockSynced.Set(b2f(synced))
	m.health.clockError.Set(estError.Seconds())
}

// Selftest records the result of a self-test run. The gauges are
// registered at the first run, so that a scrape before it shows no result
// rather than a failure.
func (m *Metrics) Selftest(ok bool, failed int, at time.Time) {
	if m == nil {
		return
	}
	m.selftestOnce.Do(func() { m.Registry.MustRegister(m.health.selftestOK, m.health.selftestFails, m.health.selftestTime) })
	m.health.selftestOK.Set(b2f(ok))
	m.health.selftestFails.Set(float64(failed))
	m.health.selftestTime.Set(float64(at.Unix()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
