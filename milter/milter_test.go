package milter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/metrics"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// syncBuffer collects the decision log safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// decisions returns the "decision" log lines as maps.
func (s *syncBuffer) decisions(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

func testPolicy(t testing.TB, sets ...string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("", append([]string{`domains=["agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`, "record_times=false"}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testZone is the DNS the milter tests see: example.com authorises
// 203.0.113.9 only; sid.example publishes Sender ID for 203.0.113.9 only;
// broken.example fails.
func testZone() *dnstest.Zone {
	return dnstest.NewZone().
		TXT("example.com", "v=spf1 ip4:203.0.113.9 -all").
		TXT("sid.example", "v=spf1 +all", "spf2.0/pra ip4:203.0.113.9 -all").
		SetFault("broken.example", dnstest.ServFail)
}

func testChecker() policy.Checker {
	z := testZone()
	return &checks.Runner{SPF: &spf.Evaluator{Resolver: z, Receiver: "mx.agency.govt.nz", Timeout: checks.SPFTimeout}, LookupTXT: z.LookupTXT}
}

// startServer runs a milter on a loopback port for the test's lifetime.
func startServer(t testing.TB, p *policy.Policy) (string, *Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv, err := NewServer(p, testChecker(), slog.New(jsonlog.New(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), srv, logs
}

// mta plays Postfix: it sends the macros Postfix sends at each stage.
type mta struct {
	t       testing.TB
	macros  *gomilter.MacroBag
	session *gomilter.ClientSession
}

func dial(t testing.TB, addr string) *mta {
	t.Helper()
	m, err := openMTA(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.session.Close() })
	return m
}

// openMTA opens a milter connection as Postfix does, offering every
// action Postfix offers.
func openMTA(t testing.TB, addr string) (*mta, error) {
	client := gomilter.NewClient("tcp", addr,
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptQuarantine|gomilter.OptChangeBody|
			gomilter.OptAddRcpt|gomilter.OptRemoveRcpt|gomilter.OptChangeFrom|gomilter.OptSetMacros))
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mx.agency.govt.nz")
	s, err := client.Session(macros)
	if err != nil {
		return nil, err
	}
	return &mta{t: t, macros: macros, session: s}, nil
}

func (m *mta) must(a *gomilter.Action, err error) *gomilter.Action {
	m.t.Helper()
	if err != nil {
		m.t.Fatalf("milter protocol: %v", err)
	}
	return a
}

// connect sends connect and HELO; tls is Postfix's {tls_version}, "" for plaintext.
func (m *mta) connect(ip, daemon, tls string) {
	m.t.Helper()
	m.macros.Set(gomilter.MacroDaemonName, daemon)
	if a := m.must(m.session.Conn("client.example", gomilter.FamilyInet, 40000, ip)); a.Type != gomilter.ActionContinue {
		m.t.Fatalf("connect: %v", a)
	}
	if tls != "" {
		m.macros.Set(gomilter.MacroTlsVersion, tls)
		m.macros.Set(gomilter.MacroCipher, "TLS_AES_256_GCM_SHA384")
		m.macros.Set(gomilter.MacroCipherBits, "256")
	}
	if a := m.must(m.session.Helo("client.example")); a.Type != gomilter.ActionContinue {
		m.t.Fatalf("helo: %v", a)
	}
}

type message struct {
	auth    string
	from    string
	rcpts   []string
	headers [][2]string
	body    string
}

// result is where a transaction ended and what the milter asked for.
type result struct {
	stage string
	act   *gomilter.Action
	mods  []gomilter.ModifyAction
}

// send runs one transaction from MAIL FROM to end of message, stopping at
// the first stage the milter ends (then, as Postfix does, it aborts).
func (m *mta) send(msg message) (r result) {
	m.t.Helper()
	defer func() {
		if r.stage != "eom" {
			if err := m.session.Abort(nil); err != nil {
				m.t.Fatalf("abort: %v", err)
			}
		}
	}()
	m.macros.Set(gomilter.MacroAuthAuthen, msg.auth)
	m.macros.Set(gomilter.MacroQueueId, "")
	if a := m.must(m.session.Mail("<"+msg.from+">", "")); a.Type != gomilter.ActionContinue {
		return result{stage: "mail", act: a}
	}
	m.macros.Set(gomilter.MacroQueueId, "4ABC123")
	for _, r := range msg.rcpts {
		if a := m.must(m.session.Rcpt("<"+r+">", "")); a.Type != gomilter.ActionContinue {
			return result{stage: "rcpt", act: a}
		}
	}
	if a := m.must(m.session.DataStart()); a.Type != gomilter.ActionContinue {
		return result{stage: "data", act: a}
	}
	for _, h := range msg.headers {
		if a := m.must(m.session.HeaderField(h[0], h[1], nil)); a.Type != gomilter.ActionContinue {
			return result{stage: "header", act: a}
		}
	}
	if a := m.must(m.session.HeaderEnd()); a.Type != gomilter.ActionContinue {
		return result{stage: "eoh", act: a}
	}
	body := msg.body
	if body == "" {
		body = "\r\n"
	}
	for len(body) > 0 {
		n := min(len(body), 65535)
		if a := m.must(m.session.BodyChunk([]byte(body[:n]))); a.Type != gomilter.ActionContinue {
			return result{stage: "body", act: a}
		}
		body = body[n:]
	}
	mods, a, err := m.session.End()
	if err != nil {
		m.t.Fatalf("end of message: %v", err)
	}
	return result{stage: "eom", act: a, mods: mods}
}

var forgedInbound = message{
	from:  "sender@example.com",
	rcpts: []string{"bob@agency.govt.nz"},
	headers: [][2]string{
		{"From", "Sender <sender@example.com>"},
		{"To", "bob@agency.govt.nz"},
		{"X-NZ-Secure-email", "forged one"},
		{"Subject", "hello"},
		{"X-NZ-Secure-Email", "forged two"},
	},
	body: "Hello Bob\r\n",
}

// M-RCV-TLS / G-TLS through the milter protocol: refused at MAIL FROM.
func TestPlaintextInboundRefusedAtMailFrom(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "")
	r := m.send(forgedInbound)
	if r.stage != "mail" || r.act.SMTPCode != 530 || !strings.Contains(r.act.SMTPReply, "5.7.10") || !strings.Contains(r.act.SMTPReply, "TLS 1.2") {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	d := logs.decisions(t)
	if len(d) != 1 || d[0]["action"] != "reject" || d[0]["direction"] != "inbound" || d[0]["stage"] != "mail" || d[0]["tls_version"] != "" {
		t.Errorf("decision log: %v", d)
	}
}

// R60 through the milter protocol: both forged tags deleted, last first.
func TestForgedTagRemovedInbound(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	r := m.send(forgedInbound)
	if r.stage != "eom" || r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	// Deletions first, last index first; then the SPF result; then R76: the
	// forged tag marks the message as claiming to be secure, and it is not
	// verified, so it is delivered wrapped with warning 002.
	if len(r.mods) < 4 {
		t.Fatalf("modifications: %v", r.mods)
	}
	for i, wantIndex := range []uint32{2, 1} {
		mod := r.mods[i]
		if mod.Type != gomilter.ActionChangeHeader || mod.HeaderIndex != wantIndex || !strings.EqualFold(mod.HeaderName, "X-NZ-Secure-email") || mod.HeaderValue != "" {
			t.Errorf("mod %d = %v, want delete of X-NZ-Secure-email #%d", i, mod, wantIndex)
		}
	}
	if ar := r.mods[2]; ar.Type != gomilter.ActionAddHeader || ar.HeaderName != "Authentication-Results" || !strings.Contains(ar.HeaderValue, "spf=pass smtp.mailfrom=sender@example.com") {
		t.Errorf("SPF result not recorded (sge: spf=tag): %v", ar)
	}
	var warning string
	var body []byte
	for _, mod := range r.mods {
		switch {
		case mod.Type == gomilter.ActionAddHeader && mod.HeaderName == "X-NZ-Secure-Warning":
			warning = mod.HeaderValue
		case mod.Type == gomilter.ActionReplaceBody:
			body = append(body, mod.Body...)
		}
	}
	if warning != " 002 UNVERIFIED MESSAGE (mx.agency.govt.nz)" {
		t.Errorf("R76 warning header %q", warning)
	}
	if !strings.Contains(string(body), "UNVERIFIED MESSAGE") || !strings.Contains(string(body), "message/rfc822") || !strings.Contains(string(body), "Hello Bob") {
		t.Errorf("wrapped body lacks the warning or the original:\n%s", body)
	}
	d := logs.decisions(t)
	if len(d) != 1 || d[0]["queue_id"] != "4ABC123" || d[0]["tls_version"] != "TLSv1.3" || d[0]["tls_bits"] != float64(256) || d[0]["sender"] != "sender@example.com" {
		t.Errorf("decision log: %v", d)
	}
}

// R60, R65/R66 outbound: a compliant message is tagged, a forged From: refused.
func TestOutbound(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	good := message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"x@example.com"},
		headers: [][2]string{{"From", "Alice <alice@agency.govt.nz>"}, {"Subject", "report"}}, body: "text\r\n"}
	r := m.send(good)
	if r.stage != "eom" || r.act.Type != gomilter.ActionAccept || len(r.mods) != 1 {
		t.Fatalf("good: %s %v %v", r.stage, r.act, r.mods)
	}
	// The leading space: OptHeaderLeadingSpace is negotiated, so Postfix adds none.
	if mod := r.mods[0]; mod.Type != gomilter.ActionAddHeader || mod.HeaderName != "X-NZ-Secure-email" ||
		mod.HeaderValue != ` compliant; classification="UNCLASSIFIED"; profile=sge; gateway=mx.agency.govt.nz` {
		t.Errorf("tag: %v", mod)
	}

	// Same connection, next transaction: a From: of someone else.
	bad := good
	bad.headers = [][2]string{{"From", "Bob <bob@agency.govt.nz>"}, {"Subject", "report"}}
	r = m.send(bad)
	if r.stage != "eom" || r.act.SMTPCode != 550 || !strings.Contains(r.act.SMTPReply, "5.7.1") || !strings.Contains(r.act.SMTPReply, "R66") {
		t.Fatalf("bad: %s %v", r.stage, r.act)
	}
	// And one with no From: at all.
	none := good
	none.headers = [][2]string{{"Subject", "no from"}}
	r = m.send(none)
	if r.act.SMTPCode != 550 || !strings.Contains(r.act.SMTPReply, "R65") {
		t.Fatalf("no From: %v", r.act)
	}
	d := logs.decisions(t)
	if len(d) != 3 || d[0]["action"] != "accept" || d[1]["action"] != "reject" || d[2]["action"] != "reject" || d[1]["auth"] != "alice" || d[1]["direction"] != "outbound" {
		t.Errorf("decision log: %v", d)
	}
}

// TLS macros come only at HELO (Postfix does not resend them at end of
// message): they must still decide at MAIL FROM of a later transaction.
func TestTLSMacrosKeptForTheConnection(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.2")
	m.macros.Set(gomilter.MacroTlsVersion, "") // not resent after HELO
	for i := 0; i < 3; i++ {
		if r := m.send(forgedInbound); r.act.Type != gomilter.ActionAccept {
			t.Fatalf("transaction %d: %s %v", i, r.stage, r.act)
		}
	}
}

// limits.max_message_size: 552 5.3.4 as soon as the message passes it.
func TestSizeCap(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t, `limits.max_message_size=4096`, `limits.memory_spool=1024`))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	big := forgedInbound
	big.body = strings.Repeat("0123456789abcdef\r\n", 400) // 7200 bytes
	r := m.send(big)
	if r.act.SMTPCode != 552 || !strings.Contains(r.act.SMTPReply, "5.3.4") {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	// The next transaction on the same connection is unaffected.
	small := forgedInbound
	small.body = strings.Repeat("x", 2000) + "\r\n"
	if r := m.send(small); r.act.Type != gomilter.ActionAccept {
		t.Fatalf("after a refused big one: %v", r.act)
	}
	if d := logs.decisions(t); len(d) != 2 || d[0]["stage"] != "size" {
		t.Errorf("decision log: %v", d)
	}
}

// SIGHUP swaps the policy; a transaction keeps the policy it started with.
func TestPolicySwapMidTransaction(t *testing.T) {
	addr, srv, _ := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	m.macros.Set(gomilter.MacroAuthAuthen, "alice")
	if a := m.must(m.session.Mail("<alice@agency.govt.nz>", "")); a.Type != gomilter.ActionContinue {
		t.Fatal(a)
	}
	if err := srv.SetPolicy(testPolicy(t, `domains=["other.govt.nz"]`), testChecker()); err != nil {
		t.Fatal(err)
	}
	m.must(m.session.Rcpt("<x@example.com>", ""))
	m.must(m.session.DataStart())
	m.must(m.session.HeaderField("From", "alice@agency.govt.nz", nil))
	m.must(m.session.HeaderEnd())
	_, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n"))
	if err != nil || a.Type != gomilter.ActionAccept {
		t.Fatalf("in-flight transaction did not keep its policy: %v %v", a, err)
	}
	// The next one uses the new policy.
	r := m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"x@example.com"}, headers: [][2]string{{"From", "alice@agency.govt.nz"}}})
	if r.act.SMTPCode != 550 {
		t.Fatalf("new policy not in force: %v", r.act)
	}
}

// SIGTERM: a transaction in flight finishes; after the session grace new
// ones get 4xx; Shutdown returns only after the one in flight ended.
func TestShutdownFinishesInFlight(t *testing.T) {
	addr, srv, _ := startServer(t, testPolicy(t))
	srv.sessionGrace = 50 * time.Millisecond
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	if a := m.must(m.session.Mail("<sender@example.com>", "")); a.Type != gomilter.ActionContinue {
		t.Fatal(a)
	}
	other := dial(t, addr)
	other.connect("203.0.113.10", "smtpd", "TLSv1.3")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !srv.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A new transaction on another connection is turned away with 4xx.
	if a := other.must(other.session.Mail("<x@example.com>", "")); a.SMTPCode != 421 {
		t.Errorf("new transaction while draining: %v", a)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned with a transaction in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	m.must(m.session.Rcpt("<bob@agency.govt.nz>", ""))
	m.must(m.session.DataStart())
	m.must(m.session.HeaderField("From", "sender@example.com", nil))
	m.must(m.session.HeaderEnd())
	_, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n"))
	if err != nil || a.Type != gomilter.ActionAccept {
		t.Fatalf("in-flight transaction: %v %v", a, err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the transaction ended")
	}
}

// Within the session grace, a session connected before the shutdown still
// gets its transaction filtered (no 4xx because of a restart), and Shutdown
// returns as soon as every session has ended by itself (issue 16).
func TestShutdownSessionGrace(t *testing.T) {
	addr, srv, _ := startServer(t, testPolicy(t))
	srv.sessionGrace = time.Minute
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	// The listener closes at once: a new connection is not accepted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := m.must(m.session.Mail("<sender@example.com>", "")); a.Type != gomilter.ActionContinue {
		t.Fatalf("transaction of a session connected before the shutdown: %v, want continue", a)
	}
	m.must(m.session.Rcpt("<bob@agency.govt.nz>", ""))
	m.must(m.session.DataStart())
	m.must(m.session.HeaderField("From", "sender@example.com", nil))
	m.must(m.session.HeaderEnd())
	if _, a, err := m.session.BodyReadFrom(strings.NewReader("x\r\n")); err != nil || a.Type != gomilter.ActionAccept {
		t.Fatalf("transaction within the grace: %v %v", a, err)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned while a session was still connected: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	m.session.Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return once the last session closed")
	}
}

// An aborted transaction (client RSET/QUIT) frees its state; the counter of
// transactions in flight goes back to zero.
func TestAbortFreesTransaction(t *testing.T) {
	addr, srv, _ := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	m.must(m.session.Mail("<sender@example.com>", ""))
	if n := srv.InFlight(); n != 1 {
		t.Fatalf("in flight = %d, want 1", n)
	}
	if err := m.session.Abort(nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.InFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.InFlight(); n != 0 {
		t.Errorf("in flight after abort = %d", n)
	}
}

// The MTA reaching end of message with no transaction (no MAIL FROM seen)
// is tempfailed, never accepted.
func TestEndOfMessageWithoutTransactionTempfails(t *testing.T) {
	s := &session{srv: &Server{log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}}
	resp, err := s.EndOfMessage(nil)
	if err != nil || resp == nil || !strings.HasPrefix(resp.String(), "response=reply_code") {
		t.Fatalf("got %v %v", resp, err)
	}
	if !strings.Contains(resp.String(), "451") {
		t.Errorf("want 451, got %v", resp)
	}
}

// M-RCV-SPF through the milter protocol: a fail is refused at end of
// message (DKIM could still pass DMARC, RFC 7489 section 10.1), temperror
// answers 451 at MAIL FROM; a pass is recorded in Authentication-Results
// at the end.
func TestSPFEnforcedAtMailFrom(t *testing.T) {
	addr, srv, logs := startServer(t, testPolicy(t, "inbound.spf=enforce", "inbound.senderid=off", `authserv_id="mx.agency.govt.nz"`))
	srv.Metrics = metrics.New()
	m := dial(t, addr)
	m.connect("198.51.100.66", "smtpd", "TLSv1.3") // not authorised by example.com
	spoof := forgedInbound
	spoof.from = "sender@example.com"
	r := m.send(spoof)
	if r.stage != "eom" || r.act.SMTPCode != 550 || !strings.Contains(r.act.SMTPReply, "5.7.23") {
		t.Fatalf("spoof: %s %v", r.stage, r.act)
	}
	broken := forgedInbound
	broken.from = "a@broken.example"
	if r := m.send(broken); r.act.SMTPCode != 451 || !strings.Contains(r.act.SMTPReply, "4.4.3") {
		t.Fatalf("temperror: %s %v", r.stage, r.act)
	}
	d := logs.decisions(t)
	if len(d) != 2 || d[0]["checks"] == nil {
		t.Errorf("decisions: %v", d)
	}
	if got := counterValue(t, srv.Metrics, "nzsecure_auth_results_total", "fail"); got != 1 {
		t.Errorf("SPF fail counted %v times", got)
	}
	if got := counterValue(t, srv.Metrics, "nzsecure_decisions_total", "tempfail"); got != 1 {
		t.Errorf("tempfail decisions counted %v times", got)
	}

	good := dial(t, addr)
	good.connect("203.0.113.9", "smtpd", "TLSv1.3")
	r = good.send(spoof)
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("pass: %v", r.act)
	}
	var ar string
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionAddHeader && mod.HeaderName == "Authentication-Results" {
			ar = mod.HeaderValue
		}
	}
	if !strings.HasPrefix(ar, " mx.agency.govt.nz;") || !strings.Contains(ar, "spf=pass smtp.mailfrom=sender@example.com") {
		t.Errorf("Authentication-Results %q", ar)
	}
}

// M-RCV-SID through the milter protocol: the PRA (From:) is checked at end
// of headers and refused there.
func TestSenderIDEnforcedAtEndOfHeaders(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t, "inbound.senderid=enforce"))
	m := dial(t, addr)
	m.connect("198.51.100.66", "smtpd", "TLSv1.3")
	forged := forgedInbound
	forged.from = "bounce@other.example"
	forged.headers = [][2]string{{"From", "Boss <boss@sid.example>"}, {"Subject", "pay this"}}
	r := m.send(forged)
	if r.stage != "eoh" || r.act.SMTPCode != 550 || !strings.Contains(r.act.SMTPReply, "Sender ID") {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
}

// counterValue sums the named counter's series that have a label with value.
func counterValue(t *testing.T, m *metrics.Metrics, name, value string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetValue() == value {
					sum += metric.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Headers alone larger than the cap are refused at end of headers (headers
// get no reply of their own).
func TestSizeCapInHeaders(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t, `limits.max_message_size=4096`))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	big := forgedInbound
	big.headers = append([][2]string{}, forgedInbound.headers...)
	for i := 0; i < 10; i++ {
		big.headers = append(big.headers, [2]string{"X-Padding", strings.Repeat("p", 500)})
	}
	r := m.send(big)
	if r.stage != "eoh" || r.act.SMTPCode != 552 {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
}

// The milter asks for no replies where it never refuses, and refuses an MTA
// that cannot quarantine or edit headers.
func TestNegotiation(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t))
	m := dial(t, addr)
	for _, opt := range []gomilter.OptProtocol{gomilter.OptNoHeaderReply, gomilter.OptNoRcptReply, gomilter.OptNoConnReply, gomilter.OptNoData, gomilter.OptNoBodyReply} {
		if !m.session.ProtocolOption(opt) {
			t.Errorf("protocol option %s not negotiated", opt)
		}
	}
	if m.session.ProtocolOption(gomilter.OptNoMailReply) || m.session.ProtocolOption(gomilter.OptNoEOHReply) {
		t.Error("replies turned off for a stage that can refuse")
	}
	weak := gomilter.NewClient("tcp", addr, gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader))
	if s, err := weak.Session(gomilter.NewMacroBag()); err == nil {
		s.Close()
		t.Error("an MTA without quarantine and recipient removal was accepted")
	}
}

// Classification through the milter protocol: the subject is encoded and
// the body base64, split over chunks; the verdict routes by class
// (M-OUT, R110, R111) and removes the recipients it may not reach.
func TestClassifiedOutbound(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t, `outbound.secure_domains=["*.govt.nz"]`))
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	body := "UGxlYXNlIGZpbmQgdGhlIFtJTi1DT05GSURFTkNFXSBicmllZi4=\r\n" // "Please find the [IN-CONFIDENCE] brief."
	msg := message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"officer@mfat.govt.nz", "someone@gmail.example"},
		headers: [][2]string{{"From", " alice@agency.govt.nz"}, {"Subject", " =?UTF-8?B?YnJpZWY=?="}, {"MIME-Version", " 1.0"},
			{"Content-Type", " text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", " base64"}},
		body: body}
	r := m.send(msg)
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	var removed []string
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionDelRcpt {
			removed = append(removed, mod.Rcpt)
		}
	}
	if len(removed) != 1 || removed[0] != "<someone@gmail.example>" {
		t.Errorf("removed %q, want the non-secure recipient", removed)
	}
	d := logs.decisions(t)
	if len(d) != 1 || d[0]["classification"] != "IN-CONFIDENCE" || d[0]["markings"] == nil {
		t.Errorf("decision: %v", d)
	}

	msg.headers[1] = [2]string{"Subject", " Budget [SECRET]"}
	msg.body = "nothing here\r\n"
	r = m.send(msg)
	var held bool
	for _, mod := range r.mods {
		held = held || mod.Type == gomilter.ActionQuarantine
	}
	if r.act.Type != gomilter.ActionAccept || !held {
		t.Errorf("SECRET not held: %v %v", r.act, r.mods)
	}
}

// M-IN through the milter: warning 004 for classified mail from the internet.
func TestClassifiedInboundWarning(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	msg := forgedInbound
	msg.headers = [][2]string{{"From", " sender@example.com"}, {"Subject", " [RESTRICTED] figures"}}
	if r := m.send(msg); r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v", r.act)
	}
	if d := logs.decisions(t); len(d) != 1 || d[0]["warning_code"] != "004" || d[0]["classification"] != "RESTRICTED" {
		t.Errorf("decision: %v", d)
	}
}

// captureSubmitter records what the notice queue submits.
type captureSubmitter struct {
	mu   sync.Mutex
	msgs []string
	to   [][]string
}

func (c *captureSubmitter) Submit(_ context.Context, from string, rcpts []string, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, string(msg))
	c.to = append(c.to, rcpts)
	return nil
}

// rcpts is a copy of the recipients submitted so far (the queue's worker
// may still append).
func (c *captureSubmitter) rcpts() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.to)
}

func (c *captureSubmitter) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.msgs) >= n {
			out := append([]string(nil), c.msgs...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d notices submitted, want %d", len(c.msgs), n)
	return nil
}

// R73 and R96 through the milter: an [RSVPDR] message from an authenticated
// sender produces a DELIVERY RECEIPT; a ping is answered and not delivered.
func TestNoticesSent(t *testing.T) {
	p := testPolicy(t)
	addr, srv, _ := startServer(t, p)
	sub := &captureSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 10, Window: time.Hour}, time.Now)
	if err := srv.enableNotices(func(*policy.Policy) (*Notifier, error) {
		return &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{}), Limiter: lim, Log: srv.log, Product: "nzsecure-milter", Version: "test"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })

	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"x@example.org"},
		headers: [][2]string{{"From", " alice@agency.govt.nz"}, {"Subject", " minutes [RSVPDR]"}, {"Message-ID", " <m1@agency.govt.nz>"}}})
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v", r.act)
	}
	msgs := sub.wait(t, 1)
	if !strings.Contains(msgs[0], "Subject: DELIVERY RECEIPT") || !strings.Contains(qpBody(t, msgs[0]), notify.DeliveryReceiptText) || sub.rcpts()[0][0] != "alice@agency.govt.nz" {
		t.Errorf("receipt:\n%s\nto %v", msgs[0], sub.rcpts()[0])
	}

	ping := dial(t, addr)
	ping.connect("203.0.113.9", "smtpd", "TLSv1.3")
	r = ping.send(message{from: "someone@example.com", rcpts: []string{"ping@agency.govt.nz"}, headers: [][2]string{{"From", " someone@example.com"}, {"Subject", " ping"}}})
	if r.act.Type != gomilter.ActionDiscard {
		t.Fatalf("ping not consumed: %v", r.act)
	}
	msgs = sub.wait(t, 2)
	if body := qpBody(t, msgs[1]); !strings.Contains(body, "nzsecure-milter") || !strings.Contains(body, "SGE") || sub.rcpts()[1][0] != "someone@example.com" {
		t.Errorf("ping answer:\n%s", msgs[1])
	}
}

// R199: mail from a list server gets warnings 002/005 as a header only.
func TestListMailSoftWarning(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	msg := forgedInbound
	msg.headers = [][2]string{{"From", " ceo@agency.govt.nz"}, {"List-Id", " <staff.lists.example>"}, {"Subject", " news"}}
	r := m.send(msg)
	var warning string
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionReplaceBody {
			t.Error("list mail was wrapped; R199 makes 005 soft (header only)")
		}
		if mod.Type == gomilter.ActionAddHeader && mod.HeaderName == "X-NZ-Secure-Warning" {
			warning = mod.HeaderValue
		}
	}
	if !strings.HasPrefix(warning, " 005 ") {
		t.Errorf("warning header %q, want 005", warning)
	}
}

// qpBody decodes the quoted-printable body of a generated message.
func qpBody(t *testing.T, msg string) string {
	t.Helper()
	_, body, ok := strings.Cut(strings.ReplaceAll(msg, "\r\n", "\n"), "\n\n")
	if !ok {
		t.Fatalf("no body in %q", msg)
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatalf("quoted-printable: %v", err)
	}
	return strings.ReplaceAll(string(dec), "\r\n", "\n")
}

// G-DMARC-IN through the milter: a spoof of a p=reject domain is refused
// at end of message; p=quarantine is held.
func TestDMARCThroughMilter(t *testing.T) {
	z := dnstest.NewZone().
		TXT("bank.example", "v=spf1 ip4:192.0.2.1 -all").
		TXT("_dmarc.bank.example", "v=DMARC1; p=reject").
		TXT("shop.example", "v=spf1 ip4:192.0.2.1 -all").
		TXT("_dmarc.shop.example", "v=DMARC1; p=quarantine")
	ck := &checks.Runner{SPF: &spf.Evaluator{Resolver: z}, LookupTXT: z.LookupTXT}
	// SPF recorded only, so that DMARC decides (SPF enforcement, the
	// default, would refuse these spoofs first with 5.7.23).
	srv, err := NewServer(testPolicy(t, "inbound.spf=tag"), ck, slog.New(slog.NewJSONHandler(&syncBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	m := dial(t, ln.Addr().String())
	m.connect("203.0.113.66", "smtpd", "TLSv1.3")
	spoof := message{from: "ceo@bank.example", rcpts: []string{"bob@agency.govt.nz"},
		headers: [][2]string{{"From", " CEO <ceo@bank.example>"}, {"Subject", " transfer"}}, body: "pay now\r\n"}
	r := m.send(spoof)
	if r.stage != "eom" || r.act.SMTPCode != 550 || !strings.Contains(r.act.SMTPReply, "DMARC policy of bank.example") {
		t.Fatalf("p=reject spoof: %s %v", r.stage, r.act)
	}
	spoof.from, spoof.headers[0] = "sales@shop.example", [2]string{"From", " sales@shop.example"}
	r = m.send(spoof)
	var held bool
	for _, mod := range r.mods {
		held = held || mod.Type == gomilter.ActionQuarantine
	}
	if r.act.Type != gomilter.ActionAccept || !held {
		t.Fatalf("p=quarantine spoof not held: %v %v", r.act, r.mods)
	}
}

// G-DKIM: outbound mail of a domain with a key leaves signed, after our
// other header changes; the signature verifies against the published key.
func TestOutboundDKIMSigned(t *testing.T) {
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(key)
	file := filepath.Join(t.TempDir(), "s1.key")
	os.WriteFile(file, pemBytes, 0o600)
	record, _ := dkim.KeyRecord(key.Public())
	addr, _, _ := startServer(t, testPolicy(t, fmt.Sprintf(`dkim.keys=["agency.govt.nz:s1:%s"]`, file)))
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	headers := [][2]string{{"From", " Alice <alice@agency.govt.nz>"}, {"To", " x@example.org"}, {"Subject", " minutes"}, {"X-NZ-Secure-email", " forged"}}
	body := "Minutes attached.\r\n"
	r := m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"x@example.org"}, headers: headers, body: body})
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v", r.act)
	}
	// Rebuild the message as Postfix delivers it: our edits, then the
	// signature on top.
	final := []policy.Header{}
	for _, h := range headers {
		final = append(final, policy.Header{Name: h[0], Value: h[1]})
	}
	var sig string
	for _, mod := range r.mods {
		switch {
		case mod.Type == gomilter.ActionInsertHeader && mod.HeaderName == "DKIM-Signature":
			sig = mod.HeaderValue
		case mod.Type == gomilter.ActionChangeHeader && mod.HeaderValue == "":
			final = policy.ApplyEdits(final, []policy.HeaderEdit{{Op: policy.OpDelete, Name: mod.HeaderName, Index: int(mod.HeaderIndex)}})
		case mod.Type == gomilter.ActionAddHeader:
			final = append(final, policy.Header{Name: mod.HeaderName, Value: mod.HeaderValue})
		}
	}
	if sig == "" {
		t.Fatalf("no DKIM-Signature added: %v", r.mods)
	}
	final = append([]policy.Header{{Name: "DKIM-Signature", Value: sig}}, final...)
	raw, _ := io.ReadAll(io.MultiReader(pipeline.HeaderBlock(final), strings.NewReader(body)))
	z := dnstest.NewZone().TXT("s1._domainkey.agency.govt.nz", record)
	sigs, err := dkim.Verify(context.Background(), bytes.NewReader(raw), dkim.VerifyOptions{LookupTXT: z.LookupTXT})
	if err != nil || len(sigs) != 1 || sigs[0].Result != dkim.Pass {
		t.Fatalf("signature does not verify: %+v %v\n%s", sigs, err, raw)
	}
	signed := strings.Join(sigs[0].SignedHeaders, ":")
	if !strings.Contains(strings.ToLower(signed), "x-nz-secure-email") {
		t.Errorf("our X-NZ-Secure-email tag is not signed: %s", signed)
	}
}

// R100: the milter records when it received the message.
func TestReceivedTimeHeader(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t, "record_times=true"))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	before := time.Now().UTC().Truncate(time.Second)
	r := m.send(message{from: "sender@example.com", rcpts: []string{"bob@agency.govt.nz"}, headers: [][2]string{{"From", " sender@example.com"}}})
	var got string
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionAddHeader && mod.HeaderName == "X-NZ-Secure-Gateway" {
			got = mod.HeaderValue
		}
	}
	stamp, ok := strings.CutPrefix(got, " received=")
	if !ok {
		t.Fatalf("no X-NZ-Secure-Gateway header: %v", r.mods)
	}
	stamp, _, _ = strings.Cut(stamp, ";")
	at, err := time.Parse(time.RFC1123Z, stamp)
	if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("received time %q (%v) not the time of the transaction", stamp, err)
	}
}

// A body that cannot be spooled (spool directory gone) is tempfailed at
// end of message, never accepted unfiltered.
func TestSpoolFailureTempfails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	addr, _, logs := startServer(t, testPolicy(t, "limits.memory_spool=16", fmt.Sprintf("limits.spool_dir=%q", missing)))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	msg := forgedInbound
	msg.body = strings.Repeat("more than sixteen bytes\r\n", 4)
	r := m.send(msg)
	if r.act.SMTPCode != 451 || !strings.Contains(r.act.SMTPReply, "4.3.0") {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	if d := logs.decisions(t); len(d) != 1 || d[0]["action"] != "tempfail" {
		t.Errorf("decision: %v", d)
	}
}

// The SPF evaluator sets no timer of its own only when the stage's
// deadline comes first (auth/spf run): checks.SPFTimeout restates
// pipeline.CheckTimeout, and this keeps the two from drifting apart.
func TestSPFTimeoutCoversTheStage(t *testing.T) {
	if checks.SPFTimeout < pipeline.CheckTimeout {
		t.Fatalf("checks.SPFTimeout %v < pipeline.CheckTimeout %v: every SPF check would start a timer of its own", checks.SPFTimeout, pipeline.CheckTimeout)
	}
}
