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
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/internal/logbuf"
	"github.com/nzsecure-milter/nzsecure-milter/internal/quickack"
	"github.com/nzsecure-milter/nzsecure-milter/internal/runtimetune"
	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func init() {
	register("serve", "run the milter daemon", runServe)
}

// shutdownGrace bounds how long SIGTERM waits for transactions in flight.
const shutdownGrace = 2 * time.Minute

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "", stderr)
	var pf policyFlags
	pf.add(fs)
	listen := fs.String("listen", "", "socket `SPEC`: inet:HOST:PORT or unix:/PATH (default: the policy's listen.milter)")
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
		fmt.Fprintln(stderr, "serve: the policy is not valid; not starting")
		return 1
	}
	// GOGC, GOMEMLIMIT and GOMAXPROCS for a milter beside its MTA, unless
	// the environment sets them (internal/runtimetune, issue 13 point 7).
	runtimeSettings := runtimetune.Apply()
	// NZSECURE_CPUPROFILE=FILE writes a CPU profile until shutdown, for
	// benchmarks (bench/throughput.sh) and field diagnosis.
	if path := os.Getenv("NZSECURE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(stderr, "serve: cpu profile: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "serve: cpu profile: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(p.Runtime.Log.Level))
	// Log lines leave through one writer goroutine: lines logged during
	// a write(2) go together in the next (issue 13 point 7; one write a
	// message was a system call a message). Close, deferred, writes
	// what is left before serve returns.
	logOut := logbuf.New(stderr)
	defer logOut.Close()
	log := slog.New(jsonlog.New(logOut, &slog.HandlerOptions{Level: level}))
	// Signals are caught from here on, before the socket listens: a
	// SIGHUP (reload) or SIGTERM that comes while serve is still setting up
	// waits for the loop below instead of killing the process with Go's
	// default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	spec := *listen
	if spec == "" {
		spec = p.Runtime.Listen.Milter
	}
	// A socket passed by systemd (nzsecure-milter.socket) wins over the
	// policy's listen.milter: it stays open across restarts.
	ln, spec, err := listenOrActivated(spec)
	if err != nil {
		log.Error("cannot listen", "listen", spec, "error", err.Error())
		return 1
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		log.Error("cannot set up the DNS resolver", "error", err.Error())
		return 1
	}
	pipeline.CRLLog = log.Info
	srv, err := milter.NewServer(p, runner, log)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	if err := srv.EnableNotices(productName, version); err != nil {
		log.Error("cannot set up notices", "error", err.Error())
		return 1
	}
	// Mail held for a certificate problem (issue 14 point 6): the store
	// the outbound S/MIME step puts into, retried every
	// smime.retry_interval and once now, returned after smime.give_up.
	// smime.held_dir, the interval and give_up take effect at a restart.
	if p.SMIME.Mode == policy.SMIMEOn {
		heldStore, err := openHeldStore(p)
		if err != nil {
			log.Error("cannot open the held-mail store", "held_dir", p.SMIME.HeldDir, "error", err.Error())
			return 1
		}
		// The milter puts the held recipients in it (pipeline.CarryOut);
		// the retrier's own state carries none (a retry still held keeps
		// its entry).
		srv.SetHold(heldStore)
		hctx, hstop := context.WithCancel(context.Background())
		defer hstop()
		retrier := newHeldRetrier(p, srv.Policy, heldStore, log)
		// R44, R51: the held retry asks for a missing certificate too, and
		// an answer that brings one retries the held mail at once.
		heldCertRequests = func(p *policy.Policy, v policy.Verdict, env policy.Envelope, hs []policy.Header) {
			srv.Notifier().Send(p, v, env, hs) // a nil notifier sends nothing
		}
		pipeline.PeerLearned = func(domain string) {
			log.Info("peer certificate received by mail; retrying held mail now", "domain", domain)
			retrier.Wake()
		}
		go retrier.Run(hctx)
		log.Info("retrying held mail", "held_dir", p.SMIME.HeldDir, "interval", p.SMIME.RetryInterval.String(), "give_up", p.SMIME.GiveUp.String())
	}
	for _, w := range postfixMappingWarnings(p) {
		log.Warn("postfix address mapping around the milter (R62-R72)", "problem", w)
	}
	var fc fcRunner // issue 17: outbound.first_contact's store
	fc.ensure(p, srv, log)
	defer fc.close(log)
	var crls crlRefresh
	crls.follow(srv.SMIME())
	defer crls.follow(nil)
	if p.Runtime.Listen.Metrics != "" {
		mln, err := listenSpec(p.Runtime.Listen.Metrics)
		if err != nil {
			log.Error("cannot listen for metrics", "listen", p.Runtime.Listen.Metrics, "error", err.Error())
			return 1
		}
		srv.Metrics = metrics.New()
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		go func() {
			if err := srv.Metrics.Serve(ctx, mln); err != nil {
				log.Error("metrics server stopped", "error", err.Error())
			}
		}()
		log.Info("serving metrics", "listen", p.Runtime.Listen.Metrics)
	}

	// Issue 17: the clock (R90, R141), at start and hourly.
	health, stopHealth := context.WithCancel(context.Background())
	defer stopHealth()
	go watchClock(health, srv.Metrics, log)
	setupSelftest(health, p, srv.SetSelftestKey, srv.Policy, srv.Metrics, log) // R19-R21

	served := make(chan error, 1)
	// Quick ACKs on MTA connections: without them Postfix's back-to-back
	// packets wait for our delayed ACK, ~40 ms a message (internal/quickack).
	go func() { served <- srv.Serve(quickack.Listener(ln)) }()
	log.Info("serving", "version", version, "listen", spec, "policy", p.Source, "profile", p.Profile, "summary", p.Summary(), "runtime", runtimeSettings)
	listsCtx, stopLists := context.WithCancel(context.Background())
	defer stopLists()
	// The accredited lists from LDAP (R55, R108, listrefresh.go) and our
	// own certificates' renewal (R51, ownrenew.go) ask for reloads.
	listsChanged := startListRefresher(listsCtx, p, log)
	ownRenewed, renewNow := startOwnRenewal(listsCtx, func() (*policy.Policy, *pipeline.SMIMEEnv) { return srv.Policy(), srv.SMIME() }, srv.Metrics, log)

	// Every reload (SIGHUP, a list refreshed, our certificate renewed)
	// replaces the state: the first-contact store and the CRL refresh
	// follow the new one.
	reloadAll := func() {
		reload(srv, &pf, level, log)
		fc.ensure(srv.Policy(), srv, log)
		crls.follow(srv.SMIME())
	}
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error("milter server stopped", "error", err.Error())
				return 1
			}
			return 0
		case <-listsChanged:
			reloadAll()
		case <-ownRenewed:
			reloadAll()
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reloadAll()
				// Not after the renewal's own reload: a reload that
				// failed would make it fetch and reload again and again.
				renewNow()
				continue
			}
			log.Info("shutting down: finishing transactions in flight", "signal", sig.String(), "in_flight", srv.InFlight())
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			err := srv.Shutdown(ctx)
			if nerr := srv.CloseNotices(ctx); nerr != nil {
				log.Error("notices still queued at shutdown", "error", nerr.Error())
			}
			cancel()
			if err != nil {
				log.Error("shutdown", "error", err.Error())
				return 1
			}
			log.Info("stopped")
			return 0
		}
	}
}

// reload re-reads the policy (SIGHUP). An invalid policy is logged, problem
// by problem, and the running one stays in force.
func reload(srv *milter.Server, pf *policyFlags, level *slog.LevelVar, log *slog.Logger) {
	p, err := policy.Load(pf.path, pf.sets)
	if err != nil {
		var probs policy.Problems
		if errors.As(err, &probs) {
			for _, pr := range probs {
				log.Error("policy problem", "file", pr.File, "line", pr.Line, "key", pr.Key, "problem", pr.Msg)
			}
		}
		log.Error("reload refused: the new policy is not valid; keeping the running policy",
			"policy", pf.path, "problems", len(probs), "running_profile", srv.Policy().Profile)
		return
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		log.Error("reload refused: cannot set up the DNS resolver; keeping the running policy", "error", err.Error())
		return
	}
	// The sockets are bound once; everything else of the runtime settings
	// (log level, resolver, notice submission and rate limit) and the
	// whole rule set take effect now.
	if old := srv.Policy(); old.Runtime.Listen != p.Runtime.Listen {
		log.Warn("listen.milter and listen.metrics take effect at the next restart",
			"running", old.Runtime.Listen.Milter, "new", p.Runtime.Listen.Milter,
			"running_metrics", old.Runtime.Listen.Metrics, "new_metrics", p.Runtime.Listen.Metrics)
	}
	if err := srv.SetPolicy(p, runner); err != nil {
		log.Error("reload refused; keeping the running policy", "error", err.Error())
		return
	}
	level.Set(logLevel(p.Runtime.Log.Level))
	log.Info("policy reloaded", "policy", p.Source, "profile", p.Profile, "summary", p.Summary())
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// listenSpec listens on inet:HOST:PORT or unix:/PATH. A stale unix socket
// left by a previous run is removed first; the new one is made group
// read-writable so the MTA (in the socket's group) can connect.
func listenSpec(spec string) (net.Listener, error) {
	network, addr, err := policy.ParseListenSpec(spec)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", addr); err == nil {
				c.Close()
				return nil, fmt.Errorf("%s is in use by another process", addr)
			}
			_ = os.Remove(addr)
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Chmod(addr, 0o660); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}
