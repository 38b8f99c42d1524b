package spf_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

func TestOutcome(t *testing.T) {
	z := dnstest.NewZone().
		TXT("agency.govt.nz", "v=spf1 include:_spf.agency.govt.nz -all exp=why.agency.govt.nz").
		TXT("_spf.agency.govt.nz", "v=spf1 ip4:192.0.2.0/24 ?all").
		TXT("why.agency.govt.nz", "%{i} may not send for %{d} (%{s}, helo %{h}, receiver %{r})").
		TXT("mail.agency.govt.nz", "v=spf1 a -all").
		A("mail.agency.govt.nz", "192.0.2.25").
		TXT("slow.example", "v=spf1 a:dead.example -all").
		SetFault("dead.example", dnstest.ServFail).
		TXT("loop.example", "v=spf1 include:loop.example -all").
		TXT("voids.example", "v=spf1 a:n1.example a:n2.example a:n3.example -all")
	ev := &spf.Evaluator{Resolver: z, Receiver: "mx.example.org"}
	ctx := context.Background()

	out, err := ev.CheckMailFrom(ctx, net.ParseIP("192.0.2.7"), "jo@agency.govt.nz", "mail.agency.govt.nz")
	if err != nil || out.Result != spf.Pass || out.Mechanism != "include:_spf.agency.govt.nz" ||
		out.Record != "v=spf1 include:_spf.agency.govt.nz -all exp=why.agency.govt.nz" ||
		out.RecordType != spf.SPF1 || out.AllQualifier != spf.QualifierFail || out.Explanation != "" ||
		out.Identity != "jo@agency.govt.nz" || out.Domain != "agency.govt.nz" || out.Scope != spf.ScopeMFrom ||
		out.Lookups != 2 || out.Terms != 1 {
		t.Errorf("pass: %+v, %v", out, err)
	}

	out, err = ev.CheckMailFrom(ctx, net.ParseIP("198.51.100.1"), "jo@agency.govt.nz", "bad.example")
	want := "198.51.100.1 may not send for agency.govt.nz (jo@agency.govt.nz, helo bad.example, receiver mx.example.org)"
	if err != nil || out.Result != spf.Fail || out.Mechanism != "-all" || out.Explanation != want {
		t.Errorf("fail: %+v, %v", out, err)
	}

	// A null MAIL FROM is checked as postmaster@HELO (RFC 7208 section 2.4).
	out, err = ev.CheckMailFrom(ctx, net.ParseIP("192.0.2.25"), "", "mail.agency.govt.nz")
	if err != nil || out.Result != spf.Pass || out.Identity != "postmaster@mail.agency.govt.nz" {
		t.Errorf("null sender: %+v, %v", out, err)
	}
	out, err = ev.CheckHELO(ctx, net.ParseIP("192.0.2.26"), "mail.agency.govt.nz")
	if err != nil || out.Result != spf.Fail || out.Scope != spf.ScopeHELO {
		t.Errorf("HELO: %+v, %v", out, err)
	}
	out, _ = ev.CheckHELO(ctx, net.ParseIP("192.0.2.26"), "[192.0.2.26]")
	if out.Result != spf.None || !errors.Is(out.Err, spf.ErrInvalidDomain) {
		t.Errorf("HELO literal: %+v", out)
	}

	for _, c := range []struct {
		sender string
		result spf.Result
		err    error
	}{
		{"a@slow.example", spf.TempError, spf.ErrTemporary},
		{"a@loop.example", spf.PermError, spf.ErrTooManyLookups},
		{"a@voids.example", spf.PermError, spf.ErrTooManyVoidLookups},
	} {
		out, err := ev.CheckMailFrom(ctx, net.ParseIP("192.0.2.1"), c.sender, "x.example")
		if out.Result != c.result || !errors.Is(err, c.err) || !errors.Is(out.Err, c.err) {
			t.Errorf("%s: %s, %v; want %s, %v", c.sender, out.Result, err, c.result, c.err)
		}
	}

	if out, err := ev.CheckMailFrom(ctx, nil, "jo@agency.govt.nz", "x"); out.Result != spf.PermError || !errors.Is(err, spf.ErrInvalidIP) {
		t.Errorf("nil IP: %+v, %v", out, err)
	}
	out, err = ev.CheckHost(ctx, net.ParseIP("192.0.2.25"), "mail.agency.govt.nz", "@mail.agency.govt.nz", "h")
	if err != nil || out.Result != spf.Pass || out.Identity != "postmaster@mail.agency.govt.nz" {
		t.Errorf("CheckHost: %+v, %v", out, err)
	}
}

// blockingResolver never answers before the context ends.
type blockingResolver struct{}

func (blockingResolver) LookupTXT(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", spf.ErrTemporary, ctx.Err())
}
func (blockingResolver) LookupIP(ctx context.Context, _, _ string) ([]net.IP, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", spf.ErrTemporary, ctx.Err())
}
func (blockingResolver) LookupMX(ctx context.Context, _ string) ([]*net.MX, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", spf.ErrTemporary, ctx.Err())
}
func (blockingResolver) LookupAddr(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %v", spf.ErrTemporary, ctx.Err())
}

// TestTimeout: RFC 7208 section 4.6.4 bounds the evaluation time; running
// out of it gives temperror.
func TestTimeout(t *testing.T) {
	ev := &spf.Evaluator{Resolver: blockingResolver{}, Timeout: 50 * time.Millisecond}
	start := time.Now()
	out, err := ev.CheckMailFrom(context.Background(), net.ParseIP("192.0.2.1"), "a@example.com", "x")
	if out.Result != spf.TempError || !errors.Is(err, spf.ErrTemporary) {
		t.Errorf("%+v, %v", out, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
