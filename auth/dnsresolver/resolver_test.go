package dnsresolver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

var _ spf.Resolver = (*dnsresolver.Resolver)(nil)

// clock is an injectable clock for cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newResolver(t *testing.T, z *dnstest.Zone, cfg dnsresolver.Config) *dnsresolver.Resolver {
	t.Helper()
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{dnstest.MustStart(t, z)}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	r, err := dnsresolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLookups(t *testing.T) {
	z := dnstest.NewZone().
		TXT("example.com", "v=spf1 ip4:192.0.2.0/24", " -all").
		TXT("example.com", "other").
		TXT("odd.example.com", "quote\" backslash\\ byte\xef\xbb\xbf ctl\x01").
		A("example.com", "192.0.2.1").
		AAAA("example.com", "2001:db8::1").
		MX("example.com", 10, "mx.example.com").
		CNAME("www.example.com", "example.com").
		ReversePTR("192.0.2.1", "host.example.com").
		ReversePTR("2001:db8::1", "host6.example.com").
		A("sp ace%.example.com", "192.0.2.3")
	r := newResolver(t, z, dnsresolver.Config{})
	ctx := context.Background()

	txt, err := r.LookupTXT(ctx, "example.com")
	if err != nil || len(txt) != 2 || txt[0] != "v=spf1 ip4:192.0.2.0/24 -all" || txt[1] != "other" {
		t.Errorf("TXT: %q, %v", txt, err)
	}
	txt, err = r.LookupTXT(ctx, "odd.example.com")
	if err != nil || len(txt) != 1 || txt[0] != "quote\" backslash\\ byte\xef\xbb\xbf ctl\x01" {
		t.Errorf("raw TXT bytes: %q, %v", txt, err)
	}
	ips, err := r.LookupIP(ctx, "ip4", "www.example.com")
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("A via CNAME: %v, %v", ips, err)
	}
	ips, err = r.LookupIP(ctx, "ip", "example.com")
	if err != nil || len(ips) != 2 {
		t.Errorf("A+AAAA: %v, %v", ips, err)
	}
	mxs, err := r.LookupMX(ctx, "example.com")
	if err != nil || len(mxs) != 1 || mxs[0].Host != "mx.example.com." || mxs[0].Pref != 10 {
		t.Errorf("MX: %v, %v", mxs, err)
	}
	for ip, want := range map[string]string{"192.0.2.1": "host.example.com.", "2001:db8::1": "host6.example.com."} {
		names, err := r.LookupAddr(ctx, ip)
		if err != nil || len(names) != 1 || names[0] != want {
			t.Errorf("PTR %s: %v, %v", ip, names, err)
		}
	}
	// SPF macros can produce names with spaces and "%" (RFC 7208 section
	// 7.3); they are escaped on the wire.
	if ips, err := r.LookupIP(ctx, "ip4", "sp ace%.example.com"); err != nil || len(ips) != 1 {
		t.Errorf("odd name: %v, %v", ips, err)
	}
	ans, err := r.Query(ctx, "example.com", dns.TypeA)
	if err != nil || len(ans.Records) != 1 || ans.Authenticated {
		t.Errorf("Query: %+v, %v", ans, err)
	}
}

func TestErrorClasses(t *testing.T) {
	z := dnstest.NewZone().
		A("example.com", "192.0.2.1").
		A("_spf.sub.example.com", "192.0.2.2").
		SetFault("broken.example.com", dnstest.ServFail).
		SetFault("slow.example.com", dnstest.Timeout)
	r := newResolver(t, z, dnsresolver.Config{Timeout: time.Second, Attempts: 1})
	ctx := context.Background()
	for _, c := range []struct {
		name, what string
		qtype      uint16
		want       error
	}{
		{"nx.example.com", "NXDOMAIN", dns.TypeA, dnsresolver.ErrNotFound},
		{"example.com", "NODATA", dns.TypeTXT, dnsresolver.ErrNotFound},
		{"sub.example.com", "NODATA (empty non-terminal)", dns.TypeA, dnsresolver.ErrNotFound},
		{"broken.example.com", "SERVFAIL", dns.TypeA, dnsresolver.ErrTemporary},
		{"slow.example.com", "timeout", dns.TypeA, dnsresolver.ErrTemporary},
		{strings.Repeat("a", 64) + ".example.com", "label over 63 octets", dns.TypeA, dnsresolver.ErrNotFound},
	} {
		start := time.Now()
		_, err := r.Query(ctx, c.name, c.qtype)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("%s took %v", c.what, time.Since(start))
		}
	}
	// Temporary failures are not cached.
	before := r.Queries()
	if _, err := r.Query(ctx, "broken.example.com", dns.TypeA); !errors.Is(err, dnsresolver.ErrTemporary) {
		t.Errorf("SERVFAIL again: %v", err)
	}
	if r.Queries() == before {
		t.Error("SERVFAIL answer was cached")
	}
	// A cancelled context is a temporary failure.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Query(cctx, "example.com", dns.TypeAAAA); !errors.Is(err, dnsresolver.ErrTemporary) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestCacheHonoursTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1700000000, 0)}
	z := dnstest.NewZone().SetTTL(60).TXT("example.com", "v=spf1 -all").
		SetTTL(300).A("example.com", "192.0.2.1").
		SetNegativeTTL(30)
	r := newResolver(t, z, dnsresolver.Config{Now: clk.Now})
	ctx := context.Background()
	lookup := func(what string, wantNetwork bool, f func() error) {
		t.Helper()
		before := r.Queries()
		if err := f(); err != nil && !errors.Is(err, dnsresolver.ErrNotFound) {
			t.Fatalf("%s: %v", what, err)
		}
		if sent := r.Queries() != before; sent != wantNetwork {
			t.Errorf("%s: network query sent = %v, want %v", what, sent, wantNetwork)
		}
	}
	txt := func() error { _, err := r.LookupTXT(ctx, "example.com"); return err }
	nx := func() error { _, err := r.LookupTXT(ctx, "nx.example.com"); return err }
	nodata := func() error { _, err := r.LookupMX(ctx, "example.com"); return err }

	lookup("TXT first", true, txt)
	lookup("TXT cached", false, txt)
	lookup("NXDOMAIN first", true, nx)
	lookup("NXDOMAIN cached", false, nx)
	lookup("NODATA first", true, nodata)
	lookup("NODATA cached", false, nodata)
	clk.Advance(29 * time.Second)
	lookup("TXT at 29s", false, txt)
	lookup("NXDOMAIN at 29s", false, nx)
	clk.Advance(2 * time.Second)
	lookup("NXDOMAIN after the SOA minimum", true, nx)
	lookup("NODATA after the SOA minimum", true, nodata)
	lookup("TXT at 31s", false, txt)
	clk.Advance(30 * time.Second)
	lookup("TXT after its TTL", true, txt)
	if s := r.Stats(); s.CacheHits == 0 || s.CacheMisses == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNegativeTTLBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1700000000, 0)}
	z := dnstest.NewZone().SetNegativeTTL(86400)
	r := newResolver(t, z, dnsresolver.Config{Now: clk.Now, MaxNegativeTTL: 10 * time.Second, MaxTTL: time.Minute})
	ctx := context.Background()
	r.LookupTXT(ctx, "nx.example.com")
	before := r.Queries()
	clk.Advance(9 * time.Second)
	r.LookupTXT(ctx, "nx.example.com")
	if r.Queries() != before {
		t.Error("negative answer not cached")
	}
	clk.Advance(2 * time.Second)
	r.LookupTXT(ctx, "nx.example.com")
	if r.Queries() == before {
		t.Error("negative answer cached beyond MaxNegativeTTL")
	}
}

func TestCacheBounded(t *testing.T) {
	z := dnstest.NewZone().A("a.example.com", "192.0.2.1").A("b.example.com", "192.0.2.2").A("c.example.com", "192.0.2.3")
	r := newResolver(t, z, dnsresolver.Config{CacheSize: 2})
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := r.LookupIP(ctx, "ip4", n+".example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.CacheLen(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	before := r.Queries()
	r.LookupIP(ctx, "ip4", "c.example.com")
	if r.Queries() != before {
		t.Error("most recent entry evicted")
	}
	r.LookupIP(ctx, "ip4", "a.example.com")
	if r.Queries() == before {
		t.Error("least recent entry not evicted")
	}
	nc := newResolver(t, z, dnsresolver.Config{CacheSize: -1})
	nc.LookupIP(ctx, "ip4", "a.example.com")
	nc.LookupIP(ctx, "ip4", "a.example.com")
	if nc.Queries() != 2 || nc.CacheLen() != 0 {
		t.Errorf("disabled cache: %d queries", nc.Queries())
	}
}

func TestTCPFallback(t *testing.T) {
	big := strings.Repeat("x", 2000) // more than the 1232-byte EDNS0 payload
	z := dnstest.NewZone().
		TXT("tc.example.com", "v=spf1 -all").
		SetFault("tc.example.com", dnstest.TruncateUDP).
		TXT("big.example.com", big)
	r := newResolver(t, z, dnsresolver.Config{})
	ctx := context.Background()
	txt, err := r.LookupTXT(ctx, "tc.example.com")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("TC bit: %q, %v", txt, err)
	}
	if q := r.Queries(); q != 2 {
		t.Errorf("%d messages sent, want 2 (UDP then TCP)", q)
	}
	txt, err = r.LookupTXT(ctx, "big.example.com")
	if err != nil || len(txt) != 1 || txt[0] != big {
		t.Fatalf("large answer: %d strings, %v", len(txt), err)
	}
	if q := r.Queries(); q != 4 {
		t.Errorf("%d messages sent, want 4", q)
	}
}

func TestServerFailover(t *testing.T) {
	// A UDP socket that never answers stands for a dead server.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	z := dnstest.NewZone().A("example.com", "192.0.2.1")
	good := dnstest.MustStart(t, z)
	r := newResolver(t, z, dnsresolver.Config{
		Servers:  []string{dead.LocalAddr().String(), good},
		Timeout:  500 * time.Millisecond,
		Attempts: 1,
	})
	if ips, err := r.LookupIP(context.Background(), "ip4", "example.com"); err != nil || len(ips) != 1 {
		t.Fatalf("failover: %v, %v", ips, err)
	}
	// A SERVFAIL from the first server also moves on to the next.
	bad := dnstest.MustStart(t, dnstest.NewZone().SetFault("example.com", dnstest.ServFail))
	r = newResolver(t, z, dnsresolver.Config{Servers: []string{bad, good}})
	if ips, err := r.LookupIP(context.Background(), "ip4", "example.com"); err != nil || len(ips) != 1 {
		t.Fatalf("SERVFAIL failover: %v, %v", ips, err)
	}
}

func TestResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := dnsresolver.New(dnsresolver.Config{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Servers(), " "); got != "192.0.2.53:53 [2001:db8::53]:53" {
		t.Errorf("servers %q", got)
	}
	if _, err := dnsresolver.New(dnsresolver.Config{ResolvConf: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing resolv.conf accepted")
	}
}

func TestConcurrent(t *testing.T) {
	z := dnstest.NewZone().TXT("example.com", "v=spf1 -all")
	r := newResolver(t, z, dnsresolver.Config{})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := r.LookupTXT(context.Background(), "example.com"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
