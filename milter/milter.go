// Package milter is the glue between the MTA (Postfix or Sendmail, via
// github.com/d--j/go-milter) and the policy engine: it keeps per-connection
// state (every macro the MTA sends, the envelope, headers, the spooled body),
// asks the engine for a verdict at each stage, applies it, and logs one line
// per decision.
package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Macros asked of the MTA at each stage. Postfix sends the TLS macros at HELO
// and, when asked, at MAIL, but not at end of message: they are copied into
// the connection state when seen.
var macroRequests = []struct {
	stage  gomilter.MacroStage
	macros []gomilter.MacroName
}{
	{gomilter.StageConnect, []string{gomilter.MacroMTAFQDN, gomilter.MacroMTAVersion, gomilter.MacroDaemonName, gomilter.MacroDaemonAddr, gomilter.MacroClientAddr, gomilter.MacroClientName, gomilter.MacroClientPTR}},
	{gomilter.StageHelo, tlsMacros},
	{gomilter.StageMail, append([]string{gomilter.MacroQueueId, gomilter.MacroAuthType, gomilter.MacroAuthAuthen, gomilter.MacroAuthAuthor, gomilter.MacroMailAddr}, tlsMacros...)},
	{gomilter.StageRcpt, []string{gomilter.MacroQueueId, gomilter.MacroRcptAddr, gomilter.MacroRcptMailer}},
	{gomilter.StageData, []string{gomilter.MacroQueueId}},
	{gomilter.StageEOH, []string{gomilter.MacroQueueId}},
	{gomilter.StageEOM, []string{gomilter.MacroQueueId}},
}

var tlsMacros = []string{gomilter.MacroTlsVersion, gomilter.MacroCipher, gomilter.MacroCipherBits, gomilter.MacroCertSubject, gomilter.MacroCertIssuer}

// The actions the milter may take: header edits, quarantine and recipient
// removal are required (R60, R110, M-OUT); the others are used when offered.
const (
	requiredActions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptRemoveRcpt
	wantedActions   = requiredActions | gomilter.OptChangeBody | gomilter.OptAddRcpt | gomilter.OptChangeFrom
)

// wantedProtocol: no reply is sent for the stages where the milter never
// refuses (connect, HELO, RCPT, DATA, each header, each body chunk: the size
// cap and spool failures are answered at end of message), and no DATA or unknown
// command events are sent at all. Every round trip saved is throughput kept
// (the benchmark target is 95% of Postfix's own rate). Header values keep
// their leading space, for DKIM and exact header edits.
const wantedProtocol = gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoRcptReply |
	gomilter.OptNoDataReply | gomilter.OptNoHeaderReply | gomilter.OptNoUnknownReply | gomilter.OptNoBodyReply |
	gomilter.OptNoData | gomilter.OptNoUnknown | gomilter.OptHeaderLeadingSpace

// negotiate takes what the MTA offers of wantedProtocol and wantedActions,
// and refuses an MTA that lacks a required action: better no connection
// (the MTA's milter_default_action applies) than a filter that cannot act.
func negotiate(mtaVersion, milterVersion uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	if mtaVersion < 2 {
		return 0, 0, 0, 0, fmt.Errorf("milter protocol version %d is too old", mtaVersion)
	}
	if mtaActions&requiredActions != requiredActions {
		return 0, 0, 0, 0, fmt.Errorf("the MTA does not offer the required actions %s (offered %s)", requiredActions, mtaActions)
	}
	return min(mtaVersion, milterVersion), wantedActions & mtaActions, wantedProtocol & mtaProtocol, offered, nil
}

// Server is the milter daemon: one go-milter server on a policy that can be
// swapped while it runs (SIGHUP).
type Server struct {
	state atomic.Pointer[state]
	log   *slog.Logger
	// Metrics, when set, counts every decision.
	Metrics *metrics.Metrics
	// Notifier, when set, sends the notices verdicts ask for.
	Notifier *Notifier
	srv      *gomilter.Server
	inflight atomic.Int64 // transactions between MAIL FROM and their end
	draining atomic.Bool  // set by Shutdown after sessionGrace: new transactions get 4xx
	// sessionGrace: how long Shutdown lets connected sessions start new
	// transactions (defaultSessionGrace).
	sessionGrace time.Duration
}

// state is what a transaction decides with: the policy and the checker
// (SPF, Sender ID) built from it, swapped together on reload.
type state struct {
	pol     *policy.Policy
	checker policy.Checker
	signers pipeline.Signers
}

// defaultSessionGrace bounds the extra time a restart takes when MTA
// sessions stay connected; Postfix's milter_connect_timeout (30s by default)
// is well above it, so connections waiting in the backlog are not given up.
const defaultSessionGrace = 5 * time.Second

// NewServer makes a milter server deciding by p, running sender checks
// with ck, and logging to log. It fails when a DKIM key cannot be loaded.
func NewServer(p *policy.Policy, ck policy.Checker, log *slog.Logger) (*Server, error) {
	sg, err := pipeline.NewSigners(p)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, sessionGrace: defaultSessionGrace}
	s.state.Store(&state{p, ck, sg})
	opts := []gomilter.Option{
		gomilter.WithMilter(func() gomilter.Milter { return &session{srv: s} }),
		gomilter.WithActions(wantedActions),
		gomilter.WithProtocol(wantedProtocol),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithReadTimeout(10 * time.Minute),
		gomilter.WithWriteTimeout(30 * time.Second),
	}
	for _, r := range macroRequests {
		opts = append(opts, gomilter.WithMacroRequest(r.stage, r.macros))
	}
	s.srv = gomilter.NewServer(opts...)
	return s, nil
}

// Policy returns the policy in force.
func (s *Server) Policy() *policy.Policy { return s.state.Load().pol }

// SetPolicy swaps the policy, its checker and its DKIM keys; transactions
// already past MAIL FROM finish on the ones they started with. When a key
// cannot be loaded nothing changes.
func (s *Server) SetPolicy(p *policy.Policy, ck policy.Checker) error {
	sg, err := pipeline.NewSigners(p)
	if err != nil {
		return err
	}
	s.state.Store(&state{p, ck, sg})
	return nil
}

// Serve accepts MTA connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, gomilter.ErrServerClosed) {
		return nil
	}
	return err
}

// InFlight is the number of transactions between MAIL FROM and their end.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// Shutdown stops accepting connections, lets every transaction in flight
// finish (until ctx ends), then closes the remaining idle MTA connections.
// An MTA whose connection closes between transactions applies its
// milter_default_action (tempfail) to its next one, so nothing is lost.
//
// For the first sessionGrace, MTA connections opened before the shutdown
// may still start transactions, and Shutdown returns as soon as they have
// all ended by themselves: Postfix keeps one milter connection per SMTP
// session, and an SMTP session that had connected just before a restart
// would otherwise be tempfailed at its MAIL FROM. New connections wait
// meanwhile in the listening socket's backlog when it is held by systemd
// (socket activation, issue 16). After the grace, new transactions get 4xx.
func (s *Server) Shutdown(ctx context.Context) error {
	closing, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(closing) }()
	grace := time.NewTimer(s.sessionGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		s.draining.Store(true)
		return err
	case <-grace.C:
	case <-ctx.Done():
	}
	s.draining.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: %d transaction(s) still in flight: %w", s.inflight.Load(), ctx.Err())
			break wait
		case <-tick.C:
		}
	}
	stop() // close idle sessions now
	<-done
	return err
}

// ClassifyOptions is pipeline.ClassifyOptions.
func ClassifyOptions(p *policy.Policy) classify.Options { return pipeline.ClassifyOptions(p) }
