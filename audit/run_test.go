package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./audit -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// e2eWorld serves the test zone from a real DNS server on 127.0.0.1 (the
// system resolver is never asked) and the MTA-STS policies over HTTPS.
func e2eWorld(t *testing.T) (dnsAddr string, sts *stsServer) {
	z, sts := buildWorld(t)
	return dnstest.MustStart(t, z), sts
}

// TestRunJSON runs the audit as `nzsecure-milter audit --dns ADDR --json
// --selector sel --non-email ...` does (runAudit calls Run).
func TestRunJSON(t *testing.T) {
	addr, sts := e2eWorld(t)
	var out bytes.Buffer
	rep, err := Run(context.Background(), Config{
		Domains:    []string{"Good.Example.", "softfail.example"},
		NonEmail:   []string{"parked.example", "nullmx.example", "parkedmx.example"},
		Selectors:  []string{"sel", "good.example:ed"},
		DNSServers: []string{addr},
		JSON:       true,
		HTTPClient: sts.client,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1 (softfail and an MX on a non-email domain)", rep.ExitCode())
	}
	var got struct {
		Domains []struct {
			Domain string `json:"domain"`
			Kind   string `json:"kind"`
			Checks []struct {
				Check, Status, Reason, Section string
			} `json:"checks"`
		} `json:"domains"`
		Summary map[string]int `json:"summary"`
	}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not the JSON object: %v\n%s", err, out.String())
	}
	if dec.More() {
		t.Error("more than one JSON value printed")
	}
	wantKinds := []string{"good.example/email", "softfail.example/email", "parked.example/non-email", "nullmx.example/non-email", "parkedmx.example/non-email"}
	if len(got.Domains) != len(wantKinds) {
		t.Fatalf("%d domains: %s", len(got.Domains), out.String())
	}
	status := map[string]string{}
	for i, d := range got.Domains {
		if d.Domain+"/"+d.Kind != wantKinds[i] {
			t.Errorf("domain %d = %s/%s, want %s", i, d.Domain, d.Kind, wantKinds[i])
		}
		for _, c := range d.Checks {
			status[d.Domain+" "+c.Check] += c.Status
		}
	}
	for k, want := range map[string]string{
		"good.example spf": "pass", "good.example mta-sts-policy": "pass", "good.example mta-sts-mx": "pass",
		"good.example dkim": "passpass", "good.example tls-rpt": "pass", "good.example dmarc": "pass",
		"softfail.example spf": "fail",
		"parked.example dkim":  "pass", "parked.example mx": "pass", "nullmx.example mx": "pass",
		"parkedmx.example mx": "fail",
	} {
		if status[k] != want {
			t.Errorf("%s: %q, want %q", k, status[k], want)
		}
	}
	want := map[string]int{"pass": 32, "warn": 0, "fail": 2, "error": 0}
	for k, v := range want {
		if got.Summary[k] != v {
			t.Errorf("summary %v, want %v", got.Summary, want)
			break
		}
	}
	golden(t, "run.json.golden", strings.ReplaceAll(out.String(), addr, "DNS-SERVER"))
}

func TestRunTable(t *testing.T) {
	addr, sts := e2eWorld(t)
	var out bytes.Buffer
	rep, err := Run(context.Background(), Config{
		Domains:    []string{"good.example", "quarantine.example", "servfail.example"},
		NonEmail:   []string{"sub.good.example"},
		DNSServers: []string{addr},
		HTTPClient: sts.client,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != 1 || rep.Summary.Error != 1 {
		t.Errorf("exit %d, summary %+v", rep.ExitCode(), rep.Summary)
	}
	if !strings.Contains(out.String(), "NOT compliant") {
		t.Errorf("no verdict line:\n%s", out.String())
	}
	// The DNS server's port changes from run to run.
	golden(t, "run.table.golden", strings.ReplaceAll(out.String(), addr, "DNS-SERVER"))
}

func TestRunUsage(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no domain":       {},
		"bad domain":      {Domains: []string{"a b.example"}},
		"bad non-email":   {NonEmail: []string{"x..example"}},
		"both kinds":      {Domains: []string{"x.example"}, NonEmail: []string{"X.example."}},
		"bad selector":    {Domains: []string{"x.example"}, Selectors: []string{"a b"}},
		"bad sel domain":  {Domains: []string{"x.example"}, Selectors: []string{"x y:sel"}},
		"empty selector":  {Domains: []string{"x.example"}, Selectors: []string{"x.example:"}},
		"empty sel label": {Domains: []string{"x.example"}, Selectors: []string{"a..b"}},
	} {
		var out bytes.Buffer
		// Refused before any resolver exists: nothing is looked up.
		if _, err := Run(context.Background(), cfg, &out); !errors.Is(err, ErrUsage) {
			t.Errorf("%s: %v, want ErrUsage", name, err)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q", name, out.String())
		}
	}
}

// TestHTTPClientResolvesThroughDNS: the default policy client dials the
// address the audit's DNS gives for mta-sts.DOMAIN, not the system's.
func TestHTTPClientResolvesThroughDNS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	z := dnstest.NewZone().A("mta-sts.dial.example", "127.0.0.1").SetFault("mta-sts.broken.example", dnstest.ServFail)
	r, err := dnsresolver.New(dnsresolver.Config{Servers: []string{dnstest.MustStart(t, z)}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tr := httpClient(r).Transport.(*http.Transport)
	conn, err := tr.DialContext(context.Background(), "tcp", "mta-sts.dial.example:"+port)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	<-accepted
	if _, err := tr.DialContext(context.Background(), "tcp", "mta-sts.broken.example:"+port); !errors.Is(err, dnserr.ErrTemporary) {
		t.Errorf("SERVFAIL: %v", err)
	}
	if _, err := tr.DialContext(context.Background(), "tcp", "mta-sts.none.example:"+port); !errors.Is(err, dnserr.ErrNotFound) {
		t.Errorf("NXDOMAIN: %v", err)
	}

	// Through the audit: a policy host that cannot be resolved is an
	// error (SERVFAIL) or a failure (no such host).
	z.TXT("_mta-sts.broken.example", "v=STSv1; id=1").TXT("_mta-sts.none.example", "v=STSv1; id=1")
	a := &Auditor{Resolver: r, HTTP: httpClient(r)}
	for d, want := range map[string]Status{"broken.example": Error, "none.example": Fail} {
		got := a.mtaSTS(context.Background(), d)
		if len(got) != 2 || got[1].Check != CheckMTASTSPolicy || got[1].Status != want {
			t.Errorf("%s: %+v, want policy %s", d, got, want)
		}
	}
}
