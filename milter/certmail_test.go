package milter

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime/certmail"
)

type fromSubmitter struct {
	mu   sync.Mutex
	from []string
	to   [][]string
	msgs []string
}

func (s *fromSubmitter) Submit(_ context.Context, from string, rcpts []string, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.to, s.msgs = append(s.from, from), append(s.to, rcpts), append(s.msgs, string(msg))
	return nil
}

func (s *fromSubmitter) n() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }

// R44: the notifier builds the request (signed, from our DCA address as
// envelope sender so the answer can come back) and the answer (our valid
// DCA certificates, signed, null sender), each at most once per domain
// per smime.retry_interval; a notice it cannot sign is not sent.
func TestNotifierCertMail(t *testing.T) {
	p := testPolicy(t, `profile="seemail"`, `domains=["agency-a.govt.nz"]`,
		`smime.identities=["agency-a.govt.nz:`+smimeFx+`agency-a-new.crt:`+smimeFx+`agency-a-new.key","agency-a.govt.nz:`+smimeFx+`agency-a-old.crt:`+smimeFx+`agency-a-old.key"]`,
		`smime.trust_anchors=["`+smimeFx+`ca.crt"]`, `smime.peers="`+filepath.Join(t.TempDir(), "peers")+`"`, `smime.crl_check=false`,
		`smime.retry_interval="1h"`)
	env, err := pipeline.NewSMIMEEnv(p, true)
	if err != nil {
		t.Fatal(err)
	}
	sub := &fromSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 10, Window: time.Hour}, time.Now)
	n := &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{}), Limiter: lim, SMIME: env,
		Log: slog.New(slog.DiscardHandler), CertLimiter: &certmail.Limiter{}}
	t.Cleanup(func() { n.Close(context.Background()) })
	req := policy.Notice{Kind: policy.NoticeCertRequest, To: "domain-certificate-request@agency-b.govt.nz", From: "agency-a.govt.nz"}
	ans := policy.Notice{Kind: policy.NoticeCertAnswer, To: "domain-confidentiality-authority@agency-c.govt.nz", From: "agency-a.govt.nz"}
	bad := policy.Notice{Kind: policy.NoticeCertRequest, To: "domain-certificate-request@agency-d.govt.nz", From: "agency-z.govt.nz"}
	hs := []policy.Header{{Name: "Message-ID", Value: "<req1@c>"}}
	n.Send(p, policy.Verdict{Notices: []policy.Notice{req, ans, bad}}, policy.Envelope{}, hs)
	// Again at once: both rate limited.
	n.Send(p, policy.Verdict{Notices: []policy.Notice{req, ans}}, policy.Envelope{}, hs)
	deadline := time.Now().Add(5 * time.Second)
	for sub.n() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.msgs) != 2 {
		t.Fatalf("%d messages submitted to %v, want the request and the answer once each", len(sub.msgs), sub.to)
	}
	// The queue delivers concurrently: find each notice by its recipient.
	ri, ai := -1, -1
	for i, to := range sub.to {
		switch to[0] {
		case req.To:
			ri = i
		case ans.To:
			ai = i
		}
	}
	if ri < 0 || ai < 0 {
		t.Fatalf("submitted to %v, want %s and %s", sub.to, req.To, ans.To)
	}
	if sub.from[ri] != "domain-confidentiality-authority@agency-a.govt.nz" {
		t.Errorf("request from <%s>, want our DCA address", sub.from[ri])
	}
	if !strings.Contains(sub.msgs[ri], "Subject: domain-confidentiality-authority@agency-b.govt.nz\r\n") ||
		!strings.Contains(sub.msgs[ri], "multipart/signed") {
		t.Errorf("request:\n%s", sub.msgs[ri])
	}
	if sub.from[ai] != "" {
		t.Errorf("answer from <%s>, want the null sender", sub.from[ai])
	}
	a, err := certmail.ParseAnswer([]byte(sub.msgs[ai]))
	if err != nil || len(a.Certs) < 2 {
		t.Fatalf("answer certificates: %v %d", err, len(a.Certs))
	}
	if !a.Certs[0].Equal(env.Signer(context.Background(), "agency-a.govt.nz").Cert) {
		t.Errorf("the first certificate is not the newest valid one (R37)")
	}
	if !strings.Contains(sub.msgs[ai], "In-Reply-To: <req1@c>") || !strings.Contains(sub.msgs[ai], "multipart/signed") {
		t.Errorf("answer:\n%s", sub.msgs[ai][:min(600, len(sub.msgs[ai]))])
	}
}
