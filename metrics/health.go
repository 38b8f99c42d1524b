package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// health are the gauges of the gateway's own checks (issue 17): the clock
// (R90, R141), the last self-test (R19-R21), and when our own DCA
// certificates expire (R51).
type health struct {
	clockSynced   prometheus.Gauge
	clockError    prometheus.Gauge
	selftestOK    prometheus.Gauge
	selftestFails prometheus.Gauge
	selftestTime  prometheus.Gauge
	ownValidUntil *prometheus.GaugeVec
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
		ownValidUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nzsecure_smime_own_valid_until_timestamp_seconds",
			Help: "When the last valid DCA certificate of one of our domains expires (Unix time; 0: none is valid), from the renewal check (R51); alert well before it.",
		}, []string{"domain"}),
	}
	r.MustRegister(h.clockSynced, h.clockError)
	return h
}

// OwnCertificate records, from a renewal check (R51), when the last valid
// certificate of our domain expires; zero means none is valid. Registered
// at the first check, so a gateway without S/MIME shows none.
func (m *Metrics) OwnCertificate(domain string, validUntil time.Time) {
	if m == nil {
		return
	}
	m.ownOnce.Do(func() { m.Registry.MustRegister(m.health.ownValidUntil) })
	v := 0.0
	if !validUntil.IsZero() {
		v = float64(validUntil.Unix())
	}
	m.health.ownValidUntil.WithLabelValues(domain).Set(v)
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
