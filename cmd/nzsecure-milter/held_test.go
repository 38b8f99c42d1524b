package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// smtpMail is one message the fake MTA took.
type smtpMail struct {
	From  string
	Rcpts []string
	Data  string
}

// fakeMTA is a minimal SMTP server on loopback, standing in for the
// milter-less smtpd notices are submitted to (notify.submit).
type fakeMTA struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []smtpMail
	wg   sync.WaitGroup
	deny bool // answer 554 to DATA
}

func startMTA(t *testing.T) *fakeMTA {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMTA{ln: ln}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); m.wg.Wait() })
	return m
}

func (m *fakeMTA) addr() string { return m.ln.Addr().String() }

func (m *fakeMTA) mails() []smtpMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]smtpMail(nil), m.got...)
}

func (m *fakeMTA) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	say("220 fake ESMTP")
	var cur smtpMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 fake")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			cur = smtpMail{From: strings.Trim(strings.TrimSpace(line)[10:], "<> ")}
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			cur.Rcpts = append(cur.Rcpts, strings.Trim(strings.TrimSpace(line)[8:], "<> "))
			say("250 ok")
		case cmd == "DATA":
			if m.deny {
				say("554 no")
				continue
			}
			say("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = b.String()
			m.mu.Lock()
			m.got = append(m.got, cur)
			m.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

const heldOutbound = "From: Alice <alice@agency.govt.nz>\r\nTo: partner@example.com\r\nSubject: minutes\r\nDate: Tue, 01 Dec 2026 10:00:00 +1300\r\n\r\nSee attached.\r\n"

// heldSetup makes a store in a temporary directory and the policy flags
// pointing at it and at the fake MTA.
func heldSetup(t *testing.T, mta *fakeMTA) (*heldmail.Store, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "held")
	s, err := heldmail.Open(dir, heldmail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sets := []string{"--set", `domains=["agency.govt.nz"]`, "--set", fmt.Sprintf("smime.held_dir=%q", dir),
		"--set", fmt.Sprintf("dns.servers=[%q]", testDNS(t))}
	if mta != nil {
		sets = append(sets, "--set", fmt.Sprintf("notify.submit=%q", "smtp:"+mta.addr()))
	}
	return s, sets
}

func putHeld(t *testing.T, s *heldmail.Store, msg string, received time.Time) string {
	t.Helper()
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "ws1.agency.govt.nz", Daemon: "ORIGINATING"},
		Envelope: policy.Envelope{QueueID: "Q1", From: "alice@agency.govt.nz", Rcpts: []string{"partner@example.com"}, AuthUser: "alice"},
		Domain:   "example.com", Code: "201", Reason: "the peer certificate is revoked", Received: received,
	}
	id, err := s.Put(context.Background(), h, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHeldListShowDelete: the listing (text and JSON), show, show --raw
// (the message exactly as stored), delete (to failed/ with the note, then
// in `held --failed`), and an ID that is a path is refused.
func TestHeldListShowDelete(t *testing.T) {
	s, sets := heldSetup(t, nil)
	id := putHeld(t, s, heldOutbound, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))

	rc, out, errs := runCmd(t, append([]string{"held"}, sets...)...)
	if rc != 0 || !strings.Contains(out, id) || !strings.Contains(out, "alice@agency.govt.nz") ||
		!strings.Contains(out, "partner@example.com") || !strings.Contains(out, "201") || !strings.Contains(out, "2026-12-01T09:00:00Z") {
		t.Fatalf("held: rc %d\n%s%s", rc, out, errs)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "--json"}, sets...)...)
	var listing struct {
		Held     []heldRow          `json:"held"`
		Problems []heldmail.Problem `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &listing); err != nil || rc != 0 {
		t.Fatalf("held --json: %v rc %d\n%s", err, rc, out)
	}
	if len(listing.Held) != 1 || listing.Held[0].ID != id || listing.Held[0].Code != "201" || listing.Held[0].Domain != "example.com" ||
		listing.Held[0].Tries != 0 || listing.Held[0].Reason != "the peer certificate is revoked" {
		t.Fatalf("listing %+v", listing)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "show", id}, sets...)...)
	if rc != 0 || !strings.Contains(out, "10.1.2.3 ws1.agency.govt.nz") || !strings.Contains(out, "queue id:") {
		t.Fatalf("show: rc %d\n%s", rc, out)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "show", "--raw", id}, sets...)...)
	if rc != 0 || out != heldOutbound {
		t.Fatalf("show --raw: rc %d %q", rc, out)
	}
	if rc, _, errs := runCmd(t, append([]string{"held", "show", "../../etc/passwd"}, sets...)...); rc != 1 || !strings.Contains(errs, "not a held-message ID") {
		t.Fatalf("show of a path: rc %d %s", rc, errs)
	}
	rc, out, errs = runCmd(t, append([]string{"held", "delete", id, "--note", "sent by other means"}, sets...)...)
	if rc != 0 || !strings.Contains(out, "moved to") || !strings.Contains(errs, `"action":"held-deleted"`) {
		t.Fatalf("delete: rc %d\n%s%s", rc, out, errs)
	}
	rc, out, _ = runCmd(t, append([]string{"held"}, sets...)...)
	if rc != 0 || strings.Contains(out, id) {
		t.Fatalf("still listed after delete:\n%s", out)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "--failed"}, sets...)...)
	if rc != 0 || !strings.Contains(out, id) || !strings.Contains(out, "deleted by the administrator: sent by other means") {
		t.Fatalf("held --failed: rc %d\n%s", rc, out)
	}
	if rc, _, _ := runCmd(t, append([]string{"held", "frobnicate"}, sets...)...); rc != 2 {
		t.Fatalf("unknown verb: rc %d", rc)
	}
	if rc, _, _ := runCmd(t, append([]string{"held", "retry"}, sets...)...); rc != 2 {
		t.Fatalf("retry without ID or --all: rc %d", rc)
	}
}

// TestHeldListProblems: a corrupt entry is shown as a problem and the
// exit status says so.
func TestHeldListProblems(t *testing.T) {
	s, sets := heldSetup(t, nil)
	if err := os.WriteFile(filepath.Join(s.Dir(), "aaaaaaaaaaaaaaaaaaaaaaaaaa.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "aaaaaaaaaaaaaaaaaaaaaaaaaa.eml"), []byte(heldOutbound), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, out, _ := runCmd(t, append([]string{"held"}, sets...)...)
	if rc != 1 || !strings.Contains(out, "problem: aaaaaaaaaaaaaaaaaaaaaaaaaa.json") {
		t.Fatalf("rc %d\n%s", rc, out)
	}
}

// TestHeldRetrySends: `held retry ID` re-runs the stored message through
// a fresh transaction (the real Retry), submits the gateway's output to
// the MTA from the original sender to the held recipients, and removes
// the entry; the output carries the headers the chain adds.
func TestHeldRetrySends(t *testing.T) {
	mta := startMTA(t)
	s, sets := heldSetup(t, mta)
	id := putHeld(t, s, heldOutbound, time.Now().Add(-time.Hour))
	rc, out, errs := runCmd(t, append([]string{"held", "retry", id}, sets...)...)
	if rc != 0 || !strings.Contains(out, id+": held-sent") {
		t.Fatalf("retry: rc %d\n%s%s", rc, out, errs)
	}
	got := mta.mails()
	if len(got) != 1 {
		t.Fatalf("%d messages submitted, want 1", len(got))
	}
	m := got[0]
	if m.From != "alice@agency.govt.nz" || strings.Join(m.Rcpts, ",") != "partner@example.com" {
		t.Fatalf("envelope %q %v", m.From, m.Rcpts)
	}
	if !strings.Contains(m.Data, "X-NZ-Secure-email: compliant") || !strings.Contains(m.Data, "Subject: minutes") || !strings.Contains(m.Data, "\r\n\r\nSee attached.\r\n") {
		t.Fatalf("submitted message:\n%s", m.Data)
	}
	if _, err := s.Entry(id); err == nil {
		t.Fatal("entry still held after it was sent")
	}
	if !strings.Contains(errs, `"action":"held-sent"`) {
		t.Fatalf("no decision line:\n%s", errs)
	}
}

// TestHeldRetryRefusedNotice: a held message the policy now refuses
// ([SECRET] to the internet is held for the administrator, R110) is not
// sent; SECURE DELIVERY FAILURE with the code goes once to the sender and
// the sender's postmaster through the MTA, and the message moves to
// failed/. `held retry --all` afterwards has nothing to do.
func TestHeldRetryRefusedNotice(t *testing.T) {
	mta := startMTA(t)
	s, sets := heldSetup(t, mta)
	secret := strings.Replace(heldOutbound, "Subject: minutes", "Subject: [SECRET] minutes", 1)
	id := putHeld(t, s, secret, time.Now().Add(-time.Hour))
	rc, out, errs := runCmd(t, append([]string{"held", "retry", "--all", "--json"}, sets...)...)
	if rc != 0 || !strings.Contains(out, `"action": "held-refused"`) {
		t.Fatalf("retry --all: rc %d\n%s%s", rc, out, errs)
	}
	got := mta.mails()
	if len(got) != 1 {
		t.Fatalf("%d messages submitted, want the one notice", len(got))
	}
	n := got[0]
	if n.From != "" || strings.Join(n.Rcpts, ",") != "alice@agency.govt.nz,postmaster@agency.govt.nz" {
		t.Fatalf("notice envelope %q %v", n.From, n.Rcpts)
	}
	head, body, _ := strings.Cut(n.Data, "\r\n\r\n")
	dec, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if !strings.Contains(head, "Subject: SECURE DELIVERY FAILURE [Code: 201]: [SECRET] minutes") ||
		!strings.Contains(string(dec), "SECURE DELIVERY FAILURE – Your message could not be delivered securely, therefore, it was not sent. [Code: 201, example.com]") ||
		strings.Contains(string(dec), "See attached.") {
		t.Fatalf("notice:\n%s\n%s", head, dec)
	}
	if _, err := s.FailedEntry(id); err != nil {
		t.Fatalf("not in failed/: %v", err)
	}
	rc, out, _ = runCmd(t, append([]string{"held", "retry", "--all"}, sets...)...)
	if rc != 0 || out != "" || len(mta.mails()) != 1 {
		t.Fatalf("second retry --all: rc %d %q, %d submitted", rc, out, len(mta.mails()))
	}
}

// TestHeldRetryMTADown: the MTA refusing connections keeps the message
// held with the try counted.
func TestHeldRetryMTADown(t *testing.T) {
	mta := startMTA(t)
	s, sets := heldSetup(t, mta)
	mta.ln.Close()
	id := putHeld(t, s, heldOutbound, time.Now().Add(-time.Hour))
	rc, out, _ := runCmd(t, append([]string{"held", "retry", id}, sets...)...)
	if rc != 0 || !strings.Contains(out, id+": held-retry-later") {
		t.Fatalf("rc %d\n%s", rc, out)
	}
	e, err := s.Entry(id)
	if err != nil || e.Tries != 1 || !strings.Contains(e.LastReason, "submitting the plain copy") {
		t.Fatalf("%+v %v", e, err)
	}
}

// TestHeldRetrySplit: recipients the policy now takes off (outbound.partial
// = "split": [SENSITIVE] to the internet) are not sent to; the others are,
// once.
func TestHeldRetrySplit(t *testing.T) {
	mta := startMTA(t)
	s, sets := heldSetup(t, mta)
	sets = append(sets, "--set", `outbound.partial="split"`)
	msg := "From: Alice <alice@agency.govt.nz>\r\nTo: bob@agency.govt.nz, x@gmail.example\r\nSubject: [SENSITIVE] minutes\r\n\r\nSee attached.\r\n"
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "ws1.agency.govt.nz"},
		Envelope: policy.Envelope{From: "alice@agency.govt.nz", Rcpts: []string{"bob@agency.govt.nz", "x@gmail.example"}, AuthUser: "alice"},
		Code:     "201", Received: time.Now(),
	}
	id, err := s.Put(context.Background(), h, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	rc, out, errs := runCmd(t, append([]string{"held", "retry", id}, sets...)...)
	if rc != 0 || !strings.Contains(out, "held-sent") {
		t.Fatalf("rc %d\n%s%s", rc, out, errs)
	}
	got := mta.mails()
	if len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "bob@agency.govt.nz" {
		t.Fatalf("submitted %+v", got)
	}
}
