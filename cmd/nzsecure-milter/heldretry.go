package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// How a held message re-enters the chain (issue 14 point 6; README
// "Held mail"): the stored original, exactly as received, is fed to a
// fresh pipeline.Transaction with the stored connection and envelope (the
// held recipients only), as `check` feeds a file and the milter feeds
// Postfix's callbacks: MAIL FROM, RCPT TO, headers, body, end of message.
// The engine decides again, now; the chain runs (S/MIME sign+encrypt, then
// DKIM); what may go is handed to the MTA by the notice submitter
// (notify.submit: a loopback smtpd without milters, or sendmail), so it is
// not filtered a second time.

// heldStates gives the pipeline.State of the policy in force, built once
// per policy load (the retry runs with the reloaded policy after SIGHUP).
type heldStates struct {
	cur func() *policy.Policy
	mu  sync.Mutex
	p   *policy.Policy
	st  pipeline.State
}

func (h *heldStates) get() (pipeline.State, error) {
	p := h.cur()
	h.mu.Lock()
	defer h.mu.Unlock()
	if p == h.p {
		return h.st, nil
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		return pipeline.State{}, fmt.Errorf("DNS resolver: %w", err)
	}
	// NewState as the milter builds it. It carries no HoldStore: a retry
	// that is still held must not be stored a second time.
	st, err := pipeline.NewState(p, runner)
	if err != nil {
		return pipeline.State{}, err
	}
	// outbound.first_contact: the addresses known when the policy was
	// loaded (serve's state file, read only as `check` reads it), so that
	// a re-run, a release above all, does not take every address as new
	// and hold the message again for a first contact.
	st.Known = checkKnown(p, io.Discard)
	h.p, h.st = p, st
	return st, nil
}

// policySubmitter submits with the policy in force at each call.
type policySubmitter struct{ cur func() *policy.Policy }

func (s policySubmitter) Submit(ctx context.Context, from string, rcpts []string, msg []byte) error {
	sub, err := milter.SubmitterFor(s.cur())
	if err != nil {
		return err
	}
	return sub.Submit(ctx, from, rcpts, msg)
}

// newHeldRetrier is the retrier serve runs and `held retry` uses: the
// same Retry function, the same notices.
func newHeldRetrier(p *policy.Policy, cur func() *policy.Policy, store *heldmail.Store, log *slog.Logger) *heldmail.Retrier {
	states := &heldStates{cur: cur}
	sub := policySubmitter{cur: cur}
	domain := "localhost"
	if len(p.Domains) > 0 {
		domain = p.Domains[0]
	}
	return &heldmail.Retrier{
		Store:     store,
		Retry:     heldRetry(states.get, sub, store, time.Now),
		Released:  heldRelease(states.get, sub, store, time.Now),
		Notices:   sub,
		Generator: notify.Generator{Domain: domain},
		GiveUp:    p.SMIME.GiveUp,
		Interval:  p.SMIME.RetryInterval,
		Log:       log,
	}
}

// openHeldStore opens smime.held_dir with the policy's bounds.
func openHeldStore(p *policy.Policy) (*heldmail.Store, error) {
	return heldmail.Open(p.SMIME.HeldDir, heldmail.Options{MaxCount: p.SMIME.HeldMaxCount, MaxBytes: p.SMIME.HeldMaxSize})
}

// heldRetry is the real heldmail.RetryFunc: re-run, decide, carry out
// the forms. hold receives the recipients of an entry that are still held
// when others of it may now go (a new entry, with the original Received,
// so give-up still counts from when the message came).
func heldRetry(state func() (pipeline.State, error), sub notify.Submitter, hold pipeline.HoldStore, now func() time.Time) heldmail.RetryFunc {
	return heldRerun(state, sub, hold, now, false)
}

// heldRelease is the RetryFunc of `held release` (heldmail.Retrier.Release,
// R62): the same re-run, with h.Released naming the hold the administrator
// released, so the engine does not hold it again for that and applies
// every other rule. It differs from the retry in two ways: recipients held
// again (a certificate problem, 201-212, or another administrator rule)
// go to new entries, with give-up counted from the release, and the
// verdict's notices to our side and the sender about those holds
// (held-mail, SECURE DELIVERY DELAYED, certificate requests) are sent, as
// the milter sends them for a new message.
func heldRelease(state func() (pipeline.State, error), sub notify.Submitter, hold pipeline.HoldStore, now func() time.Time) heldmail.RetryFunc {
	return heldRerun(state, sub, releasedHold{hold, now}, now, true)
}

// releasedHold puts the recipients a release holds again with Received
// now: smime.give_up counts from the release, not from when the message
// first came (the administrator may have taken days).
type releasedHold struct {
	s   pipeline.HoldStore
	now func() time.Time
}

func (r releasedHold) Put(ctx context.Context, h pipeline.HeldMessage, msg io.Reader) (string, error) {
	h.Received = r.now()
	return r.s.Put(ctx, h, msg)
}

func heldRerun(state func() (pipeline.State, error), sub notify.Submitter, hold pipeline.HoldStore, now func() time.Time, release bool) heldmail.RetryFunc {
	return func(ctx context.Context, h pipeline.HeldMessage, msg io.Reader) (heldmail.Outcome, error) {
		st, err := state()
		if err != nil {
			return heldmail.Outcome{}, err
		}
		start := now()
		if !h.Received.IsZero() {
			// R100: the gateway received the message then, not now.
			start = h.Received
		}
		tx, v, err := rerunHeld(st, h, msg, start)
		if tx != nil {
			defer tx.Close()
		}
		if err != nil {
			return heldmail.Outcome{}, err
		}
		// A retry whose discovery replaced an untrusted peer certificate
		// tells the peer's postmaster, as the milter does (Table 1).
		kinds := []policy.NoticeKind{policy.NoticeCertRequest, policy.NoticeCertReplaced}
		if v.Action != policy.Quarantine {
			// A new hold for the administrator in the store; one in the
			// MTA's queue is not made by a re-run (its notice would name
			// a message the MTA does not hold).
			kinds = append(kinds, policy.NoticeHeld)
		}
		if release {
			kinds = append(kinds, policy.NoticeDelayed)
		}
		sendRerunNotices(tx.Policy(), tx.Envelope(), tx.Headers(), v, kinds...)
		forms, out, err := heldRetryForms(tx, v, release)
		if err != nil || out.Result != heldmail.Sent {
			return out, err
		}
		// Every form is handed over before the entry goes (the same
		// CarryOut as the milter's, with no MTA transaction to carry the
		// main form): a form the MTA refuses for good refuses the message
		// (FAILURE notice), one it cannot take now keeps it held. A partial
		// success is sent again at the next try (at least once, never lost).
		done, err := tx.CarryOut(ctx, forms, sub, hold, false)
		if err != nil {
			if errors.Is(err, notify.ErrPermanent) {
				return heldmail.Outcome{Result: heldmail.Refused, Reason: "the MTA refused the message: " + err.Error()}, nil
			}
			return heldmail.Outcome{}, fmt.Errorf("carrying out the forms: %w", err)
		}
		out.Reason = strings.Join(done, "; ") + ": " + out.Reason
		return out, nil
	}
}

// heldRetryForms turns the retry's verdict into the forms to carry out
// (pipeline.Transaction.Forms: signed+encrypted for a peer, plain for the
// internet, held for a certificate problem), or into still held (every
// recipient still held: the verdict's current code, 201, 202, 211 or 212)
// or refused.
//
// A held form for an administrator (the re-run now holds the message for
// R110, unreadable content, a lookalike domain or a first contact, with a
// recipient in S/MIME scope) is carried out as a new entry, never kept as
// a certificate hold; release: recipients held again for a certificate
// problem are carried out as a new entry too (the released one goes).
func heldRetryForms(tx *pipeline.Transaction, v policy.Verdict, release bool) ([]pipeline.Form, heldmail.Outcome, error) {
	why := strings.Join(v.Reasons, "; ")
	if v.Direction != policy.Outbound && (v.Action == policy.Accept || v.Action == policy.Discard) {
		// Only outbound mail is held; judged as inbound now (internal_networks
		// narrowed, no SASL on the stored connection) it would get no S/MIME
		// form and leave in clear to a peer (R62). Kept held; give-up still
		// counts from when it was received.
		return nil, heldmail.Outcome{Result: heldmail.StillHeld, Reason: "the policy in force no longer takes its connection as outbound (internal_networks, SASL): not sent, " +
			"so it cannot leave unsigned or unencrypted (R62)"}, nil
	}
	switch v.Action {
	case policy.Accept, policy.Discard:
		forms, err := tx.Forms(v)
		if err != nil {
			return nil, heldmail.Outcome{}, fmt.Errorf("carrying out the verdict: %w", err)
		}
		var held *pipeline.HeldMessage
		leaves := false
		for _, f := range forms {
			switch {
			case f.Kind == policy.FormHeld && (release || f.Held.AdminHold != ""):
				leaves = true
			case f.Kind == policy.FormHeld && held == nil:
				held = f.Held
			case f.Kind != policy.FormHeld && len(f.Rcpts) > 0:
				leaves = true
			}
		}
		switch {
		case leaves:
			return forms, heldmail.Outcome{Result: heldmail.Sent, Reason: why}, nil
		case held != nil:
			return nil, heldmail.Outcome{Result: heldmail.StillHeld, Code: held.Code, Reason: held.Reason}, nil
		}
		return nil, heldmail.Outcome{Result: heldmail.Refused, Reason: "the policy now takes every held recipient off: " + why}, nil
	case policy.Tempfail:
		return nil, heldmail.Outcome{Result: heldmail.StillHeld, Reason: "the gateway would tempfail it now: " + why}, nil
	case policy.Quarantine:
		// Held for the administrator in the MTA's hold queue now (no
		// recipient in S/MIME scope): the re-run cannot put it there. The
		// retry gives it up to failed/, where the administrator looks; a
		// release leaves it held.
		if release {
			return nil, heldmail.Outcome{Result: heldmail.StillHeld, Reason: "the policy now holds it for the administrator in the MTA's hold queue, which a release cannot do: " + why}, nil
		}
		return nil, heldmail.Outcome{Result: heldmail.Refused, Reason: "the policy now holds it for the administrator: " + why}, nil
	default:
		return nil, heldmail.Outcome{Result: heldmail.Refused, Reason: fmt.Sprintf("the policy now gives %s: %s", v.Action, why)}, nil
	}
}

// rerunHeld feeds the stored message to a fresh transaction with the
// stored connection and envelope, as `check` does from a file, and returns
// the final verdict. The message is read to its end (the store checks its
// digest there: a damaged message is an error, never a verdict).
func rerunHeld(st pipeline.State, h pipeline.HeldMessage, msg io.Reader, now time.Time) (*pipeline.Transaction, policy.Verdict, error) {
	in, headers, tooBig, err := readMessage(msg, st.Policy.Limits.MaxMessageSize)
	if err != nil {
		return nil, policy.Verdict{}, fmt.Errorf("reading the stored message: %w", err)
	}
	env := h.Envelope
	env.Rcpts = nil
	tx, v, err := pipeline.Begin(st, h.Conn, env, now)
	if err != nil {
		return nil, policy.Verdict{}, err
	}
	// The administrator holds it was released from (`held release`): not
	// held again for them (policy.Transaction.Released).
	tx.SetReleased(h.Released)
	if v, _, err = feedMessage(tx, v, h.Envelope.Rcpts, headers, tooBig, in, 0); err != nil {
		return tx, policy.Verdict{}, fmt.Errorf("reading the stored message: %w", err)
	}
	if f := tx.Failure(); f != nil {
		return tx, policy.Verdict{}, f
	}
	return tx, v, nil
}

// heldCertRequests, when set (serve: the milter's notifier; `held
// release`: its own), sends the certificate requests a retry's verdict
// lists (R44, R51: the peer still has no valid certificate; the notifier's
// rate limit allows one per domain per smime.retry_interval), the
// held-mail notice of a new hold for the administrator (R56, R110) and,
// for a release, SECURE DELIVERY DELAYED of a new certificate hold. The
// retry's other notices are the retrier's own (DELAYED once, FAILURE at
// give-up).
var heldCertRequests func(p *policy.Policy, v policy.Verdict, env policy.Envelope, hs []policy.Header)

func sendCertRequests(p *policy.Policy, env policy.Envelope, hs []policy.Header, v policy.Verdict) {
	sendRerunNotices(p, env, hs, v, policy.NoticeCertRequest)
}

// sendRerunNotices hands the notices of v of the given kinds to
// heldCertRequests.
func sendRerunNotices(p *policy.Policy, env policy.Envelope, hs []policy.Header, v policy.Verdict, kinds ...policy.NoticeKind) {
	if heldCertRequests == nil {
		return
	}
	var reqs []policy.Notice
	for _, n := range v.Notices {
		if slices.Contains(kinds, n.Kind) {
			reqs = append(reqs, n)
		}
	}
	if len(reqs) == 0 {
		return
	}
	rv := v
	rv.Notices = reqs
	heldCertRequests(p, rv, env, hs)
}
