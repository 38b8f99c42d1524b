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
	"slices"
	"sync"
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
	Metrics  *metrics.Metrics
	srv      *gomilter.Server
	inflight atomic.Int64 // transactions between MAIL FROM and their end
	draining atomic.Bool  // set by Shutdown after sessionGrace: new transactions get 4xx
	// sessionGrace: how long Shutdown lets connected sessions start new
	// transactions (defaultSessionGrace).
	sessionGrace time.Duration
	// listeners are Serve's, stopped by Shutdown before go-milter's
	// Shutdown (handoff.go).
	lnMu      sync.Mutex
	listeners []*handoffListener

	mu sync.Mutex // serialises SetPolicy, EnableNotices and CloseNotices
	// notices, when set (EnableNotices), builds the notifier of a policy.
	notices func(*policy.Policy) (*Notifier, error)
	// retiring counts notifiers replaced by a reload that are still
	// draining; CloseNotices waits for them.
	retiring sync.WaitGroup
}

// state is what a transaction decides with, built once per policy load and
// swapped whole on reload: the policy, the checker (SPF, Sender ID), the
// DKIM signers and classifier options (pipeline.State) and the notifier
// that sends its notices with the policy's submission and rate settings.
type state struct {
	pipeline.State
	notifier *Notifier
	// refs counts the transactions using this state, plus one while it is
	// the server's current state; at 0 retire runs (once).
	refs   atomic.Int64
	retire sync.Once
	onIdle func()
}

func newState(ps pipeline.State, n *Notifier) *state {
	if n != nil {
		n.SMIME = ps.SMIME // R62: notices to a peer agency signed and encrypted
	}
	st := &state{State: ps, notifier: n}
	st.refs.Store(1)
	return st
}

// acquire returns the current state, counted as in use until release.
func (s *Server) acquire() *state {
	for {
		st := s.state.Load()
		if st.refs.Add(1) > 1 && s.state.Load() == st {
			return st
		}
		st.release() // swapped meanwhile: take the new one
	}
}

// release ends one use of st; the last use of a replaced state runs its
// onIdle (closing a notifier no longer current).
func (st *state) release() {
	if st.refs.Add(-1) == 0 && st.onIdle != nil {
		st.retire.Do(st.onIdle)
	}
}

// defaultSessionGrace bounds the extra time a restart takes when MTA
// sessions stay connected; Postfix's milter_connect_timeout (30s by default)
// is well above it, so connections waiting in the backlog are not given up.
const defaultSessionGrace = 5 * time.Second

// retireTimeout bounds how long a notifier replaced by a reload may take to
// submit what it still holds.
const retireTimeout = 2 * time.Minute

// NewServer makes a milter server deciding by p, running sender checks
// with ck, and logging to log. It fails when a DKIM key cannot be loaded.
// It sends no notices until EnableNotices.
func NewServer(p *policy.Policy, ck policy.Checker, log *slog.Logger) (*Server, error) {
	ps, err := pipeline.NewState(p, ck)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, sessionGrace: defaultSessionGrace}
	s.state.Store(newState(ps, nil))
	s.srv = gomilter.NewServer(serverOptions(func() gomilter.Milter { return &session{srv: s} })...)
	return s, nil
}

// serverOptions are the go-milter options of a server whose sessions
// newMilter makes: our actions, protocol options, negotiation, timeouts
// and macro requests (also the no-op benchmark's, BenchmarkSessionNoop).
func serverOptions(newMilter func() gomilter.Milter) []gomilter.Option {
	opts := []gomilter.Option{
		gomilter.WithMilter(newMilter),
		gomilter.WithActions(wantedActions),
		gomilter.WithProtocol(wantedProtocol),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithReadTimeout(10 * time.Minute),
		gomilter.WithWriteTimeout(30 * time.Second),
	}
	for _, r := range macroRequests {
		opts = append(opts, gomilter.WithMacroRequest(r.stage, r.macros))
	}
	return opts
}

// Policy returns the policy in force.
func (s *Server) Policy() *policy.Policy { return s.state.Load().Policy }

// SMIME returns the S/MIME env in force (nil when smime.mode is off);
// serve runs its CRL refresh (R39-R40).
func (s *Server) SMIME() *pipeline.SMIMEEnv { return s.state.Load().SMIME }

// Notifier returns the notifier in force (nil: no notices are sent).
func (s *Server) Notifier() *Notifier { return s.state.Load().notifier }

// EnableNotices makes the server send the notices verdicts ask for (R42,
// R56, R73, R92-R99), through a notifier built from the policy in force
// and rebuilt by SetPolicy whenever notify.submit, notify.sendmail or the
// rate limit change.
func (s *Server) EnableNotices(product, version string) error {
	return s.enableNotices(func(p *policy.Policy) (*Notifier, error) {
		return NewNotifier(p, s.log, product, version)
	})
}

func (s *Server) enableNotices(build func(*policy.Policy) (*Notifier, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state.Load()
	n, err := build(cur.Policy)
	if err != nil {
		return err
	}
	s.notices = build
	s.swap(newState(cur.State, n))
	return nil
}

// SetPolicy swaps the policy, its checker, its DKIM keys, its classifier
// options and its notifier; transactions already past MAIL FROM finish on
// the ones they started with. When a key cannot be loaded or the notifier
// cannot be built nothing changes.
func (s *Server) SetPolicy(p *policy.Policy, ck policy.Checker) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := pipeline.NewState(p, ck)
	if err != nil {
		return err
	}
	cur := s.state.Load()
	ps.Known = cur.Known // the first-contact store outlives a reload
	ps.SelftestKey = cur.SelftestKey
	ps.Hold = cur.Hold
	n := cur.notifier
	if s.notices != nil && !sameNotifySettings(cur.Policy, p) {
		if n, err = s.notices(p); err != nil {
			return fmt.Errorf("notices: %w", err)
		}
	}
	s.swap(newState(ps, n))
	return nil
}

// sameNotifySettings: the running notifier can serve b as it is. Keeping
// it keeps the rate limiter's counts (R95) across a reload.
func sameNotifySettings(a, b *policy.Policy) bool {
	return a.Runtime.Submit.Method == b.Runtime.Submit.Method &&
		slices.Equal(a.Runtime.Submit.Sendmail, b.Runtime.Submit.Sendmail) &&
		a.Notify.RateCount == b.Notify.RateCount && a.Notify.RateWindow == b.Notify.RateWindow &&
		a.AuthservID == b.AuthservID
}

// swap makes next the current state; the old one's notifier, when next
// does not use it, is closed once the transactions still using it end.
// Callers hold s.mu.
func (s *Server) swap(next *state) {
	old := s.state.Load()
	if old.notifier != nil && old.notifier != next.notifier {
		n := old.notifier
		s.retiring.Add(1)
		old.onIdle = func() {
			go func() {
				defer s.retiring.Done()
				ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
				defer cancel()
				if err := n.Close(ctx); err != nil {
					s.log.Error("notices of the replaced policy not all sent", "error", err.Error())
				}
			}()
		}
	}
	s.state.Store(next)
	old.release()
}

// SetKnown makes k the first-contact store (outbound.first_contact, issue
// 17) of this and every later policy load.
func (s *Server) SetKnown(k pipeline.KnownStore) { s.keep(func(ps *pipeline.State) { ps.Known = k }) }

// SetHold makes h the store of mail held for a certificate problem
// (issue 14 point 6, package heldmail), for this and every later policy
// load; nil: such mail is tempfailed (the MTA keeps it).
func (s *Server) SetHold(h pipeline.HoldStore) { s.keep(func(ps *pipeline.State) { ps.Hold = h }) }

// SetSelftestKey makes key the one self-test tokens are verified with
// (R19-R21), for this and every later policy load.
func (s *Server) SetSelftestKey(key []byte) {
	s.keep(func(ps *pipeline.State) { ps.SelftestKey = key })
}

// keep sets what the process owns (stores, keys) in the state in force;
// SetPolicy carries these fields over to every later load.
func (s *Server) keep(set func(*pipeline.State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state.Load()
	ps := cur.State
	set(&ps)
	s.swap(newState(ps, cur.notifier))
}

// CloseNotices stops the notifier in force and waits (until ctx ends) for
// it, and every one a reload replaced, to submit what they hold.
func (s *Server) CloseNotices(ctx context.Context) error {
	s.mu.Lock()
	err := s.state.Load().notifier.Close(ctx)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.retiring.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("notices of a replaced policy still queued: %w", ctx.Err())
		}
	}
	return err
}

// Serve accepts MTA connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	hl := newHandoffListener(ln)
	s.lnMu.Lock()
	s.listeners = append(s.listeners, hl)
	s.lnMu.Unlock()
	err := s.srv.Serve(hl)
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
	s.lnMu.Lock()
	listeners := s.listeners
	s.lnMu.Unlock()
	var stopErr error
	for _, hl := range listeners {
		if err := hl.stop(ctx); err != nil && stopErr == nil {
			stopErr = fmt.Errorf("shutdown: connections accepted but not yet served: %w", err)
		}
	}
	closing, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(closing) }()
	grace := time.NewTimer(s.sessionGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		s.draining.Store(true)
		return errors.Join(stopErr, err)
	case <-grace.C:
	case <-ctx.Done():
	}
	s.draining.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	// A transaction ends before its reply is written: the idle sessions
	// are closed once no connection is busy either (handoff.go).
	for s.inflight.Load() > 0 || busyConns(listeners) > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: %d transaction(s) still in flight, %d session(s) busy: %w",
				s.inflight.Load(), busyConns(listeners), ctx.Err())
			break wait
		case <-tick.C:
		}
	}
	stop() // close idle sessions now
	<-done
	return errors.Join(stopErr, err)
}

// busyConns is the number of MTA connections whose session is not waiting
// for the MTA.
func busyConns(listeners []*handoffListener) int64 {
	var n int64
	for _, hl := range listeners {
		n += hl.busy.Load()
	}
	return n
}

// ClassifyOptions is pipeline.ClassifyOptions.
func ClassifyOptions(p *policy.Policy) classify.Options { return pipeline.ClassifyOptions(p) }
