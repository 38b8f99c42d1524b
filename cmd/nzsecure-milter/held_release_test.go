package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// R62 with R110: a [SECRET] message to a peer agency in S/MIME scope is
// held for the administrator by the gateway (not in the MTA's hold
// queue), and `held release ID` sends it through the chain, signed and
// encrypted, once.

const releaseMsg = "From: Ann <ann@agency-a.govt.nz>\r\nTo: bob@agency-b.govt.nz\r\nSubject: [SECRET] exercise\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe plans for the joint exercise.\r\n"

// releaseSetup: agency-a's gateway (seemail, smime on) with agency-b in
// its peer store, a held store and the fake MTA; peer false leaves the
// peer store empty (agency-b: no certificate, 201).
func releaseSetup(t *testing.T, mta *fakeMTA, peer bool) (*heldmail.Store, []string) {
	t.Helper()
	dir := t.TempDir()
	fx, err := filepath.Abs("../../testdata/smime")
	if err != nil {
		t.Fatal(err)
	}
	peers := filepath.Join(dir, "peers")
	if err := os.MkdirAll(filepath.Join(peers, "agency-b.govt.nz"), 0o755); err != nil {
		t.Fatal(err)
	}
	if peer {
		data, err := os.ReadFile(filepath.Join(fx, "agency-b.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(peers, "agency-b.govt.nz", "b.pem"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held := filepath.Join(dir, "held")
	s, err := heldmail.Open(held, heldmail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sets := []string{`profile="seemail"`, `domains=["agency-a.govt.nz"]`, "record_times=false",
		`outbound.seemail_domains=["agency-b.govt.nz"]`, "smime.request_by_mail=false",
		`smime.identities=["agency-a.govt.nz:` + fx + `/agency-a-new.crt:` + fx + `/agency-a-new.key"]`,
		`smime.trust_anchors=["` + fx + `/ca.crt"]`, `smime.peers="` + peers + `"`, "smime.crl_check=false",
		fmt.Sprintf("smime.held_dir=%q", held), fmt.Sprintf("smime.crl_dir=%q", filepath.Join(dir, "crl")),
		fmt.Sprintf("dns.servers=[%q]", testDNS(t)), fmt.Sprintf("notify.submit=%q", "smtp:"+mta.addr())}
	return s, sets
}

func flagSets(sets []string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, "--set", s)
	}
	return out
}

// holdAsMilter runs msg through a transaction as the milter does (Begin,
// the callbacks, EndOfMessage; rerunHeld feeds them) and carries the
// verdict out into the store; it returns the verdict.
func holdAsMilter(t *testing.T, sets []string, s *heldmail.Store, msg string) policy.Verdict {
	t.Helper()
	p, err := policy.Load("", sets)
	if err != nil {
		t.Fatal(err)
	}
	st, err := (&heldStates{cur: func() *policy.Policy { return p }}).get()
	if err != nil {
		t.Fatal(err)
	}
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "ws1.agency-a.govt.nz", MTA: policy.MTAPostfix},
		Envelope: policy.Envelope{QueueID: "4ZQ1", From: "ann@agency-a.govt.nz", Rcpts: []string{"bob@agency-b.govt.nz"}, AuthUser: "ann"},
	}
	tx, v, err := rerunHeld(st, h, strings.NewReader(msg), time.Now())
	if tx != nil {
		defer tx.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	forms, err := tx.Forms(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.CarryOut(context.Background(), forms, nil, s, true); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHeldReleaseSMIME(t *testing.T) {
	mta := startMTA(t)
	s, sets := releaseSetup(t, mta, true)
	v := holdAsMilter(t, sets, s, releaseMsg)
	if v.Action != policy.Discard {
		t.Fatalf("action %s, want discard (held by the gateway, not quarantined): %q", v.Action, v.Reasons)
	}
	var notice string
	for _, n := range v.Notices {
		if n.Kind == policy.NoticeHeld {
			notice = n.Reason
		}
	}
	if !strings.Contains(notice, "nzsecure-milter held release 4ZQ1") || strings.Contains(notice, "postsuper") {
		t.Fatalf("held-mail notice %q", notice)
	}
	entries, _, err := s.List()
	if err != nil || len(entries) != 1 || entries[0].AdminHold != policy.HoldClassified || entries[0].Envelope.QueueID != "4ZQ1" {
		t.Fatalf("store %+v %v", entries, err)
	}
	id := entries[0].ID
	fs := flagSets(sets)

	// Listed with the kind and the command; the retry leaves it alone.
	rc, out, errs := runCmd(t, append([]string{"held"}, fs...)...)
	if rc != 0 || !strings.Contains(out, "admin") || !strings.Contains(out, "classification: ") || !strings.Contains(out, "nzsecure-milter held release "+id) {
		t.Fatalf("held: rc %d\n%s%s", rc, out, errs)
	}
	rc, out, errs = runCmd(t, append([]string{"held", "--json"}, fs...)...)
	var listing struct {
		Held []heldRow `json:"held"`
	}
	if err := json.Unmarshal([]byte(out), &listing); err != nil || rc != 0 || len(listing.Held) != 1 || listing.Held[0].AdminHold != "classification" {
		t.Fatalf("held --json: rc %d %v\n%s%s", rc, err, out, errs)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "retry", id}, fs...)...)
	if rc != 1 || !strings.Contains(out, "held-for-admin") || len(mta.mails()) != 0 {
		t.Fatalf("held retry ID of an administrator hold: rc %d %q, %d submitted", rc, out, len(mta.mails()))
	}
	rc, out, _ = runCmd(t, append([]string{"held", "retry", "--all"}, fs...)...)
	if rc != 0 || out != "" || len(mta.mails()) != 0 {
		t.Fatalf("held retry --all: rc %d %q, %d submitted", rc, out, len(mta.mails()))
	}

	// Released by the queue ID the notice names.
	rc, out, errs = runCmd(t, append([]string{"held", "release", "4ZQ1"}, fs...)...)
	if rc != 0 || out != id+": held-released\n" || !strings.Contains(errs, `"action":"held-released"`) {
		t.Fatalf("held release: rc %d\n%s%s", rc, out, errs)
	}
	got := mta.mails()
	if len(got) != 1 {
		t.Fatalf("%d messages submitted, want 1: %+v", len(got), got)
	}
	m := got[0]
	if m.From != "ann@agency-a.govt.nz" || !slices.Equal(m.Rcpts, []string{"bob@agency-b.govt.nz"}) {
		t.Fatalf("envelope %q %v", m.From, m.Rcpts)
	}
	head, body, _ := strings.Cut(m.Data, "\r\n\r\n")
	if !strings.Contains(head, "Content-Type: application/pkcs7-mime; smime-type=enveloped-data") || strings.Contains(m.Data, "joint exercise") {
		t.Fatalf("not signed and encrypted:\n%s", m.Data)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		t.Fatal(err)
	}
	fx := "../../testdata/smime/"
	bob, err := smime.LoadIdentity("agency-b.govt.nz", fx+"agency-b.crt", fx+"agency-b.key")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := smime.Decrypt(der, []*smime.Identity{bob})
	if err != nil {
		t.Fatalf("decrypt with agency-b's key: %v", err)
	}
	_, inner, _ := bytes.Cut(dec.Content, []byte("\r\n\r\n"))
	sder, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(inner)), ""))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := smime.Verify(sder, nil, nil)
	if err != nil || !bytes.Contains(signed.Content, []byte("The plans for the joint exercise.")) {
		t.Fatalf("verify: %v", err)
	}
	own, err := os.ReadFile(fx + "agency-a-new.crt")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := smime.ParseCertificatesPEM(own)
	if err != nil || smime.Fingerprint(signed.Signer) != smime.Fingerprint(certs[0]) {
		t.Fatalf("signed by %v, want agency-a-new (R37): %v", signed.Signer.Subject, err)
	}
	if _, err := s.Entry(id); err == nil {
		t.Fatal("entry still held after the release")
	}
	// Once: a second release finds nothing.
	rc, _, errs = runCmd(t, append([]string{"held", "release", "4ZQ1"}, fs...)...)
	if rc != 1 || !strings.Contains(errs, "no message held for the administrator") || len(mta.mails()) != 1 {
		t.Fatalf("second release: rc %d %s, %d submitted", rc, errs, len(mta.mails()))
	}
}

// A release does not skip the certificate rules: with no certificate of
// agency-b the released message is held for the ordinary retry (201, a new
// entry that is not an administrator hold and remembers the release), the
// sender is told SECURE DELIVERY DELAYED, nothing leaves in clear.
func TestHeldReleaseThenCertificateHold(t *testing.T) {
	mta := startMTA(t)
	s, sets := releaseSetup(t, mta, false)
	h := pipeline.HeldMessage{
		Conn:      policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "ws1.agency-a.govt.nz"},
		Envelope:  policy.Envelope{QueueID: "4ZQ2", From: "ann@agency-a.govt.nz", Rcpts: []string{"bob@agency-b.govt.nz"}, AuthUser: "ann"},
		AdminHold: policy.HoldClassified, Reason: "classification SECRET is held for an administrator (R110)",
		Received: time.Now().Add(-100 * time.Hour), // past smime.give_up: the new hold counts from the release
	}
	id, err := s.Put(context.Background(), h, strings.NewReader(releaseMsg))
	if err != nil {
		t.Fatal(err)
	}
	rc, out, errs := runCmd(t, append([]string{"held", "release", id}, flagSets(sets)...)...)
	if rc != 0 || out != id+": held-released\n" {
		t.Fatalf("held release: rc %d\n%s%s", rc, out, errs)
	}
	entries, _, err := s.List()
	if err != nil || len(entries) != 1 {
		t.Fatalf("store %+v %v", entries, err)
	}
	e := entries[0]
	if e.ID == id || e.AdminHold != "" || e.Code != "201" || !slices.Equal(e.Released, []string{policy.HoldClassified}) || time.Since(e.Received) > time.Hour {
		t.Fatalf("new entry %+v, want a 201 hold released from classification, received now", e)
	}
	var delayed []string
	for _, m := range mta.mails() {
		if strings.Contains(m.Data, "joint exercise") {
			t.Fatalf("the message left in clear to %v", m.Rcpts)
		}
		if strings.Contains(m.Data, "SECURE DELIVERY DELAYED") {
			delayed = append(delayed, m.Rcpts...)
		}
	}
	if !slices.Contains(delayed, "ann@agency-a.govt.nz") {
		t.Fatalf("no SECURE DELIVERY DELAYED to the sender: %+v", mta.mails())
	}
	// The ordinary retry runs it with the release remembered: still 201,
	// never held for the administrator again.
	rc, out, _ = runCmd(t, append([]string{"held", "retry", e.ID}, flagSets(sets)...)...)
	if rc != 0 || !strings.Contains(out, e.ID+": held-retry-later") {
		t.Fatalf("retry: rc %d %q", rc, out)
	}
	// A certificate hold is not released by `held release`.
	rc, out, errs = runCmd(t, append([]string{"held", "release", e.ID}, flagSets(sets)...)...)
	if rc != 1 || !strings.Contains(out, "held-not-released: not held for the administrator") {
		t.Fatalf("release of a 201 hold: rc %d %s%s", rc, out, errs)
	}
	if _, err := s.Entry(e.ID); err != nil {
		t.Fatalf("the 201 hold is gone after a refused release: %v", err)
	}
}
