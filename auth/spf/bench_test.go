package spf_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

// benchZone is a typical agency record: a chain of three includes (the
// agency's, its mail provider's, the provider's regional block) with a few
// other mechanisms on the way, ending in -all.
func benchZone() *dnstest.Zone {
	return dnstest.NewZone().
		TXT("agency.govt.nz", "v=spf1 mx ip4:203.0.113.0/28 include:_spf.provider.example -all").
		MX("agency.govt.nz", 10, "mx1.agency.govt.nz").
		A("mx1.agency.govt.nz", "203.0.113.25").
		TXT("_spf.provider.example", "v=spf1 ip6:2001:db8:100::/48 include:_netblocks.provider.example ~all").
		TXT("_netblocks.provider.example", "v=spf1 ip4:198.51.100.0/24 include:_netblocks2.provider.example ?all").
		TXT("_netblocks2.provider.example", "v=spf1 ip4:192.0.2.0/24 ip4:100.64.0.0/10 ~all")
}

func benchCheck(b *testing.B, ev *spf.Evaluator) spf.Outcome {
	b.Helper()
	out, err := ev.CheckMailFrom(context.Background(), net.ParseIP("192.0.2.77"), "jo@agency.govt.nz", "mail.provider.example")
	if err != nil || out.Result != spf.Pass {
		b.Fatalf("%+v, %v", out, err)
	}
	return out
}

func benchResolver(b *testing.B, cacheSize int) *dnsresolver.Resolver {
	addr := dnstest.MustStart(b, benchZone())
	r, err := dnsresolver.New(dnsresolver.Config{Servers: []string{addr}, Timeout: time.Second, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkCheckHostWarmCache evaluates the include chain with every
// answer in the dnsresolver cache: 0 network queries per evaluation.
func BenchmarkCheckHostWarmCache(b *testing.B) {
	r := benchResolver(b, 0)
	ev := &spf.Evaluator{Resolver: r}
	out := benchCheck(b, ev) // warm the cache
	before := r.Queries()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCheck(b, ev)
	}
	b.ReportMetric(float64(r.Queries()-before)/float64(b.N), "queries/op")
	b.ReportMetric(float64(out.Lookups), "lookups/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}

// BenchmarkCheckHostNoCache is the same evaluation with the cache off:
// every lookup goes to the loopback server.
func BenchmarkCheckHostNoCache(b *testing.B) {
	r := benchResolver(b, -1)
	ev := &spf.Evaluator{Resolver: r}
	benchCheck(b, ev)
	before := r.Queries()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchCheck(b, ev)
	}
	b.ReportMetric(float64(r.Queries()-before)/float64(b.N), "queries/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}

// BenchmarkCheckHostInMemory measures the evaluator alone, on the
// in-memory zone.
func BenchmarkCheckHostInMemory(b *testing.B) {
	ev := &spf.Evaluator{Resolver: benchZone()}
	b.ReportAllocs()
	for b.Loop() {
		benchCheck(b, ev)
	}
}
