package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

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
