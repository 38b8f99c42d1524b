package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestHealthGauges(t *testing.T) {
	m := New()
	names := func() map[string]bool {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, mf := range mfs {
			out[mf.GetName()] = true
		}
		return out
	}
	if names()["nzsecure_selftest_ok"] {
		t.Error("nzsecure_selftest_ok exposed before any self-test ran")
	}
	m.Clock(false, 2500*time.Millisecond)
	if v := gauge(t, m.health.clockSynced); v != 0 {
		t.Errorf("clock synchronised %v, want 0", v)
	}
	if v := gauge(t, m.health.clockError); v != 2.5 {
		t.Errorf("clock error %v, want 2.5", v)
	}
	m.Clock(true, 0)
	if v := gauge(t, m.health.clockSynced); v != 1 {
		t.Errorf("clock synchronised %v, want 1", v)
	}
	at := time.Unix(1700000000, 0)
	m.Selftest(false, 2, at)
	m.Selftest(false, 2, at) // registers once
	if !names()["nzsecure_selftest_ok"] {
		t.Error("nzsecure_selftest_ok not exposed after a run")
	}
	if gauge(t, m.health.selftestOK) != 0 || gauge(t, m.health.selftestFails) != 2 || gauge(t, m.health.selftestTime) != 1700000000 {
		t.Error("self-test gauges do not show the failed run")
	}
	m.Selftest(true, 0, at)
	if gauge(t, m.health.selftestOK) != 1 {
		t.Error("self-test gauge does not show the passing run")
	}
	var nilM *Metrics
	nilM.Clock(true, 0)
	nilM.Selftest(true, 0, at)
}

// gauge reads one gauge's value.
func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
