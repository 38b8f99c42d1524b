package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// SIGHUP applies notify.* (issue 13 point 5; it used to wait for a
// restart): reload builds a notifier with the new submission and rate
// settings, and the log level changes; an invalid file changes nothing.
func TestReloadAppliesNotify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.toml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "domains = [\"agency.govt.nz\"]\nauthserv_id = \"mx.agency.govt.nz\"\n"
	write(base)
	pf := &policyFlags{path: path}
	p, err := policy.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := milter.NewServer(p, runner, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnableNotices(productName, version); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })
	level := new(slog.LevelVar)
	before := srv.Notifier()

	write(base + "[notify]\nsubmit = \"smtp:127.0.0.1:10026\"\nrate_count = 2\n[log]\nlevel = \"debug\"\n")
	reload(srv, pf, level, log)
	got := srv.Policy()
	if got.Runtime.Submit.Method != "smtp:127.0.0.1:10026" || got.Notify.RateCount != 2 {
		t.Fatalf("reload did not apply notify.*: submit %q rate_count %d\n%s", got.Runtime.Submit.Method, got.Notify.RateCount, logs.String())
	}
	if srv.Notifier() == before || srv.Notifier() == nil {
		t.Error("reload kept the notifier of the old notify.submit")
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v, want debug", level.Level())
	}
	if strings.Contains(logs.String(), "next restart") {
		t.Errorf("reload says notify.* waits for a restart:\n%s", logs.String())
	}

	// An invalid policy: the running one, and its notifier, stay.
	after := srv.Notifier()
	write(base + "[notify]\nsubmit = \"smtp:192.0.2.1:25\"\n")
	reload(srv, pf, level, log)
	if srv.Policy() != got || srv.Notifier() != after {
		t.Error("an invalid policy replaced the running one or its notifier")
	}
	if !strings.Contains(logs.String(), "reload refused") {
		t.Errorf("refused reload not logged:\n%s", logs.String())
	}
}
