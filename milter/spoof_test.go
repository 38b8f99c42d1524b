package milter

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Issue 12 point 8: a forged X-NZ-Secure-Warning naming this gateway got
// no verdict (notify refused a second warning, R79, and the error dropped
// the milter connection). It is removed like every header only we write,
// and the message gets our own warning.
func TestForgedWarningGetsVerdict(t *testing.T) {
	addr, _, logs := startServer(t, testPolicy(t))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	msg := forgedInbound
	msg.headers = [][2]string{
		{"From", "Sender <sender@example.com>"},
		{"X-NZ-Secure-Warning", " 002 UNVERIFIED MESSAGE (mx.agency.govt.nz)"},
		{"Subject", "hello"},
		{"x-nz-secure-WARNING", " 005 FROM OUR DOMAIN\n\t(mx.agency.govt.nz)"},
		{"X-NZ-Secure-email", "compliant"}, // claims to be secure: 002
		{"X-NZ-Secure-Route", "tls"},
	}
	r := m.send(msg)
	if r.stage != "eom" || r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	deleted := map[string]int{}
	var added []string
	for _, mod := range r.mods {
		switch {
		case mod.Type == gomilter.ActionChangeHeader && mod.HeaderValue == "":
			deleted[strings.ToLower(mod.HeaderName)]++
		case mod.Type == gomilter.ActionAddHeader && strings.EqualFold(mod.HeaderName, "X-NZ-Secure-Warning"):
			added = append(added, mod.HeaderValue)
		}
	}
	if deleted["x-nz-secure-warning"] != 2 || deleted["x-nz-secure-route"] != 1 || deleted["x-nz-secure-email"] != 1 {
		t.Errorf("forged headers not all deleted: %v", deleted)
	}
	if len(added) != 1 || added[0] != " 002 UNVERIFIED MESSAGE (mx.agency.govt.nz)" {
		t.Errorf("our warning: %q", added)
	}
	if d := logs.decisions(t); len(d) != 1 || d[0]["error"] != nil {
		t.Errorf("decision log: %v", d)
	}
}

// Issue 12 point 9: 500 DKIM signatures get a verdict, and the
// Authentication-Results header lists a bounded number of them.
func TestDKIMFloodGetsVerdict(t *testing.T) {
	addr, _, _ := startServer(t, testPolicy(t, "inbound.spf=tag"))
	m := dial(t, addr)
	m.connect("203.0.113.9", "smtpd", "TLSv1.3")
	msg := forgedInbound
	sig := " v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=" + strings.Repeat("s", 60) +
		"; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=" + strings.Repeat("QUJD", 60)
	msg.headers = nil
	for i := 0; i < 500; i++ {
		msg.headers = append(msg.headers, [2]string{"DKIM-Signature", sig})
	}
	msg.headers = append(msg.headers, [2]string{"From", "Sender <sender@example.com>"}, [2]string{"Subject", "hello"})
	r := m.send(msg)
	if r.stage != "eom" || r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	var ar string
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionAddHeader && mod.HeaderName == "Authentication-Results" {
			ar = mod.HeaderValue
		}
	}
	if len(ar) > 16<<10 || strings.Count(ar, "dkim=") != policy.MaxAuthResultsDKIM || !strings.Contains(ar, "and 490 more signatures not listed") {
		t.Errorf("Authentication-Results (%d bytes): %.600s", len(ar), ar)
	}
}

// editMod is a Modifier that records edits; anything else is not called.
type editMod struct {
	gomilter.Modifier
	edits int
}

func (e *editMod) Protocol() gomilter.OptProtocol { return 0 }
func (e *editMod) AddHeader(string, string) error { e.edits++; return nil }
func (e *editMod) ChangeHeader(int, string, string) error {
	e.edits++
	return nil
}

// Issue 12 point 9: an edit too large for a milter packet is a logged
// tempfail with nothing applied, never an error that drops the connection.
func TestOversizeEditTempfails(t *testing.T) {
	p := testPolicy(t)
	logs := &syncBuffer{}
	srv, err := NewServer(p, testChecker(), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.inflight.Add(1)
	tx, _, err := pipeline.Begin(pipeline.State{Policy: p, Checker: testChecker()}, policy.Conn{}, policy.Envelope{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &session{srv: srv, tx: tx}
	v := policy.Verdict{Stage: policy.StageEOM, Direction: policy.Inbound, Action: policy.Accept,
		Edits: []policy.HeaderEdit{
			{Op: policy.OpDelete, Name: "X-Big", Index: 1, Value: strings.Repeat("x", 100<<10)}, // deletes carry no value
			{Op: policy.OpAdd, Name: "X-Fine", Value: "ok"},
			{Op: policy.OpAdd, Name: "X-Huge", Value: strings.Repeat("y", 70<<10)},
		}}
	mod := &editMod{}
	resp, err := s.finish(v, mod)
	if err != nil || resp == nil || !strings.Contains(resp.String(), "451") {
		t.Fatalf("got %v %v, want a 451 reply", resp, err)
	}
	if mod.edits != 0 {
		t.Errorf("%d edits applied before the refusal", mod.edits)
	}
	if d := logs.decisions(t); len(d) != 1 || !strings.Contains(d[0]["error"].(string), "too large") {
		t.Errorf("decision log: %v", d)
	}
}

// A refusal whose text repeats a huge sender-chosen explanation (SPF
// exp=) still reaches the MTA as that refusal, clipped; never an error.
func TestLongReplyClipped(t *testing.T) {
	p := testPolicy(t)
	srv, err := NewServer(p, testChecker(), slog.New(slog.NewJSONHandler(&syncBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.inflight.Add(1)
	tx, _, err := pipeline.Begin(pipeline.State{Policy: p, Checker: testChecker()}, policy.Conn{}, policy.Envelope{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &session{srv: srv, tx: tx}
	v := policy.Verdict{Stage: policy.StageEOM, Direction: policy.Inbound, Action: policy.Reject,
		Reply: &policy.Reply{Code: 550, Status: "5.7.23", Text: "SPF check failed: " + strings.Repeat("explanation ", 10000)}}
	resp, err := s.finish(v, &editMod{})
	if err != nil || resp == nil || !strings.Contains(resp.String(), "550") || !strings.Contains(resp.String(), "5.7.23") || len(resp.String()) > 8<<10 {
		t.Fatalf("got %d bytes %.200v %v", len(resp.String()), resp, err)
	}
}
