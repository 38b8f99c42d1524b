package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/clockcheck"
)

// Issue 17 point 3: `audit` reports the local host's clock (R90, R141).
func TestRunHostClock(t *testing.T) {
	z, err := dnstest.ParseZone(`good.example. 300 IN TXT "v=spf1 -all"`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		state  clockcheck.State
		status Status
		exit   int
		reason string
	}{
		{"synced", clockcheck.State{Synced: true}, Pass, -1, "synchronised with UTC"},
		{"unsynced", clockcheck.State{Problem: "the kernel reports the clock unsynchronised"}, Fail, 1, "unsynchronised"},
		{"unreadable", clockcheck.State{Err: errors.New("EPERM"), Problem: "the clock state cannot be read"}, Error, 1, "cannot be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := Run(context.Background(), Config{Domains: []string{"good.example"}, Resolver: z,
				Clock: func() clockcheck.State { return c.state }}, &out)
			if err != nil {
				t.Fatal(err)
			}
			last := rep.Domains[len(rep.Domains)-1]
			if last.Kind != KindHost || len(last.Checks) != 1 || last.Checks[0].Check != CheckClock {
				t.Fatalf("last report %+v, want the host's clock row", last)
			}
			if got := last.Checks[0]; got.Status != c.status || !strings.Contains(got.Reason, c.reason) || got.Section != "R90, R141" {
				t.Errorf("clock row %+v, want %s with %q", got, c.status, c.reason)
			}
			if c.exit >= 0 && rep.ExitCode() != c.exit {
				t.Errorf("exit %d, want %d", rep.ExitCode(), c.exit)
			}
			if !strings.Contains(out.String(), "host") || !strings.Contains(out.String(), "clock") {
				t.Errorf("table lacks the host row:\n%s", out.String())
			}
		})
	}
}
