package heldmail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Result is what a retry found.
type Result string

const (
	// Sent: the certificate problem is gone and the message was handed to
	// the MTA in its final form (signed, encrypted, DKIM-signed); the
	// entry is removed.
	Sent Result = "sent"
	// StillHeld: the problem is still there (Outcome.Code says which now);
	// tried again at the next round, until smime.give_up.
	StillHeld Result = "still_held"
	// Refused: the policy no longer lets the message go at all (rejected,
	// discarded, quarantined): SECURE DELIVERY FAILURE now, and failed/.
	Refused Result = "refused"
)

// Outcome is a retry's result.
type Outcome struct {
	Result Result
	// Code is the Table 3 code it is still held with (StillHeld); ""
	// keeps the stored one.
	Code string
	// Reason says why in words (the decision log, the entry, the notice).
	Reason string
}

// RetryFunc runs a held message through the chain again (serve's real one
// re-runs it through a fresh pipeline.Transaction) and, when it may go,
// hands it to the MTA before returning Sent. An error is the gateway's
// own failure (the chain, the submission): the message stays held.
type RetryFunc func(ctx context.Context, h pipeline.HeldMessage, msg io.Reader) (Outcome, error)

// Action is what the retrier did with one entry (the decision log's
// "action").
type Action string

const (
	ActSent      Action = "held-sent"
	ActStillHeld Action = "held-retry-later"
	ActGaveUp    Action = "held-gave-up"
	ActRefused   Action = "held-refused"
	ActCorrupt   Action = "held-corrupt"
	ActBusy      Action = "held-busy"
	ActDeleted   Action = "held-deleted"
	// ActNoticeFailed: the FAILURE notice could not be submitted; the
	// entry stays and the notice is tried again at the next round.
	ActNoticeFailed Action = "held-notice-failed"
	// ActAdminHeld: the entry is held for an administrator
	// (HeldMessage.AdminHold): the retry never sends it (ErrAdminHold).
	ActAdminHeld Action = "held-for-admin"
	// ActReleased: the administrator released it (`held release`) and
	// every form was carried out; the entry is removed.
	ActReleased Action = "held-released"
	// ActNotReleased: a release that could not carry the message out now
	// (the gateway would tempfail or refuse it, or hold it in the MTA's
	// queue): the entry stays held for the administrator.
	ActNotReleased Action = "held-not-released"
)

// ErrAdminHold: the entry is held for an administrator; only Release
// (`held release`) sends it.
var ErrAdminHold = errors.New("held for the administrator: release it with `nzsecure-milter held release`")

// ErrNotAdminHold: Release of an entry held for a certificate problem
// (the retry sends it once the problem is gone).
var ErrNotAdminHold = errors.New("not held for the administrator (a certificate problem: `held retry` tries it)")

// ErrNotReleased: Release could not carry the message out now.
var ErrNotReleased = errors.New("not released")

// Retrier retries the held mail every Interval and once at start, and
// gives up after GiveUp counted from HeldMessage.Received.
type Retrier struct {
	Store *Store
	Retry RetryFunc
	// Released is the re-run of Release (`held release`): Retry's, with
	// the recipients held again stored as new entries.
	Released RetryFunc
	// Notices submits the SECURE DELIVERY FAILURE notices (synchronously:
	// the entry moves to failed/ only once its notice is with the MTA).
	Notices notify.Submitter
	// Generator builds them (From: postmaster@Domain, R92).
	Generator notify.Generator
	// Link is the R78 link template for the notice ("" none).
	Link     string
	GiveUp   time.Duration
	Interval time.Duration
	// MaxPerRound bounds one round's work (0: 100); the least recently
	// tried go first, so every entry gets its turn.
	MaxPerRound int
	// TryTimeout bounds one retry (0: 5 minutes).
	TryTimeout time.Duration
	Log        *slog.Logger
	// Now and After are the clock (nil: time.Now, time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	wakeOnce sync.Once
	wake     chan struct{}
}

func (r *Retrier) wakeCh() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

// Wake makes Run start a round now rather than at the next Interval (a
// peer certificate just arrived in answer to our request, R44, R51). It
// never blocks; wakes while a round runs give one more round.
func (r *Retrier) Wake() {
	select {
	case r.wakeCh() <- struct{}{}:
	default:
	}
}

func (r *Retrier) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Retrier) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Run retries once now and then every Interval until ctx ends.
func (r *Retrier) Run(ctx context.Context) {
	after := r.After
	if after == nil {
		after = time.After
	}
	iv := r.Interval
	if iv <= 0 {
		iv = 15 * time.Minute
	}
	for {
		r.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-after(iv):
		case <-r.wakeCh():
		}
	}
}

// RoundStats count one round's actions.
type RoundStats map[Action]int

// Round repairs what a crash left (Store.Repair), then retries up to
// MaxPerRound held messages, least recently tried first. It stops when
// ctx ends.
func (r *Retrier) Round(ctx context.Context) RoundStats {
	st := RoundStats{}
	log := r.log()
	if done, err := r.Store.Repair(); err != nil || len(done) > 0 {
		for _, d := range done {
			log.Warn("held-mail store repaired", "held_dir", r.Store.Dir(), "repair", d)
		}
		if err != nil {
			log.Error("held-mail store: repair failed", "held_dir", r.Store.Dir(), "error", err.Error())
		}
	}
	entries, probs, err := r.Store.List()
	if err != nil {
		log.Error("held-mail store: cannot list", "held_dir", r.Store.Dir(), "error", err.Error())
		return st
	}
	for _, p := range probs {
		log.Warn("held-mail store problem", "held_dir", r.Store.Dir(), "held_id", p.ID, "file", p.File, "problem", p.Err)
	}
	// Least recently tried first (never tried counts as oldest), so a
	// round cut short by MaxPerRound does not starve the rest.
	sortByLastTry(entries)
	max := r.MaxPerRound
	if max <= 0 {
		max = 100
	}
	n := 0
	for _, e := range entries {
		if ctx.Err() != nil || n >= max {
			break
		}
		if e.AdminHold != "" {
			// Held for an administrator: only `held release` sends it, and
			// smime.give_up does not apply (the administrator decides).
			st[ActAdminHeld]++
			continue
		}
		n++
		a, _ := r.RetryOne(ctx, e.ID)
		st[a]++
	}
	return st
}

func sortByLastTry(es []Entry) {
	// insertion sort is enough for a bounded store and keeps List's order
	// (oldest received) among equals
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].LastTry.Before(es[j-1].LastTry); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// RetryOne retries one held message now (the loop and `held retry` use
// it) and returns what it did. Every action is one decision-log line.
func (r *Retrier) RetryOne(ctx context.Context, id string) (Action, error) {
	h, err := r.Store.Get(id)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return ActBusy, err
		}
		if errors.Is(err, ErrCorrupt) {
			r.decision(ActCorrupt, Entry{ID: id}, "", err.Error())
		}
		return ActCorrupt, err
	}
	defer h.Close()
	e := h.Entry
	now := r.now()
	if e.AdminHold != "" {
		return ActAdminHeld, fmt.Errorf("%w: %s", ErrAdminHold, id)
	}
	if e.Notified {
		// The notice went before a crash or a failed move: only the move
		// is left.
		return r.moveAfterNotice(h, ActGaveUp, "the SECURE DELIVERY FAILURE notice was sent")
	}
	tctx, cancel := context.WithTimeout(ctx, r.tryTimeout())
	out, rerr := r.safeRetry(tctx, r.Retry, e.HeldMessage, h)
	cancel()
	if errors.Is(rerr, ErrCorrupt) || h.bad != nil {
		// The stored bytes are not the message that was held: never sent
		// (fail safe); the sender is told it was not delivered.
		out, rerr = Outcome{Result: Refused, Reason: "the stored message is damaged: " + errString(h.bad, rerr)}, nil
	}
	if rerr != nil {
		out = Outcome{Result: StillHeld, Reason: "the retry failed: " + rerr.Error()}
	}
	e.Tries++
	e.LastTry = now.UTC()
	if out.Reason != "" {
		e.LastReason = out.Reason
	}
	switch out.Result {
	case Sent:
		if err := r.Store.Remove(e.ID); err != nil {
			// Sent but still listed: the next round would send it again.
			r.decision(ActSent, e, "", "sent, but the entry could not be removed: "+err.Error())
			return ActSent, err
		}
		r.decision(ActSent, e, "", out.Reason)
		return ActSent, nil
	case Refused:
		return r.giveUp(h, e, ActRefused, out.Reason)
	default:
		if out.Code != "" {
			e.Code = out.Code
		}
		if r.GiveUp > 0 && !now.Before(e.Received.Add(r.GiveUp)) {
			return r.giveUp(h, e, ActGaveUp, fmt.Sprintf("still held after smime.give_up (%s): %s", r.GiveUp, e.LastReason))
		}
		if err := r.Store.Update(e); err != nil {
			r.decision(ActStillHeld, e, "", "still held; the entry could not be updated: "+err.Error())
			return ActStillHeld, err
		}
		r.decision(ActStillHeld, e, "", e.LastReason)
		return ActStillHeld, nil
	}
}

// safeRetry runs Retry; a panic in the chain is the gateway's own failure
// (the message stays held), never the end of the daemon the loop runs in.
func (r *Retrier) safeRetry(ctx context.Context, run RetryFunc, h pipeline.HeldMessage, msg io.Reader) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = Outcome{}, fmt.Errorf("%w: %v", ErrRetryPanic, p)
		}
	}()
	return run(ctx, h, msg)
}

// Release sends an entry held for an administrator (`held release`, R62):
// Released re-runs it as Retry does, with the hold released
// (HeldMessage.Released gets AdminHold, which is cleared), and carries
// every form out before it returns Sent (a new hold, for a certificate
// problem or for another administrator rule, is a new entry); the entry
// is then removed. Any other outcome leaves the entry held for the
// administrator with the reason (ErrNotReleased); nothing is given up or
// notified on its own.
func (r *Retrier) Release(ctx context.Context, id string) (Action, error) {
	run := r.Released
	if run == nil {
		return ActNotReleased, fmt.Errorf("%w: no release function", ErrNotReleased)
	}
	h, err := r.Store.Get(id)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return ActBusy, err
		}
		return ActCorrupt, err
	}
	defer h.Close()
	e := h.Entry
	if e.AdminHold == "" {
		return ActNotReleased, fmt.Errorf("%w: %s", ErrNotAdminHold, id)
	}
	hm := e.HeldMessage
	hm.Released = append(append([]string(nil), hm.Released...), hm.AdminHold)
	hm.AdminHold = ""
	tctx, cancel := context.WithTimeout(ctx, r.tryTimeout())
	out, rerr := r.safeRetry(tctx, run, hm, h)
	cancel()
	if h.bad != nil {
		rerr = h.bad // the stored bytes are not the message held: never sent
	}
	e.Tries++
	e.LastTry = r.now().UTC()
	if rerr != nil {
		out = Outcome{Result: StillHeld, Reason: "the release failed: " + rerr.Error()}
	}
	if out.Reason != "" {
		e.LastReason = out.Reason
	}
	if out.Result == Sent {
		if err := r.Store.Remove(e.ID); err != nil {
			r.decision(ActReleased, e, "", "released, but the entry could not be removed: "+err.Error())
			return ActReleased, err
		}
		r.decision(ActReleased, e, "", "released by the administrator: "+out.Reason)
		return ActReleased, nil
	}
	if err := r.Store.Update(e); err != nil {
		r.log().Error("held-mail store: cannot update the entry", "held_id", e.ID, "error", err.Error())
	}
	r.decision(ActNotReleased, e, "", e.LastReason)
	return ActNotReleased, fmt.Errorf("%w: %s", ErrNotReleased, e.LastReason)
}

// ErrRetryPanic: the Retry function panicked.
var ErrRetryPanic = errors.New("the retry panicked")

func errString(errs ...error) string {
	for _, e := range errs {
		if e != nil {
			return e.Error()
		}
	}
	return ""
}

func (r *Retrier) tryTimeout() time.Duration {
	if r.TryTimeout > 0 {
		return r.TryTimeout
	}
	return 5 * time.Minute
}

// giveUp sends SECURE DELIVERY FAILURE (Table 1 sending column, Table 2
// row 1) with the code to the sender and the sender's postmaster, records
// that it went, and moves the message to failed/ for the administrator.
func (r *Retrier) giveUp(h *Held, e Entry, act Action, reason string) (Action, error) {
	e.LastReason = reason
	to, suppressed := r.noticeRecipients(h, e)
	if len(to) > 0 {
		msg, err := r.failureNotice(h, e, to, reason)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err = r.Notices.Submit(ctx, msg.EnvelopeFrom, msg.Rcpts, msg.Data)
			cancel()
		}
		if err != nil && !errors.Is(err, notify.ErrPermanent) {
			// The MTA could not take it now: kept, tried again next round
			// (the retry too: the problem may be gone by then).
			_ = r.Store.Update(e)
			r.decision(ActNoticeFailed, e, "", "SECURE DELIVERY FAILURE notice not submitted: "+err.Error())
			return ActNoticeFailed, err
		}
		if err != nil {
			reason += "; the notice was refused: " + err.Error()
		} else {
			reason += "; SECURE DELIVERY FAILURE sent to " + strings.Join(to, ", ")
		}
	}
	if len(suppressed) > 0 {
		reason += "; no notice to " + strings.Join(suppressed, "; ")
	}
	e.Notified, e.LastReason = true, reason
	if err := r.Store.Update(e); err != nil {
		r.log().Error("held-mail store: cannot record the FAILURE notice", "held_id", e.ID, "error", err.Error())
	}
	h.Entry = e
	return r.moveAfterNotice(h, act, reason)
}

func (r *Retrier) moveAfterNotice(h *Held, act Action, reason string) (Action, error) {
	if err := r.Store.Fail(h.ID, reason); err != nil {
		r.decision(act, h.Entry, "", reason+"; the move to failed/ failed: "+err.Error())
		return act, err
	}
	r.decision(act, h.Entry, FailedDir, reason)
	return act, nil
}

// noticeRecipients are the sender and the sender's postmaster (Table 1),
// without those the loop rules forbid (R93-R95: no notice in answer to the
// null sender, to postmaster or MAILER-DAEMON mail, to auto-submitted mail
// or reports); each one left out is said why.
func (r *Retrier) noticeRecipients(h *Held, e Entry) (to, suppressed []string) {
	hs := r.headers(h)
	froms := policy.HeaderValues(hs, "From")
	if len(froms) == 0 {
		froms = []string{""}
	}
	sender := e.Envelope.From
	var cands []string
	if sender != "" {
		cands = append(cands, sender)
		if _, d := policy.SplitAddress(sender); d != "" {
			cands = append(cands, "postmaster@"+d)
		}
	}
	if len(cands) == 0 {
		return nil, []string{"anyone: " + policy.ReasonNullSender}
	}
next:
	for _, c := range cands {
		for _, f := range froms {
			if ok, why := policy.ShouldNotify(f, sender, policy.NotifyContext{To: c, Inbound: false, Headers: hs}); !ok {
				suppressed = append(suppressed, c+": "+why)
				continue next
			}
		}
		to = append(to, c)
	}
	return to, suppressed
}

// headers reads the stored message's header block (for R77 and the loop
// rules), bounded; the message is rewound after.
func (r *Retrier) headers(h *Held) []policy.Header {
	defer h.Rewind()
	if err := h.Rewind(); err != nil {
		return nil
	}
	hs, err := pipeline.ReadRawHeaders(bufio.NewReader(io.LimitReader(h.f, 1<<20)), 1<<20)
	if err != nil && len(hs) == 0 {
		return nil
	}
	for i := range hs {
		hs[i].Value = strings.TrimLeft(hs[i].Value, " \t")
	}
	return hs
}

func (r *Retrier) failureNotice(h *Held, e Entry, to []string, reason string) (*notify.Message, error) {
	hs := r.headers(h)
	code := e.Code
	if _, ok := notify.Warning(code); !ok {
		code = "201" // a held message always has one; fail safe to the peer's
	}
	return r.Generator.SecureDeliveryFailure(notify.FailureParams{
		Code: code, To: to, Original: notify.OriginalFromHeaders(hs),
		Recipients: e.Envelope.Rcpts, Received: e.Received, Held: r.now().Sub(e.Received),
		Reason: reason, Text: notify.TextParams{Detail: e.Domain, Link: notify.LinkFor(r.Link, code)},
	})
}

// decision writes the decision-log line of one held-mail action, in the
// form serve's decisions have (queue_id, direction, sender, recipients,
// action, reasons).
func (r *Retrier) decision(act Action, e Entry, movedTo, reason string) {
	attrs := []any{
		"held_id", e.ID,
		"queue_id", e.Envelope.QueueID,
		"stage", "held-retry",
		"direction", string(policy.Outbound),
		"sender", e.Envelope.From,
		"recipients", e.Envelope.Rcpts,
		"auth", e.Envelope.AuthUser,
		"action", string(act),
		"domain", e.Domain,
		"warning_code", e.Code,
		"reasons", []string{reason},
		"tries", e.Tries,
		"received", e.Received.UTC().Format(time.RFC3339),
	}
	if movedTo != "" {
		attrs = append(attrs, "moved_to", movedTo)
	}
	if e.AdminHold != "" {
		attrs = append(attrs, "admin_hold", e.AdminHold)
	}
	level := slog.LevelInfo
	if act == ActCorrupt || act == ActNoticeFailed {
		level = slog.LevelError
	}
	r.log().Log(context.Background(), level, "decision", attrs...)
}

// Delete moves a held message to failed/ with the administrator's note
// (`held delete`): locked like a retry, logged like one.
func (r *Retrier) Delete(id, note string) error {
	h, err := r.Store.Get(id)
	if err != nil {
		return err
	}
	defer h.Close()
	reason := "deleted by the administrator"
	if note = strings.TrimSpace(note); note != "" {
		reason += ": " + note
	}
	if err := r.Store.Fail(id, reason); err != nil {
		return err
	}
	r.decision(ActDeleted, h.Entry, FailedDir, reason)
	return nil
}

var _ pipeline.HoldStore = (*Store)(nil)

// RetryHours is the X of SECURE DELIVERY DELAYED's "The system will try
// again in X hours" (Table 2 row 2) for smime.retry_interval: whole hours,
// rounded up, at least 1 (notify.TextParams.RetryHours).
func RetryHours(interval time.Duration) int {
	h := int((interval + time.Hour - 1) / time.Hour)
	return max(h, 1)
}
