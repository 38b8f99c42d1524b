package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/tlspolicy"
)

func init() {
	register("tlspolicy", "serve Postfix smtp_tls_policy_maps (socketmap) from the secure lists and MTA-STS", runTLSPolicy)
}

func runTLSPolicy(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tlspolicy", "", stderr)
	var pf policyFlags
	pf.add(fs)
	listen := fs.String("listen", "", "socket `SPEC`: inet:HOST:PORT or unix:/PATH (default: the policy's tlspolicy.listen)")
	format := fs.String("format", "socketmap", "`socketmap` (serve) or postmap (print a static TLS policy table and exit)")
	dnsServer := fs.String("dns", "", "DNS server `HOST:PORT` for MTA-STS TXT lookups (default: the system's)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || (*format != "socketmap" && *format != "postmap") {
		fs.Usage()
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	if *format == "postmap" {
		if err := tlspolicy.WritePostmap(stdout, p); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}

	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(p.Runtime.Log.Level)}))
	var current atomic.Pointer[policy.Policy]
	current.Store(p)
	servers := p.Runtime.DNS.Servers
	if *dnsServer != "" {
		servers = []string{*dnsServer}
	}
	// One caching resolver (negative answers too) for the _mta-sts TXT
	// records and the policy hosts' addresses.
	res, err := dnsresolver.New(dnsresolver.Config{Servers: servers, Timeout: p.Runtime.DNS.Timeout})
	if err != nil {
		log.Error("DNS resolver", "error", err.Error())
		return 1
	}
	decider := &tlspolicy.Decider{Policy: current.Load, Log: log,
		STS: &tlspolicy.STSCache{LookupTXT: res.LookupTXT, NotFound: dnserr.ErrNotFound, HTTP: stsClient(res)}}

	spec := *listen
	if spec == "" {
		spec = p.Runtime.TLSPolicyListen
	}
	ln, spec, err := listenOrActivated(spec)
	if err != nil {
		log.Error("cannot listen", "listen", spec, "error", err.Error())
		return 1
	}
	srv := &tlspolicy.Server{Lookup: decider, Log: log}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("tlspolicy serving", "version", version, "listen", spec, "policy", p.Source)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error("tlspolicy server stopped", "error", err.Error())
				return 1
			}
			return 0
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				np, err := policy.Load(pf.path, pf.sets)
				if err != nil {
					log.Error("reload refused: the new policy is not valid; keeping the running policy", "error", err.Error())
					continue
				}
				current.Store(np)
				log.Info("policy reloaded", "policy", np.Source)
				continue
			}
			srv.Close()
			<-served
			log.Info("stopped")
			return 0
		}
	}
}

// stsClient fetches MTA-STS policies over HTTPS (certificates verified by
// the system roots), resolving the policy host through our resolver.
func stsClient(res *dnsresolver.Resolver) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := res.LookupIP(ctx, "ip4", host)
			if len(ips) == 0 {
				ips, err = res.LookupIP(ctx, "ip6", host)
			}
			if len(ips) == 0 {
				return nil, fmt.Errorf("resolving %s: %w", host, err)
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
		},
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}
