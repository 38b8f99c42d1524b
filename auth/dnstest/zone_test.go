package dnstest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

var _ spf.Resolver = (*dnstest.Zone)(nil)

func TestZoneResolver(t *testing.T) {
	ctx := context.Background()
	z := dnstest.NewZone().
		TXT("example.com", "v=spf1 ", "-all").
		TXT("Example.COM", "second").
		A("example.com", "192.0.2.1", "192.0.2.2").
		AAAA("example.com", "2001:db8::1").
		MX("example.com", 20, "mx2.example.com").
		MX("example.com", 10, "mx1.example.com").
		CNAME("alias.example.com", "example.com").
		CNAME("loop.example.com", "loop.example.com").
		ReversePTR("192.0.2.1", "host.example.com").
		A("_spf.deep.example.net", "192.0.2.9").
		TXT("slow.example.com", "v=spf1 -all").
		SetFault("slow.example.com", dnstest.Timeout).
		SetFault("broken.example.com", dnstest.ServFail)

	txt, err := z.LookupTXT(ctx, "EXAMPLE.com.")
	if err != nil || len(txt) != 2 || txt[0] != "v=spf1 -all" || txt[1] != "second" {
		t.Errorf("TXT: %q, %v", txt, err)
	}
	ips, err := z.LookupIP(ctx, "ip4", "alias.example.com")
	if err != nil || len(ips) != 2 || !ips[0].Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("A through CNAME: %v, %v", ips, err)
	}
	ips, err = z.LookupIP(ctx, "ip", "example.com")
	if err != nil || len(ips) != 3 {
		t.Errorf("A+AAAA: %v, %v", ips, err)
	}
	mxs, err := z.LookupMX(ctx, "example.com")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.example.com." {
		t.Errorf("MX: %v, %v", mxs, err)
	}
	names, err := z.LookupAddr(ctx, "192.0.2.1")
	if err != nil || len(names) != 1 || names[0] != "host.example.com." {
		t.Errorf("PTR: %v, %v", names, err)
	}
	for _, c := range []struct {
		name    string
		network string
		want    error
	}{
		{"nxdomain.example.com", "ip4", dnserr.ErrNotFound},
		{"alias.example.com", "ip6", nil},
		{"deep.example.net", "ip4", dnserr.ErrNotFound}, // empty non-terminal: NODATA
		{"loop.example.com", "ip4", dnserr.ErrTemporary},
		{"slow.example.com", "ip4", dnserr.ErrTemporary}, // no A: the fault applies
		{"broken.example.com", "ip4", dnserr.ErrTemporary},
	} {
		_, err := z.LookupIP(ctx, c.network, c.name)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s %s: %v, want %v", c.name, c.network, err, c.want)
		}
	}
	// Timeout only hits types without data (the suite's TIMEOUT).
	if txt, err := z.LookupTXT(ctx, "slow.example.com"); err != nil || len(txt) != 1 {
		t.Errorf("TXT of a timing-out name: %q, %v", txt, err)
	}
	if z.Queries() == 0 {
		t.Error("queries not counted")
	}
}

func TestParseZone(t *testing.T) {
	z, err := dnstest.ParseZone(`
$TTL 600
example.org.        IN SOA ns.example.org. host.example.org. 1 3600 600 86400 30
example.org.        IN TXT "v=spf1 ip4:192.0.2.0/24" " -all"
example.org.        IN MX  10 mail.example.org.
mail.example.org.   IN A   192.0.2.25
quote.example.org.  IN TXT "say \"hi\"\\ \233"
$FAULT down.example.org SERVFAIL
`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if txt, err := z.LookupTXT(ctx, "example.org"); err != nil || txt[0] != "v=spf1 ip4:192.0.2.0/24 -all" {
		t.Errorf("TXT: %q, %v", txt, err)
	}
	if txt, err := z.LookupTXT(ctx, "quote.example.org"); err != nil || txt[0] != "say \"hi\"\\ \xe9" {
		t.Errorf("escaped TXT: %q, %v", txt, err)
	}
	if _, err := z.LookupTXT(ctx, "down.example.org"); !errors.Is(err, dnserr.ErrTemporary) {
		t.Errorf("$FAULT: %v", err)
	}
	if _, err := dnstest.ParseZone("$FAULT x.example BOGUS"); err == nil {
		t.Error("bad fault accepted")
	}
	if _, err := dnstest.ParseZone("x.example. IN A not-an-ip"); err == nil {
		t.Error("bad record accepted")
	}
}

func exchange(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func TestServer(t *testing.T) {
	z := dnstest.NewZone().
		TXT("example.com", "v=spf1 -all").
		TXT("big.example.com", string(make([]byte, 600))).
		CNAME("www.example.com", "example.com").
		A("example.com", "192.0.2.1").
		SetFault("slow.example.com", dnstest.Timeout).
		SetFault("broken.example.com", dnstest.ServFail).
		TXT("tc.example.com", "x").
		SetFault("tc.example.com", dnstest.TruncateUDP)
	addr := dnstest.MustStart(t, z)

	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, addr, network, "www.example.com", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 2 {
			t.Errorf("%s: CNAME+A: %v", network, r)
		}
		r = exchange(t, addr, network, "nx.example.com", dns.TypeA)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s: NXDOMAIN: %v", network, r)
		}
		r = exchange(t, addr, network, "example.com", dns.TypeMX)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
			t.Errorf("%s: NODATA: %v", network, r)
		}
		r = exchange(t, addr, network, "broken.example.com", dns.TypeA)
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: SERVFAIL: %v", network, r)
		}
	}
	if r := exchange(t, addr, "udp", "tc.example.com", dns.TypeTXT); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("forced truncation: %v", r)
	}
	if r := exchange(t, addr, "tcp", "tc.example.com", dns.TypeTXT); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("TCP after truncation: %v", r)
	}
	if r := exchange(t, addr, "udp", "big.example.com", dns.TypeTXT); !r.Truncated {
		t.Errorf("600-byte TXT over 512-byte UDP not truncated: %v", r)
	}
	m := new(dns.Msg)
	m.SetQuestion("slow.example.com.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	if _, _, err := c.Exchange(m, addr); err == nil {
		t.Error("timeout fault answered")
	}
}
