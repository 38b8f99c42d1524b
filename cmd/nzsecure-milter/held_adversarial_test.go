package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// A message held for a certificate problem is outbound by construction
// (the milter only holds outbound mail). If the policy in force at the
// retry no longer takes its stored connection as outbound (an
// administrator narrowed internal_networks; the message came from an
// internal relay without SASL), the retry judged it as inbound mail and
// submitted it in the plain form to the held recipients: to a peer agency
// that is mail in clear (R62). It stays held now, and nothing is sent.
func TestHeldRetryNoLongerOutbound(t *testing.T) {
	mta := startMTA(t)
	s, sets := heldSetup(t, mta)
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "app1.agency.govt.nz", TLS: policy.TLSInfo{Version: "TLSv1.3"}},
		Envelope: policy.Envelope{QueueID: "Q1", From: "alice@agency.govt.nz", Rcpts: []string{"partner@example.com"}},
		Domain:   "example.com", Code: "201", Reason: "the peer certificate is revoked", Received: time.Now().Add(-time.Hour),
	}
	id, err := s.Put(context.Background(), h, strings.NewReader(heldOutbound))
	if err != nil {
		t.Fatal(err)
	}
	// internal_networks as the default (loopback only): 10.1.2.3 is now
	// an outside client.
	rc, out, errs := runCmd(t, append([]string{"held", "retry", id}, sets...)...)
	if got := mta.mails(); len(got) != 0 {
		t.Fatalf("submitted %d message(s) for a message no longer outbound: %+v", len(got), got)
	}
	if rc != 0 || !strings.Contains(out, id+": held-retry-later") {
		t.Fatalf("rc %d\n%s%s", rc, out, errs)
	}
	e, err := s.Entry(id)
	if err != nil || !strings.Contains(e.LastReason, "outbound") {
		t.Fatalf("entry %+v %v, want still held with the reason", e, err)
	}
	// With the network internal again it is sent.
	rc, out, errs = runCmd(t, append([]string{"held", "retry", id, "--set", `internal_networks=["10.0.0.0/8"]`}, sets...)...)
	if rc != 0 || !strings.Contains(out, id+": held-sent") || len(mta.mails()) != 1 {
		t.Fatalf("internal again: rc %d %d mail(s)\n%s%s", rc, len(mta.mails()), out, errs)
	}
}

type failSub struct{ n int }

func (s *failSub) Submit(context.Context, string, []string, []byte) error {
	s.n++
	return errors.New("MTA down")
}

// countHold counts the entries stored and removed (heldmail.Store has
// Remove; CarryOut uses it to undo its own Put after a failure).
type countHold struct{ puts, removes int }

func (h *countHold) Put(context.Context, pipeline.HeldMessage, io.Reader) (string, error) {
	h.puts++
	return "H" + strconv.Itoa(h.puts), nil
}

func (h *countHold) Remove(string) error {
	h.removes++
	return nil
}

// A held message whose recipients now split (one may go, one is still
// held: a peer whose certificate is still bad) while the MTA is down: the
// retry stored the still-held part as a new entry before the submission
// failed and kept the original too, so every round while the MTA was down
// added one more entry for the same recipient (each later sent: a copy per
// round). CarryOut now removes the entry it stored when a later step
// fails (the milter's tempfail had the same growth, one entry per SMTP
// retry of the client).
func TestHeldRetrySplitMTADownNoNewEntries(t *testing.T) {
	fx := func(n string) string { return filepath.Join("..", "..", "testdata", "smime", n) }
	peers := t.TempDir()
	if err := os.MkdirAll(filepath.Join(peers, "agency-e.govt.nz"), 0o750); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fx("expired.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(peers, "agency-e.govt.nz", "expired.pem"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load("", []string{`profile="seemail"`, `domains=["agency-a.govt.nz"]`,
		`outbound.seemail_domains=["agency-e.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:` + fx("agency-a-new.crt") + `:` + fx("agency-a-new.key") + `"]`,
		`smime.trust_anchors=["` + fx("ca.crt") + `"]`, `smime.peers="` + peers + `"`, `smime.crl_check=false`,
		fmt.Sprintf("dns.servers=[%q]", testDNS(t))})
	if err != nil {
		t.Fatal(err)
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.NewState(p, runner)
	if err != nil {
		t.Fatal(err)
	}
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: netip.MustParseAddr("127.0.0.1"), TLS: policy.TLSInfo{Version: "TLSv1.3"}},
		Envelope: policy.Envelope{From: "alice@agency-a.govt.nz", Rcpts: []string{"x@gmail.example", "rita@agency-e.govt.nz"}, AuthUser: "alice@agency-a.govt.nz"},
		Code:     "201", Received: time.Now().Add(-time.Hour),
	}
	msg := "From: Alice <alice@agency-a.govt.nz>\r\nTo: x@gmail.example, rita@agency-e.govt.nz\r\nSubject: minutes\r\n\r\nSee attached.\r\n"
	sub, hold := &failSub{}, &countHold{}
	retry := heldRetry(func() (pipeline.State, error) { return st, nil }, sub, hold, time.Now)
	for round := 0; round < 3; round++ {
		if _, err := retry(context.Background(), h, strings.NewReader(msg)); err == nil {
			t.Fatalf("round %d: no error with the MTA down", round)
		}
	}
	if sub.n != 3 {
		t.Fatalf("%d submissions tried, want 3 (the plain recipient each round)", sub.n)
	}
	if n := hold.puts - hold.removes; n != 0 {
		t.Errorf("%d new held entries left while the MTA was down, want none (the original entry still holds rita)", n)
	}
	// The MTA back: the plain recipient is sent, rita stored once.
	okSub := &okSub{}
	out, err := heldRetry(func() (pipeline.State, error) { return st, nil }, okSub, hold, time.Now)(context.Background(), h, strings.NewReader(msg))
	if err != nil || out.Result != heldmail.Sent || len(okSub.rcpts) != 1 || okSub.rcpts[0] != "x@gmail.example" || hold.puts-hold.removes != 1 {
		t.Errorf("MTA up: %+v %v, submitted %v, %d held entries", out, err, okSub.rcpts, hold.puts)
	}
}

type okSub struct{ rcpts []string }

func (s *okSub) Submit(_ context.Context, _ string, rcpts []string, _ []byte) error {
	s.rcpts = append(s.rcpts, rcpts...)
	return nil
}
