package dkim

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

var benchSizes = []struct {
	name string
	size int
}{{"10KB", 10 << 10}, {"1MB", 1 << 20}}

// BenchmarkVerify: verifications per second of one signature on a 10 KB
// and a 1 MB message (key lookups answered from memory).
func BenchmarkVerify(b *testing.B) {
	rsaKey, edKey := testKeys(b)
	zone := publish(b, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	for _, sz := range benchSizes {
		for _, k := range []Key{rsaKey, edKey} {
			msg := testMessage("agency.govt.nz", sz.size)
			values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{k}, SignOptions{})
			if err != nil {
				b.Fatal(err)
			}
			signed := prepend(msg, values...)
			b.Run(sz.name+"/"+k.Algorithm(), func(b *testing.B) {
				b.SetBytes(int64(len(signed)))
				b.ReportAllocs()
				for b.Loop() {
					sigs, err := Verify(context.Background(), strings.NewReader(signed), VerifyOptions{LookupTXT: zone.LookupTXT})
					if err != nil || len(sigs) != 1 || sigs[0].Result != Pass {
						b.Fatalf("%+v %v", sigs, err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// BenchmarkSign: signatures per second on a 10 KB and a 1 MB message,
// RSA-2048, Ed25519, and both (dual signing).
func BenchmarkSign(b *testing.B) {
	rsaKey, edKey := testKeys(b)
	for _, sz := range benchSizes {
		msg := testMessage("agency.govt.nz", sz.size)
		for _, c := range []struct {
			name string
			keys []Key
		}{{"rsa-sha256", []Key{rsaKey}}, {"ed25519-sha256", []Key{edKey}}, {"dual", []Key{rsaKey, edKey}}} {
			s, err := NewSigner("agency.govt.nz", c.keys, SignOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(sz.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Sign(strings.NewReader(msg)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// The rest serves bench/dkim-vs-opendkim.sh and does nothing unless its
// environment variables are set.

// benchDir is where bench/dkim-vs-opendkim.sh keeps its files.
func benchDir(tb testing.TB) string {
	dir := os.Getenv("NZSM_DKIM_BENCH_DIR")
	if dir == "" {
		tb.Skip("NZSM_DKIM_BENCH_DIR not set (used by bench/dkim-vs-opendkim.sh)")
	}
	return dir
}

// TestBenchSetup writes, under $NZSM_DKIM_BENCH_DIR, the messages the
// comparison verifies (10 KB and 1 MB, signed by us with RSA-2048 or
// Ed25519, one signature each), the public keys as an OpenDKIM
// TestPublicKeys file ("keys") and as a zone ("zone"), and resolv.conf
// pointing at $NZSM_DKIM_BENCH_DNS's address.
func TestBenchSetup(t *testing.T) {
	dir := benchDir(t)
	rsaKey, edKey := testKeys(t)
	testPublicKeys(t, dir, "agency.govt.nz", rsaKey, edKey)
	var zone strings.Builder
	for _, k := range []Key{rsaKey, edKey} {
		rec, _ := KeyRecord(k.Signer.Public())
		zone.WriteString(ZoneLine(k.Selector, "agency.govt.nz", rec) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(zone.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sz := range benchSizes {
		msg := testMessage("agency.govt.nz", sz.size)
		for _, k := range []Key{rsaKey, edKey} {
			values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{k}, SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("msg-%s-%s.eml", sz.name, k.Algorithm())
			if err := os.WriteFile(filepath.Join(dir, name), []byte(prepend(msg, values...)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if addr := os.Getenv("NZSM_DKIM_BENCH_DNS"); addr != "" {
		host, _, _ := net.SplitHostPort(addr)
		os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+host+"\noptions timeout:2 attempts:1\n"), 0o644)
	}
}

// BenchmarkVerifyBenchDir verifies $NZSM_DKIM_BENCH_DIR/$NZSM_DKIM_BENCH_MSG
// with the keys of TestBenchSetup (looked up in memory).
func BenchmarkVerifyBenchDir(b *testing.B) {
	dir := benchDir(b)
	zoneText, err := os.ReadFile(filepath.Join(dir, "zone"))
	if err != nil {
		b.Fatal(err)
	}
	zone := dnstest.MustParseZone(string(zoneText))
	names := strings.Fields(os.Getenv("NZSM_DKIM_BENCH_MSG"))
	if len(names) == 0 {
		matches, _ := filepath.Glob(filepath.Join(dir, "msg-*.eml"))
		for _, m := range matches {
			names = append(names, filepath.Base(m))
		}
		sort.Strings(names)
	}
	for _, name := range names {
		msg, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(name, ".eml"), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				sigs, err := Verify(context.Background(), strings.NewReader(string(msg)), VerifyOptions{LookupTXT: zone.LookupTXT})
				if err != nil || len(sigs) != 1 || sigs[0].Result != Pass {
					b.Fatalf("%+v %v", sigs, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// TestBenchServeDNS serves $NZSM_DKIM_BENCH_DIR/zone on
// $NZSM_DKIM_BENCH_DNS (UDP and TCP) for opendkim-testmsg, writes
// "dns.ready" when listening, and stops when "dns.stop" appears or after
// ten minutes.
func TestBenchServeDNS(t *testing.T) {
	dir := benchDir(t)
	addr := os.Getenv("NZSM_DKIM_BENCH_DNS")
	if addr == "" {
		t.Skip("NZSM_DKIM_BENCH_DNS not set")
	}
	zoneText, err := os.ReadFile(filepath.Join(dir, "zone"))
	if err != nil {
		t.Fatal(err)
	}
	zone := dnstest.MustParseZone(string(zoneText))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: zone}, &dns.Server{Listener: l, Handler: zone}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	defer udp.Shutdown()
	defer tcp.Shutdown()
	if err := os.WriteFile(filepath.Join(dir, "dns.ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "dns.stop")); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
