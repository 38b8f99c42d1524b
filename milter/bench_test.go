package milter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// BenchmarkLogDecision is the one JSON decision line serve writes per
// message (logDecision), for an inbound message from example.com (SPF
// pass by the test zone, no DKIM signature) with the default policy.
func BenchmarkLogDecision(b *testing.B) {
	p, err := policy.Load("", []string{`domains=["agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`, `internal_networks=[]`})
	if err != nil {
		b.Fatal(err)
	}
	st, err := pipeline.NewState(p, testChecker())
	if err != nil {
		b.Fatal(err)
	}
	conn := policy.Conn{ClientIP: netip.MustParseAddr("203.0.113.9"), ClientName: "mail.example.com", HELO: "mail.example.com", Daemon: "smtpd",
		TLS: policy.TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", CipherBits: 256}}
	tx, v, err := pipeline.Begin(st, conn, policy.Envelope{From: "sender@example.com"}, time.Now())
	if err != nil || v.Final() {
		b.Fatalf("begin: %v %v", v.Action, err)
	}
	defer tx.Close()
	tx.Rcpt("bob@agency.govt.nz")
	tx.SetQueueID("4ABC123")
	for _, h := range [][2]string{{"From", " Sender <sender@example.com>"}, {"To", " bob@agency.govt.nz"}, {"Subject", " [IN-CONFIDENCE] figures"},
		{"Message-ID", " <1@example.com>"}, {"MIME-Version", " 1.0"}, {"Content-Type", " text/plain; charset=utf-8"}} {
		tx.Header(h[0], h[1])
	}
	tx.EndOfHeaders()
	tx.BodyChunk([]byte(strings.Repeat("The figures for the quarter.\r\n", 40)))
	v = tx.EndOfMessage()
	s := &session{srv: &Server{log: slog.New(jsonlog.New(io.Discard, nil))}, conn: conn, tx: tx}
	b.ReportAllocs()
	for b.Loop() {
		s.logDecision(v, nil)
	}
}

// BenchmarkSessionInbound is one SMTP connection's milter conversation as
// Postfix holds it for an inbound message (connect, HELO, MAIL, RCPT,
// DATA, headers, body, end of message, quit) against a Server on loopback
// with the default policy and the in-memory test zone, the decision line
// written to io.Discard: the milter's own CPU per message that
// bench/throughput.sh measures against Postfix (issue 13 point 7), without
// Postfix. The client's side of the protocol is in the figure too;
// BenchmarkSessionNoop is the same conversation with a no-op milter of the
// same protocol options (bench/noopmilter's floor), so the difference of
// the two is what nzsecure-milter adds.
func BenchmarkSessionInbound(b *testing.B) {
	sets := []string{`internal_networks=[]`}
	if e := os.Getenv("NZ_BENCH_SETS"); e != "" {
		sets = append(sets, strings.Split(e, ";")...)
	}
	p := testPolicy(b, sets...)
	srv, err := NewServer(p, testChecker(), slog.New(jsonlog.New(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	benchSessions(b, srv.Serve, func(ctx context.Context) { _ = srv.Shutdown(ctx) })
}

func BenchmarkSessionNoop(b *testing.B) {
	srv := gomilter.NewServer(serverOptions(func() gomilter.Milter { return gomilter.NoOpMilter{} })...)
	benchSessions(b, srv.Serve, func(context.Context) { _ = srv.Close() })
}

// benchSessions serves on a loopback port and runs one session per
// iteration.
func benchSessions(b *testing.B, serve func(net.Listener) error, stop func(context.Context)) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stop(ctx)
	}()
	msg := message{
		from:  "sender@example.com",
		rcpts: []string{"bob@agency.govt.nz"},
		headers: [][2]string{{"From", " Sender <sender@example.com>"}, {"To", " bob@agency.govt.nz"}, {"Subject", " figures"},
			{"Date", " Tue, 1 Dec 2026 10:00:00 +1300"}, {"Message-ID", " <1@example.com>"}},
		body: strings.Repeat("The figures for the quarter are in the attached table.\r\n", 36),
	}
	b.ReportAllocs()
	// CPU time of the process (both ends of the conversation) per
	// session: steadier than wall time on a loaded machine, and the
	// client's share is the same for both servers.
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	defer func() {
		var after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	for b.Loop() {
		m := dial(b, ln.Addr().String())
		m.connect("203.0.113.9", "smtpd", "TLSv1.3")
		if r := m.send(msg); r.stage != "eom" || r.act.Type != gomilter.ActionAccept && r.act.Type != gomilter.ActionContinue {
			b.Fatalf("ended at %s: %+v", r.stage, r.act)
		}
		m.session.Close()
	}
}
