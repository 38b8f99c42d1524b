// Package metrics counts the milter's decisions and check results for
// Prometheus (`/metrics` on the policy's listen.metrics address).
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Metrics is one registry of the milter's counters.
type Metrics struct {
	Registry *prometheus.Registry

	decisions      *prometheus.CounterVec
	checks         *prometheus.CounterVec
	classification *prometheus.CounterVec
	breaches       prometheus.Counter
	duration       *prometheus.HistogramVec
	health         *health // clock and self-test gauges (health.go)
	selftestOnce   sync.Once
	ownOnce        sync.Once
}

// New registers the counters on a new registry (plus Go and process metrics).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nzsecure_decisions_total", Help: "Final decisions by direction, stage and action.",
		}, []string{"direction", "stage", "action"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nzsecure_auth_results_total", Help: "Sender check results by method (spf, spf-helo, senderid-mfrom, senderid) and result.",
		}, []string{"method", "result"}),
		classification: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nzsecure_classification_total", Help: "Messages by classification and direction.",
		}, []string{"classification", "direction"}),
		breaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nzsecure_breach_attempts_total", Help: "Attempts to send classified mail where the policy does not allow it (R113).",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nzsecure_transaction_seconds", Help: "Time from MAIL FROM to the final decision.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}, []string{"direction"}),
	}
	m.Registry.MustRegister(m.decisions, m.checks, m.classification, m.breaches, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.health = newHealth(m.Registry)
	return m
}

var methodOf = map[string]string{"mfrom": "spf", "helo": "spf-helo", "senderid-mfrom": "senderid-mfrom", "pra": "senderid"}

// Decision counts one final verdict that took d since MAIL FROM.
func (m *Metrics) Decision(v policy.Verdict, d time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(string(v.Direction), string(v.Stage), string(v.Action)).Inc()
	for _, c := range v.Checks {
		method := methodOf[c.Scope]
		if method == "" {
			method = c.Scope
		}
		m.checks.WithLabelValues(method, string(c.Result)).Inc()
	}
	if v.Classification != "" {
		m.classification.WithLabelValues(v.Classification, string(v.Direction)).Inc()
	}
	m.breaches.Add(float64(len(v.Breaches)))
	m.duration.WithLabelValues(string(v.Direction)).Observe(d.Seconds())
}

// Serve answers /metrics on ln until ctx ends.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
