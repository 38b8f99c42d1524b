package milter

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Outbound S/MIME through the milter (issue 14 point 3): the extra
// copies are submitted and the held recipients Put before the reply;
// their recipients are deleted from the MTA's transaction; a failure
// tempfails the whole transaction; nothing left means discard.

const smimeFx = "../testdata/smime/"

type memHold struct {
	mu   sync.Mutex
	held []pipeline.HeldMessage
	fail error
}

func (h *memHold) Put(_ context.Context, m pipeline.HeldMessage, r io.Reader) (string, error) {
	if h.fail != nil {
		return "", h.fail
	}
	if _, err := io.ReadAll(r); err != nil {
		return "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, m)
	return "H" + string(rune('0'+len(h.held))), nil
}

// failingSubmitter fails copies (synchronous) and records nothing.
type failingSubmitter struct{}

func (failingSubmitter) Submit(context.Context, string, []string, []byte) error {
	return errors.New("sendmail: exit 75")
}

// smimeServer: we are agency-a.govt.nz; agency-b has a valid certificate,
// agency-e an expired one (201). copies and notices go to their
// submitters.
func smimeServer(t *testing.T, copies notify.Submitter) (string, *captureSubmitter, *memHold) {
	t.Helper()
	dir := t.TempDir()
	p := testPolicy(t, `profile="seemail"`, `domains=["agency-a.govt.nz"]`,
		`outbound.seemail_domains=["agency-b.govt.nz", "agency-e.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:`+smimeFx+`agency-a-new.crt:`+smimeFx+`agency-a-new.key"]`,
		`smime.trust_anchors=["`+smimeFx+`ca.crt"]`, `smime.peers="`+filepath.Join(dir, "peers")+`"`, `smime.crl_check=false`)
	addr, srv, _ := startServer(t, p)
	st := srv.state.Load()
	for _, f := range [][2]string{{"agency-b.govt.nz", "agency-b.crt"}, {"agency-e.govt.nz", "expired.crt"}} {
		data, err := os.ReadFile(smimeFx + f[1])
		if err != nil {
			t.Fatal(err)
		}
		certs, _ := smime.ParseCertificatesPEM(data)
		if _, err := st.SMIME.Store.Add(f[0], certs[0]); err != nil {
			t.Fatal(err)
		}
	}
	hold := &memHold{}
	notices := &captureSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 10, Window: time.Hour}, time.Now)
	if copies == nil {
		copies = notices
	}
	if err := srv.enableNotices(func(*policy.Policy) (*Notifier, error) {
		return &Notifier{Queue: notify.NewQueue(notices, notify.QueueConfig{}), Limiter: lim, Log: srv.log, Submitter: copies}, nil
	}); err != nil {
		t.Fatal(err)
	}
	srv.state.Load().Hold = hold // before any session: the state is read at MAIL FROM
	t.Cleanup(func() { srv.CloseNotices(context.Background()) })
	return addr, notices, hold
}

func smimeMessage(rcpts ...string) message {
	return message{auth: "ann", from: "ann@agency-a.govt.nz", rcpts: rcpts,
		headers: [][2]string{{"From", " ann@agency-a.govt.nz"}, {"Subject", " lunch"}, {"Content-Type", " text/plain"}},
		body:    "See you at noon.\r\n"}
}

func deleted(mods []gomilter.ModifyAction) []string {
	var out []string
	for _, m := range mods {
		if m.Type == gomilter.ActionDelRcpt {
			out = append(out, strings.Trim(m.Rcpt, "<>"))
		}
	}
	return out
}

func TestSMIMECopiesThroughMilter(t *testing.T) {
	addr, sub, hold := smimeServer(t, nil)
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := m.send(smimeMessage("bob@agency-b.govt.nz", "x@internet.example", "eve@agency-e.govt.nz"))
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %v", r.act)
	}
	if got := deleted(r.mods); !slices.Equal(got, []string{"bob@agency-b.govt.nz", "eve@agency-e.govt.nz"}) {
		t.Errorf("deleted recipients %v, want the S/MIME and the held one", got)
	}
	for _, md := range r.mods {
		if md.Type == gomilter.ActionReplaceBody {
			t.Errorf("the plain form's body was replaced")
		}
	}
	// Synchronous: the copy was submitted and the hold Put before the reply.
	sub.mu.Lock()
	if len(sub.to) < 1 || !slices.Equal(sub.to[0], []string{"bob@agency-b.govt.nz"}) || !strings.Contains(sub.msgs[0], "application/pkcs7-mime") {
		t.Errorf("first submission %v", sub.to)
	}
	sub.mu.Unlock()
	if len(hold.held) != 1 || hold.held[0].Code != "201" || !slices.Equal(hold.held[0].Envelope.Rcpts, []string{"eve@agency-e.govt.nz"}) {
		t.Errorf("held %+v", hold.held)
	}
	// Then the two SECURE DELIVERY DELAYED notices through the queue, in
	// no fixed order with the other notices (a certificate request to
	// agency-e, R44, goes out the first time in a process).
	var delayed []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sub.mu.Lock()
		delayed = delayed[:0]
		for i, msg := range sub.msgs {
			if i > 0 && strings.Contains(msg, "Subject: SECURE DELIVERY DELAYED [Code: 201]") {
				delayed = append(delayed, sub.to[i][0])
			}
		}
		sub.mu.Unlock()
		if len(delayed) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	slices.Sort(delayed)
	if !slices.Equal(delayed, []string{"ann@agency-a.govt.nz", "postmaster@agency-a.govt.nz"}) {
		t.Errorf("SECURE DELIVERY DELAYED notices to %v", delayed)
	}

	// Only a peer: the MTA's own transaction carries the S/MIME form.
	m2 := dial(t, addr)
	m2.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r = m2.send(smimeMessage("bob@agency-b.govt.nz"))
	replaced := false
	for _, md := range r.mods {
		replaced = replaced || md.Type == gomilter.ActionReplaceBody
	}
	if r.act.Type != gomilter.ActionAccept || !replaced || len(deleted(r.mods)) != 0 {
		t.Errorf("peer only: %v, body replaced %v, deleted %v", r.act, replaced, deleted(r.mods))
	}

	// Only held recipients: discarded after the Put.
	m3 := dial(t, addr)
	m3.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r = m3.send(smimeMessage("eve@agency-e.govt.nz"))
	if r.act.Type != gomilter.ActionDiscard || len(hold.held) != 2 {
		t.Errorf("all held: %v, %d held", r.act, len(hold.held))
	}
}

// A copy that cannot be submitted, or a hold that fails, tempfails the
// whole transaction: the MTA keeps the message, nothing is lost.
func TestSMIMECopyFailureTempfails(t *testing.T) {
	addr, _, _ := smimeServer(t, failingSubmitter{})
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := m.send(smimeMessage("bob@agency-b.govt.nz", "x@internet.example"))
	if r.act.Type != gomilter.ActionRejectWithCode || r.act.SMTPCode != 451 || len(deleted(r.mods)) != 0 {
		t.Errorf("failed copy: %v %+v", r.act, r.mods)
	}
	addr, _, hold := smimeServer(t, nil)
	hold.fail = errors.New("disk full")
	m = dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r = m.send(smimeMessage("eve@agency-e.govt.nz", "x@internet.example"))
	if r.act.Type != gomilter.ActionRejectWithCode || r.act.SMTPCode != 451 {
		t.Errorf("failed hold: %v", r.act)
	}
}

// R62: the notifier signs and encrypts a notice the engine marked for a
// peer agency, and drops it (never sends it in clear) when it cannot.
func TestSMIMENoticeSignedAndEncrypted(t *testing.T) {
	p, env, peer := peerSMIMEEnv(t)
	sub := &captureSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 10, Window: time.Hour}, time.Now)
	var logs syncBuffer
	n := &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{}), Limiter: lim, SMIME: env,
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	t.Cleanup(func() { n.Close(context.Background()) })
	tr := policy.Transform{Kind: policy.TransformSMIMESignEncrypt, Domain: "agency-b.govt.nz",
		Signer: smime.Fingerprint(env.Identities[0].Cert), Cert: smime.Fingerprint(peer), Cipher: "aes128-cbc"}
	v := policy.Verdict{Notices: []policy.Notice{
		{Kind: policy.NoticeReceipt, To: "bob@agency-b.govt.nz", Rcpts: []string{"ann@agency-a.govt.nz"}, Transforms: []policy.Transform{tr}},
		{Kind: policy.NoticeReceipt, To: "carl@agency-b.govt.nz", Rcpts: []string{"ann@agency-a.govt.nz"},
			Transforms: []policy.Transform{{Kind: policy.TransformSMIMESignEncrypt, Domain: "agency-b.govt.nz", Signer: "gone", Cert: tr.Cert}}},
	}}
	n.Send(p, v, policy.Envelope{From: "bob@agency-b.govt.nz", QueueID: "Q1"}, []policy.Header{{Name: "From", Value: "bob@agency-b.govt.nz"}, {Name: "Subject", Value: "[RSVPDR] x"}})
	msgs := sub.wait(t, 1)
	time.Sleep(100 * time.Millisecond)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.msgs) != 1 || sub.to[0][0] != "bob@agency-b.govt.nz" {
		t.Fatalf("submitted to %v, want bob only (carl's cannot be signed: dropped)", sub.to)
	}
	if !strings.Contains(msgs[0], "application/pkcs7-mime; smime-type=enveloped-data") || strings.Contains(msgs[0], notify.DeliveryReceiptText) {
		t.Errorf("receipt not encrypted:\n%s", msgs[0])
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if !strings.Contains(logs.b.String(), "cannot sign and encrypt notice; not sent") {
		t.Errorf("no log line for the dropped notice:\n%s", logs.b.String())
	}
}

// peerSMIMEEnv: we are agency-a.govt.nz under seemail with agency-a-new as
// our identity, and agency-b.govt.nz's certificate is in the peer store.
func peerSMIMEEnv(t *testing.T) (*policy.Policy, *pipeline.SMIMEEnv, *x509.Certificate) {
	t.Helper()
	p := testPolicy(t, `profile="seemail"`, `domains=["agency-a.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:`+smimeFx+`agency-a-new.crt:`+smimeFx+`agency-a-new.key"]`,
		`smime.trust_anchors=["`+smimeFx+`ca.crt"]`, `smime.peers="`+filepath.Join(t.TempDir(), "peers")+`"`, `smime.crl_check=false`)
	env, err := pipeline.NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(smimeFx + "agency-b.crt")
	certs, _ := smime.ParseCertificatesPEM(data)
	if _, err := env.Store.Add("agency-b.govt.nz", certs[0]); err != nil {
		t.Fatal(err)
	}
	return p, env, certs[0]
}
