// Command dnsd is a loopback authoritative DNS server for the end-to-end
// tests (tests/e2e/lib.sh, start_dns). It serves the records of one or more
// zone files, in the format of auth/dnstest.ParseZone: RFC 1035 master-file
// text (origin ".") plus lines
//
//	$FAULT <name> TIMEOUT|SERVFAIL|TRUNCATE
//
// over UDP and TCP on the same loopback port:
//
//	dnsd -zone FILE [-zone FILE]... [-listen 127.0.0.1:PORT] [-v]
//
// With port 0 (the default) it picks a port free for both UDP and TCP. Once
// both listeners serve it prints "listening 127.0.0.1:PORT" on stdout; it
// serves until SIGTERM or SIGINT and then exits 0. With -v every query is
// logged on stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

type zoneFiles []string

func (z *zoneFiles) String() string     { return strings.Join(*z, ",") }
func (z *zoneFiles) Set(v string) error { *z = append(*z, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dnsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var zones zoneFiles
	fs.Var(&zones, "zone", "zone `FILE` (repeatable; the records of all files are served together)")
	listen := fs.String("listen", "127.0.0.1:0", "loopback `ADDR:PORT` for UDP and TCP (port 0: pick one)")
	verbose := fs.Bool("v", false, "log every query on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || len(zones) == 0 {
		fmt.Fprintln(stderr, "usage: dnsd -zone FILE [-zone FILE]... [-listen 127.0.0.1:PORT] [-v]")
		return 2
	}
	z, err := loadZones(zones)
	if err != nil {
		fmt.Fprintln(stderr, "dnsd:", err)
		return 1
	}
	pc, ln, err := listenBoth(*listen)
	if err != nil {
		fmt.Fprintln(stderr, "dnsd:", err)
		return 1
	}

	var h dns.Handler = z
	if *verbose {
		h = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			for _, q := range r.Question {
				fmt.Fprintf(stderr, "%s dnsd: %s %s %s from %s\n", time.Now().Format("15:04:05.000"),
					w.LocalAddr().Network(), dns.TypeToString[q.Qtype], q.Name, w.RemoteAddr())
			}
			z.ServeDNS(w, r)
		})
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	done := make(chan error, 2)
	for _, srv := range []*dns.Server{udp, tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { done <- srv.ActivateAndServe() }()
	}
	stop := func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	}
	for i := 0; i < 2; i++ {
		select {
		case <-started:
		case err := <-done:
			stop()
			fmt.Fprintln(stderr, "dnsd: server did not start:", err)
			return 1
		case <-time.After(5 * time.Second):
			stop()
			fmt.Fprintln(stderr, "dnsd: server did not start within 5s")
			return 1
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fmt.Fprintf(stdout, "listening %s\n", pc.LocalAddr())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	select {
	case sig := <-sigs:
		stop()
		fmt.Fprintf(stderr, "dnsd: %s: stopped after %d queries\n", sig, z.Queries())
		return 0
	case err := <-done:
		stop()
		fmt.Fprintln(stderr, "dnsd: server stopped:", err)
		return 1
	}
}

// loadZones parses every file (so that an error names its file), then all
// of them together as one zone. Each file starts afresh at origin "." and
// the default TTL, whatever $ORIGIN or $TTL the file before it set.
func loadZones(files []string) (*dnstest.Zone, error) {
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if _, err := dnstest.ParseZone(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(&all, "$ORIGIN .\n$TTL %d\n%s\n", dnstest.DefaultTTL, b)
	}
	return dnstest.ParseZone(all.String())
}

// listenBoth opens UDP and TCP on the same loopback address. With port 0 it
// retries until a port is free for both.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-listen %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, nil, fmt.Errorf("-listen %q: only loopback addresses are allowed", addr)
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 || try == 20 {
			return nil, nil, errors.Join(fmt.Errorf("no port free for both UDP and TCP on %s", addr), err)
		}
	}
}
