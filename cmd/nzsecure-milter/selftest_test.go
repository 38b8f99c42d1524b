package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// serve's scheduled self-test (R21): the key handed to the milter, a first
// run shortly after start, its result in the metrics and the log.
func TestScheduledSelftest(t *testing.T) {
	old := selftestStartDelay
	selftestStartDelay = 10 * time.Millisecond
	defer func() { selftestStartDelay = old }()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String() // nothing listens: every scenario fails
	ln.Close()
	keyFile := filepath.Join(t.TempDir(), "selftest.key")
	p, err := policy.Load("", []string{`domains=["agency.govt.nz"]`, `selftest.smtp="` + closed + `"`, `selftest.key_file="` + keyFile + `"`})
	if err != nil {
		t.Fatal(err)
	}
	var key []byte
	m := metrics.New()
	var logs lockedBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setupSelftest(ctx, p, func(k []byte) { key = k }, func() *policy.Policy { return p }, m, slog.New(slog.NewJSONHandler(&logs, nil)))
	if len(key) != 32 {
		t.Fatalf("the milter got a key of %d bytes", len(key))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "selftest FAILED (R21)") {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled run logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "nzsecure_selftest_") {
			got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if got["nzsecure_selftest_ok"] != 0 || got["nzsecure_selftest_failed_scenarios"] != 4 || got["nzsecure_selftest_last_run_timestamp_seconds"] == 0 {
		t.Errorf("selftest metrics %v, want ok 0, 4 failed, a timestamp", got)
	}

	// No key file can be made: the milter gets none, nothing is scheduled.
	bad, _ := policy.Load("", []string{`selftest.key_file="/nonexistent/dir/key"`})
	var logs2 lockedBuf
	called := false
	setupSelftest(ctx, bad, func([]byte) { called = true }, func() *policy.Policy { return bad }, nil, slog.New(slog.NewJSONHandler(&logs2, nil)))
	if called || !strings.Contains(logs2.String(), "no selftest key") {
		t.Errorf("unusable key file: key set %v, log %q", called, logs2.String())
	}
}
