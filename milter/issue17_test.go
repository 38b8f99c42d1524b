package milter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/firstcontact"
	"github.com/nzsecure-milter/nzsecure-milter/selftest"
)

// outboundTo sends an outbound message classified class to rcpt.
func outboundTo(m *mta, subject, rcpt string, extra ...[2]string) result {
	return m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{rcpt},
		headers: append([][2]string{{"From", " alice@agency.govt.nz"}, {"Subject", " " + subject}}, extra...)})
}

func quarantined(r result) bool {
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionQuarantine {
			return true
		}
	}
	return false
}

// Issue 17 point 1 through the milter: the address becomes known only
// once the milter accepted the message (not when it held it), and the
// store outlives a policy reload.
func TestFirstContactLearnedOnAccept(t *testing.T) {
	p := testPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="hold"`)
	addr, srv, _ := startServer(t, p)
	store, err := firstcontact.Open("", 10)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetKnown(store)
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := outboundTo(m, "[IN-CONFIDENCE] plan", "new@partner.example")
	if r.act.Type != gomilter.ActionAccept || !quarantined(r) {
		t.Fatalf("first contact: %s %v %v, want held", r.stage, r.act, r.mods)
	}
	if store.Known("new@partner.example") {
		t.Fatal("a held message made the address known")
	}
	// An unclassified message is never held and teaches nothing.
	if r := outboundTo(m, "lunch", "new@partner.example"); quarantined(r) || store.Known("new@partner.example") {
		t.Fatalf("unclassified: held %v, learned %v", quarantined(r), store.Known("new@partner.example"))
	}
	store.Add("new@partner.example") // approved
	if err := srv.SetPolicy(testPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="hold"`), testChecker()); err != nil {
		t.Fatal(err)
	}
	if r := outboundTo(m, "[IN-CONFIDENCE] plan", "new@partner.example"); r.act.Type != gomilter.ActionAccept || quarantined(r) {
		t.Fatalf("approved address after a reload: %v %v, want accepted", r.act, r.mods)
	}
	// Log mode: accepted and learned.
	if err := srv.SetPolicy(testPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="log"`), testChecker()); err != nil {
		t.Fatal(err)
	}
	if r := outboundTo(m, "[IN-CONFIDENCE] plan", "Other@PARTNER.example"); quarantined(r) || !store.Known("Other@partner.example") {
		t.Fatalf("log mode: held %v, learned %v", quarantined(r), store.Known("Other@partner.example"))
	}
}

// Issue 17 point 2: a verified self-test message is answered with its
// verdict and nothing is carried out; a forged one is refused.
func TestSelftestAnswered(t *testing.T) {
	p := testPolicy(t)
	addr, srv, logs := startServer(t, p)
	key := []byte(strings.Repeat("q", 32))
	srv.SetSelftestKey(key)
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := outboundTo(m, "[SECRET] self-test", "x@gmail.example", [2]string{selftest.Header, " " + selftest.Token(key, "outbound-secret", time.Now())})
	if r.act.Type != gomilter.ActionRejectWithCode || r.act.SMTPCode != 550 {
		t.Fatalf("selftest message: %v, want a 550", r.act)
	}
	if !strings.Contains(r.act.SMTPReply, `5.7.0 selftest outbound-secret: action=quarantine classification="SECRET"`) {
		t.Errorf("reply %q does not report the hold", r.act.SMTPReply)
	}
	if len(r.mods) != 0 {
		t.Errorf("modifications %v for a self-test message, want none", r.mods)
	}
	logs.mu.Lock()
	logged := logs.b.String()
	logs.mu.Unlock()
	if !strings.Contains(logged, `"msg":"selftest decision (not acted on)"`) {
		t.Error("no selftest decision logged")
	}
	// Another key, and no key at all: refused unverified, never acted on.
	r = outboundTo(m, "[SECRET] self-test", "x@gmail.example", [2]string{selftest.Header, " " + selftest.Token([]byte(strings.Repeat("z", 32)), "outbound-secret", time.Now())})
	if r.act.Type != gomilter.ActionRejectWithCode || !strings.Contains(r.act.SMTPReply, "5.7.0 selftest token not valid") || len(r.mods) != 0 {
		t.Errorf("forged token: %v %v", r.act, r.mods)
	}
	srv.SetSelftestKey(nil)
	r = outboundTo(m, "hello", "x@gmail.example", [2]string{selftest.Header, " " + selftest.Token(key, "ping", time.Now())})
	if r.act.Type != gomilter.ActionRejectWithCode || !strings.Contains(r.act.SMTPReply, "no selftest key") {
		t.Errorf("no key: %v, want refused", r.act)
	}
}

// selftest --peers: a peer gateway's answer to our ping address is
// recorded for the selftest client; mail from other domains is not.
func TestPeerPingAnswerRecorded(t *testing.T) {
	dir := t.TempDir()
	p := testPolicy(t, `selftest.peers=["ping@peer.example"]`, `selftest.key_file="`+filepath.Join(dir, "selftest.key")+`"`)
	addr, _, _ := startServer(t, p)
	m := dial(t, addr)
	m.connect("203.0.113.50", "", "TLSv1.3")
	answer := func(from string) result {
		return m.send(message{from: from, rcpts: []string{"ping@agency.govt.nz"},
			headers: [][2]string{{"From", " " + from}, {"Subject", " Re: nzsecure-milter peer ping"},
				{"Content-Type", ` multipart/signed; protocol="application/pkcs7-signature"; boundary=b`}}})
	}
	answer("postmaster@stranger.example")
	if _, err := os.Stat(filepath.Join(dir, "peer-answers", "stranger.example.json")); err == nil {
		t.Error("an answer from a domain not pinged was recorded")
	}
	answer("postmaster@peer.example")
	a, err := selftest.ReadAnswer(p.PeerAnswersDir(), "peer.example")
	if err != nil {
		t.Fatalf("answer not recorded: %v", err)
	}
	if a.From != "postmaster@peer.example" || !a.Signed || time.Since(a.Received) > time.Minute {
		t.Errorf("recorded %+v", a)
	}
}
