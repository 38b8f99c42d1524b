package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/tlspolicy"
)

func init() {
	register("tlspolicy", "serve Postfix smtp_tls_policy_maps (socketmap) from the secure lists and MTA-STS", runTLSPolicy)
}

// errDNSNotFound marks "no such record" answers of systemTXT.
var errDNSNotFound = errors.New("no such record")

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

	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(p.Log.Level)}))
	var current atomic.Pointer[policy.Policy]
	current.Store(p)
	decider := &tlspolicy.Decider{Policy: current.Load, Log: log,
		STS: &tlspolicy.STSCache{LookupTXT: systemTXT(*dnsServer), NotFound: errDNSNotFound}}

	spec := *listen
	if spec == "" {
		spec = p.TLSPolicy.Listen
	}
	ln, err := listenSpec(spec)
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

// systemTXT looks up TXT records through the system resolver, or through
// server when given, telling "no such record" apart as errDNSNotFound.
func systemTXT(server string) tlspolicy.TXTLookup {
	r := net.DefaultResolver
	if server != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, server)
		}}
	}
	return func(ctx context.Context, name string) ([]string, error) {
		txts, err := r.LookupTXT(ctx, name)
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, fmt.Errorf("%s: %w", name, errDNSNotFound)
		}
		return txts, err
	}
}
