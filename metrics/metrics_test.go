package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func TestMetricsScrape(t *testing.T) {
	m := New()
	m.Decision(policy.Verdict{Direction: policy.Inbound, Stage: policy.StageMail, Action: policy.Reject,
		Checks: []policy.AuthCheck{{Scope: "mfrom", Result: "fail"}}, Classification: "UNCLASSIFIED"}, 3*time.Millisecond)
	m.Decision(policy.Verdict{Direction: policy.Outbound, Stage: policy.StageEOM, Action: policy.Quarantine,
		Classification: "SECRET", Breaches: []string{"x", "y"}}, time.Second)
	var nilM *Metrics
	nilM.Decision(policy.Verdict{}, 0) // metrics off: no panic

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`nzsecure_decisions_total{action="reject",direction="inbound",stage="mail"} 1`,
		`nzsecure_decisions_total{action="quarantine",direction="outbound",stage="eom"} 1`,
		`nzsecure_auth_results_total{method="spf",result="fail"} 1`,
		`nzsecure_classification_total{classification="SECRET",direction="outbound"} 1`,
		`nzsecure_breach_attempts_total 2`,
		`nzsecure_transaction_seconds_count{direction="inbound"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
