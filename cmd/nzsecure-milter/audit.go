package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nzsecure-milter/nzsecure-milter/audit"
	"github.com/nzsecure-milter/nzsecure-milter/clockcheck"
)

func init() {
	register("audit", "check domains' DNS against the SGE checklist", runAudit)
}

// runAudit checks domains against the agency deployment checklist of spec
// 004 section 10: email domains (section 8) and, with --non-email,
// domains that send no mail (section 9). It exits 0 when every check
// passes or warns, 1 when one fails or cannot be made, 2 on usage errors.
func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit", "[DOMAIN...]", stderr)
	var pf policyFlags
	pf.add(fs)
	dnsServer := fs.String("dns", "", "DNS server `HOST:PORT` (default: the policy's dns.servers, else the system's)")
	var nonEmail, selectors multiFlag
	fs.Var(&nonEmail, "non-email", "audit `DOMAIN` as a non-email domain (spec 004 section 9) (repeatable)")
	fs.Var(&selectors, "selector", "DKIM selector to check: `SEL` for every email domain or DOMAIN:SEL for one (repeatable)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of a table")
	noHost := fs.Bool("no-host", false, "do not check the local host's clock synchronisation (R90, R141)")
	defaultUsage := fs.Usage
	fs.Usage = func() {
		defaultUsage()
		fmt.Fprintln(stderr, "With no DOMAIN and no --non-email, the policy's domains are audited as email domains.")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	// The selectors of our own signing keys (dkim.keys) are checked too.
	for _, k := range p.DKIM.Keys {
		selectors = append(selectors, k.Domain+":"+k.Selector)
	}
	cfg := audit.Config{Domains: pos, NonEmail: nonEmail, Selectors: selectors, JSON: *jsonOut,
		DNSServers: p.Runtime.DNS.Servers, DNSTimeout: p.Runtime.DNS.Timeout}
	if !*noHost {
		// R90, R141: this host's clock (issue 17 point 3).
		cfg.Clock = func() clockcheck.State { return clockcheck.Read(clockcheck.System, 0) }
	}
	if len(pos) == 0 && len(nonEmail) == 0 {
		cfg.Domains = p.Domains
	}
	if *dnsServer != "" {
		cfg.DNSServers = []string{*dnsServer}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := audit.Run(ctx, cfg, stdout)
	if errors.Is(err, audit.ErrUsage) {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		return 1
	}
	return rep.ExitCode()
}
