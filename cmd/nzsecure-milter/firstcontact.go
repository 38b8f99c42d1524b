package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/firstcontact"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func init() {
	register("firstcontact", "list or approve first-contact addresses (outbound.first_contact)", runFirstContact)
}

// runFirstContact: `firstcontact approve ADDRESS...` makes addresses
// known (the held-mail notice names it, issue 17); `firstcontact list`
// prints the known ones, least recently used first.
func runFirstContact(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("firstcontact", "approve ADDRESS... | list", stderr)
	var pf policyFlags
	pf.add(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 || (pos[0] == "approve" && len(pos) < 2) || (pos[0] == "list" && len(pos) != 1) || (pos[0] != "approve" && pos[0] != "list") {
		fs.Usage()
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	path, max := p.Outbound.FirstContactState, p.Outbound.FirstContactMax
	if pos[0] == "list" {
		s, err := firstcontact.Open(path, max)
		if err != nil {
			fmt.Fprintf(stderr, "firstcontact: %v\n", err)
			if !errors.Is(err, firstcontact.ErrCorrupt) {
				return 1
			}
		}
		for _, a := range s.Addresses() {
			fmt.Fprintln(stdout, a)
		}
		return 0
	}
	if err := firstcontact.Approve(path, max, pos[1:]...); err != nil {
		fmt.Fprintf(stderr, "firstcontact: %v\n", err)
		return 1
	}
	for _, a := range pos[1:] {
		n, _ := policy.NormalizeAddress(a)
		fmt.Fprintf(stdout, "approved %s (%s)\n", n, path)
	}
	if p.Outbound.FirstContact == policy.FirstContactOff {
		fmt.Fprintln(stderr, "firstcontact: note: outbound.first_contact is \"off\" in this policy")
	}
	return 0
}

// firstContactSyncEvery is how often serve writes what it learned and
// reads what `firstcontact approve` added: an approval reaches the running
// daemon within this time.
var firstContactSyncEvery = 2 * time.Second

// fcRunner keeps serve's first-contact store: opened when the policy (at
// start or on a reload) turns outbound.first_contact on, synced
// periodically and at shutdown.
type fcRunner struct {
	mu    sync.Mutex
	store *firstcontact.Store
	stop  context.CancelFunc
	done  chan struct{}
}

// ensure opens the store when p needs one and none is open; the state
// file's path takes effect once (a changed path at the next restart).
func (r *fcRunner) ensure(p *policy.Policy, srv *milter.Server, log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.Outbound.FirstContact == policy.FirstContactOff || p.Outbound.FirstContact == "" {
		return
	}
	if r.store != nil {
		if r.store.Path() != p.Outbound.FirstContactState {
			log.Warn("outbound.first_contact_state takes effect at the next restart", "running", r.store.Path(), "new", p.Outbound.FirstContactState)
		}
		return
	}
	s, err := firstcontact.Open(p.Outbound.FirstContactState, p.Outbound.FirstContactMax)
	if err != nil {
		// Not fatal (fail safe: an address forgotten is one more message
		// held for confirmation).
		log.Error("first-contact state not read in full", "path", p.Outbound.FirstContactState, "error", err.Error())
	}
	if s == nil {
		return
	}
	log.Info("first-contact state loaded", "path", p.Outbound.FirstContactState, "addresses", s.Len(), "mode", string(p.Outbound.FirstContact))
	r.store = s
	srv.SetKnown(s)
	ctx, stop := context.WithCancel(context.Background())
	r.stop, r.done = stop, make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(firstContactSyncEvery)
		defer t.Stop()
		var last string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.Sync(); err != nil && err.Error() != last {
				log.Error("first-contact state", "path", s.Path(), "error", err.Error())
				last = err.Error()
			} else if err == nil {
				last = ""
			}
		}
	}()
}

// close stops the syncing and writes the store a last time.
func (r *fcRunner) close(log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return
	}
	r.stop()
	<-r.done
	if err := r.store.Sync(); err != nil {
		log.Error("first-contact state not saved", "path", r.store.Path(), "error", err.Error())
	}
}

// checkKnown is the first-contact state as `check` sees it: serve's file,
// read only (check never records an address), so that check shows what
// serve would decide for a recipient. nil when outbound.first_contact is
// off; an unreadable file is reported and counts as empty (every address
// new, as serve would start).
func checkKnown(p *policy.Policy, stderr io.Writer) pipeline.KnownStore {
	if p.Outbound.FirstContact == policy.FirstContactOff || p.Outbound.FirstContact == "" {
		return nil
	}
	s, err := firstcontact.Open(p.Outbound.FirstContactState, p.Outbound.FirstContactMax)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
	}
	if s == nil {
		return nil
	}
	return s
}
