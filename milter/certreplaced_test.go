package milter

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Table 1, sending, "Untrusted / Unknown CA": the notifier builds the
// cert-replaced notice to the peer's postmaster, signed and encrypted to
// its new certificate (R62), and the R95 rate limit holds it to one per
// window.
func TestCertReplacedNoticeSent(t *testing.T) {
	p, env, peer := peerSMIMEEnv(t)
	sub := &captureSubmitter{}
	lim, _ := notify.NewRateLimiter(notify.RateLimit{Count: 1, Window: time.Hour}, time.Now)
	n := &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{}), Limiter: lim, SMIME: env, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(func() { n.Close(context.Background()) })
	tr := policy.Transform{Kind: policy.TransformSMIMESignEncrypt, Domain: "agency-b.govt.nz",
		Signer: smime.Fingerprint(env.Identities[0].Cert), Cert: smime.Fingerprint(peer), Cipher: "aes128-cbc"}
	nt := policy.Notice{Kind: policy.NoticeCertReplaced, To: "postmaster@agency-b.govt.nz", Rcpts: []string{"bob@agency-b.govt.nz"},
		Reason: "Untrusted certificate(s) of agency-b.govt.nz replaced", Transforms: []policy.Transform{tr}}
	hs := []policy.Header{{Name: "From", Value: "ann@agency-a.govt.nz"}, {Name: "Subject", Value: "minutes"}}
	for range 2 {
		n.Send(p, policy.Verdict{Notices: []policy.Notice{nt}}, policy.Envelope{From: "ann@agency-a.govt.nz", QueueID: "Q1"}, hs)
	}
	msgs := sub.wait(t, 1)
	time.Sleep(100 * time.Millisecond)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.msgs) != 1 || sub.to[0][0] != "postmaster@agency-b.govt.nz" {
		t.Fatalf("submitted %d to %v, want one to postmaster@agency-b.govt.nz (R95)", len(sub.msgs), sub.to)
	}
	if !strings.Contains(msgs[0], "application/pkcs7-mime; smime-type=enveloped-data") || strings.Contains(msgs[0], "CERTIFICATE REPLACED –") {
		t.Errorf("notice not encrypted:\n%s", msgs[0])
	}
}
