package milter

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

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
	s := &session{srv: &Server{log: slog.New(slog.NewJSONHandler(io.Discard, nil))}, conn: conn, tx: tx}
	b.ReportAllocs()
	for b.Loop() {
		s.logDecision(v, nil)
	}
}
