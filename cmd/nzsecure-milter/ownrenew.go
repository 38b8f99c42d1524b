package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// startOwnRenewal keeps our own DCA certificates renewed (R51, "when it
// needs a new valid public key certificate from its CA";
// pipeline.OwnRenewalCheck): at start and every smime.renew_check of the
// policy in force, each of our domains whose newest valid certificate
// expires within smime.renew_before, or that has none valid, is looked up
// in the directories; a renewal one of our keys matches is written to
// smime.own_dir, and the returned channel signals so that serve reloads
// (NewSMIMEEnv loads it, R37 signs with it). current returns the policy
// and S/MIME env in force (nil env: S/MIME off, nothing to do). now asks
// for a check at once (serve calls it after SIGHUP: a policy that turns
// S/MIME on, or names a new directory or key, is checked then, not a
// renew_check later).
func startOwnRenewal(ctx context.Context, current func() (*policy.Policy, *pipeline.SMIMEEnv), m *metrics.Metrics, log *slog.Logger) (changed <-chan struct{}, now func()) {
	ch := make(chan struct{}, 1)
	kick := make(chan struct{}, 1)
	go func() {
		for {
			p, env := current()
			if env != nil {
				if ownRenewalOnce(ctx, p, env, m, log) {
					select {
					case ch <- struct{}{}:
					default: // a reload is already due
					}
				}
			}
			t := time.NewTimer(p.SMIME.RenewCheck)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-kick:
				t.Stop()
			case <-t.C:
			}
		}
	}()
	return ch, func() {
		select {
		case kick <- struct{}{}:
		default: // a check is already asked for
		}
	}
}

// ownRenewalOnce runs one check and logs what it found, domain by domain;
// m (nil: no metrics) gets each domain's valid-until.
func ownRenewalOnce(ctx context.Context, p *policy.Policy, env *pipeline.SMIMEEnv, m *metrics.Metrics, log *slog.Logger) bool {
	out, changed, err := pipeline.OwnRenewalCheck(ctx, p, env, time.Now())
	if err != nil {
		log.Error("own certificate renewal: cannot set up the directories (R51)", "error", err.Error())
		return false
	}
	for _, r := range out {
		until := r.ValidUntil
		if r.Action == pipeline.OwnRenewed && r.NotAfter.After(until) {
			until = r.NotAfter // in use after the reload this asks for
		}
		m.OwnCertificate(r.Domain, until)
		switch r.Action {
		case pipeline.OwnCurrent, pipeline.OwnHave:
			log.Debug("own DCA certificate current", "domain", r.Domain, "valid_until", r.ValidUntil, "renew_before", p.SMIME.RenewBefore.String())
		case pipeline.OwnRenewed:
			log.Info("own DCA certificate renewed from the directory (R51); reloading to sign with it (R37)",
				"domain", r.Domain, "due", r.Due, "fingerprint", r.Fingerprint, "not_after", r.NotAfter, "file", r.File, "problems", r.Problems)
		default:
			log.Warn("own DCA certificate due for renewal and none fetched (R51): put the renewed certificate in smime.identities, or its key in smime.renewal_keys",
				"domain", r.Domain, "due", r.Due, "outcome", r.Action, "valid_until", r.ValidUntil, "problems", r.Problems)
		}
	}
	return changed
}
