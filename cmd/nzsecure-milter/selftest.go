package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/selftest"
)

func init() {
	register("selftest", "test the running gateway through its MTA (R19-R21)", runSelftest)
}

// runSelftest runs the built-in scenarios through the live MTA (R20: the
// administrator starts a test by hand) and prints a report; it exits 0
// when none failed, 1 when one did, 2 on usage errors.
func runSelftest(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("selftest", "", stderr)
	var pf policyFlags
	pf.add(fs)
	smtpAddr := fs.String("smtp", "", "the MTA's `HOST:PORT` (default: the policy's selftest.smtp)")
	in := fs.String("inbound-source", "", "local `IP` the inbound scenarios connect from (default: selftest.inbound_source, else automatic)")
	out := fs.String("outbound-source", "", "local `IP` the outbound scenario connects from (default: selftest.outbound_source, else automatic)")
	timeout := fs.Duration("timeout", 60*time.Second, "bound on each scenario")
	peers := fs.Bool("peers", false, "also ping each peer gateway's ping address (selftest.peers, else ping@ each notify.agencies domain) and wait for the answers")
	peerWait := fs.Duration("peer-wait", 10*time.Minute, "how long to wait for the peers' answers")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fs.Usage()
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	st := p.Runtime.Selftest
	for _, o := range []struct{ flag, dst *string }{{smtpAddr, &st.SMTP}, {in, &st.InboundSource}, {out, &st.OutboundSource}} {
		if *o.flag != "" {
			*o.dst = *o.flag
		}
	}
	if *peers && len(p.SelftestPeers()) == 0 {
		fmt.Fprintln(stderr, "selftest: --peers: no peer configured (selftest.peers, or notify.agencies)")
		return 2
	}
	key, err := selftest.LoadOrCreateKey(st.KeyFile)
	if err != nil {
		fmt.Fprintf(stderr, "selftest: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := selftest.Config{SMTP: st.SMTP, InboundSource: st.InboundSource, OutboundSource: st.OutboundSource,
		Policy: p, Key: key, Timeout: *timeout}
	rep := selftest.Run(ctx, cfg)
	if *peers {
		rep.Results = append(rep.Results, selftest.PingPeers(ctx, selftest.PeerConfig{Config: cfg,
			Peers: p.SelftestPeers(), AnswersDir: p.PeerAnswersDir(), Wait: *peerWait})...)
	}
	fmt.Fprintf(stdout, "nzsecure-milter selftest through %s (profile %s)\n\n", st.SMTP, p.Profile)
	if err := rep.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "selftest: %v\n", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// selftestStartDelay is how long after start serve runs its first
// self-test (R21: "at system start time"): long enough for the MTA to be
// up; different gateways start at different times, so they do not test
// each other all at once.
var selftestStartDelay = 2 * time.Minute

// setupSelftest gives the milter the token key (without one, every
// scenario message is refused unverified) and, when selftest.interval is
// not 0, runs the self-test after selftestStartDelay and then every
// interval from then until ctx ends (R21), each result logged and in the
// nzsecure_selftest_* metrics.
func setupSelftest(ctx context.Context, p *policy.Policy, setKey func([]byte), current func() *policy.Policy, m *metrics.Metrics, log *slog.Logger) {
	key, err := selftest.LoadOrCreateKey(p.Runtime.Selftest.KeyFile)
	if err != nil {
		log.Warn("no selftest key: scenario messages will be refused unverified and the scheduled self-test is off", "error", err.Error())
		return
	}
	setKey(key)
	interval := p.Runtime.Selftest.Interval
	if interval <= 0 {
		return
	}
	go func() {
		wait := selftestStartDelay
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = interval
			cur := current()
			st := cur.Runtime.Selftest
			rep := selftest.Run(ctx, selftest.Config{SMTP: st.SMTP, InboundSource: st.InboundSource, OutboundSource: st.OutboundSource,
				Policy: cur, Key: key})
			if ctx.Err() != nil {
				return
			}
			m.Selftest(rep.OK(), rep.Failed(), time.Now())
			var lines []string
			for _, r := range rep.Results {
				lines = append(lines, fmt.Sprintf("%s %s: want %s, got %s", r.Scenario, r.Status, r.Want, r.Got))
			}
			if rep.OK() {
				log.Info("selftest passed (R21)", "smtp", st.SMTP, "results", lines, "next_in", interval.String())
			} else {
				log.Error("selftest FAILED (R21)", "smtp", st.SMTP, "failed", rep.Failed(), "results", lines, "next_in", interval.String())
			}
		}
	}()
}
