package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime/certmail"
)

// Notifier turns a verdict's notices into messages and hands them to a
// queue that submits them to the MTA (never directly to the internet),
// retrying, without ever holding up the transaction (issue 8, R92-R95).
type Notifier struct {
	Queue   *notify.Queue
	Limiter *notify.RateLimiter
	Log     *slog.Logger
	Product string
	Version string
	// Submitter is the queue's: the extra copies of a message (issue 14,
	// outbound S/MIME) are submitted through it synchronously, before the
	// milter replies.
	Submitter notify.Submitter
	// SMIME is the S/MIME env of the notifier's state (nil when
	// smime.mode is off): notices to a peer agency are signed and
	// encrypted with it (R62).
	SMIME *pipeline.SMIMEEnv
	// CertLimiter rate-limits certificate requests and answers (R44);
	// nil: the process's.
	CertLimiter *certmail.Limiter
}

// SubmitterFor is the submitter policy p names (notify.submit: SMTP to a
// loopback port, else the notify.sendmail command); the notifier and the
// held-mail retry hand mail to the MTA through it.
func SubmitterFor(p *policy.Policy) (notify.Submitter, error) {
	if addr, ok := strings.CutPrefix(p.Runtime.Submit.Method, "smtp:"); ok {
		s := notify.SMTPSubmitter{Addr: addr, HeloName: p.AuthservID}
		if err := s.Validate(); err != nil {
			return nil, err
		}
		return s, nil
	}
	return notify.SendmailSubmitter{Path: p.Runtime.Submit.Sendmail[0], Args: p.Runtime.Submit.Sendmail[1:]}, nil
}

// NewNotifier builds the queue and rate limiter the policy asks for.
func NewNotifier(p *policy.Policy, log *slog.Logger, product, version string) (*Notifier, error) {
	sub, err := SubmitterFor(p)
	if err != nil {
		return nil, err
	}
	lim, err := notify.NewRateLimiter(notify.RateLimit{Count: p.Notify.RateCount, Window: p.Notify.RateWindow}, time.Now)
	if err != nil {
		return nil, err
	}
	return &Notifier{Queue: notify.NewQueue(sub, notify.QueueConfig{Logger: log, Backoff: 5 * time.Second}), Limiter: lim, Log: log,
		Product: product, Version: version, Submitter: sub}, nil
}

// Close drains the queue (until ctx ends).
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	return n.Queue.Close(ctx)
}

// Send generates and queues every notice of v. Failures are logged.
func (n *Notifier) Send(p *policy.Policy, v policy.Verdict, env policy.Envelope, hs []policy.Header) {
	if n == nil {
		return
	}
	for _, nt := range v.Notices {
		msg, err := n.build(p, nt, v, env, hs)
		if errors.Is(err, errSuppressed) {
			continue
		}
		if err != nil {
			n.Log.Error("cannot build notice", "kind", string(nt.Kind), "to", nt.To, "queue_id", env.QueueID, "error", err.Error())
			continue
		}
		if len(nt.Transforms) > 0 {
			// R62: to a peer agency only signed and encrypted; never in
			// clear when that fails.
			if msg.Data, err = n.signEncrypt(msg.Data, nt.Transforms); err != nil {
				n.Log.Error("cannot sign and encrypt notice; not sent", "kind", string(nt.Kind), "to", nt.To, "queue_id", env.QueueID, "error", err.Error())
				continue
			}
		}
		if !n.Queue.Enqueue(msg) {
			n.Log.Error("notice queue full; notice dropped", "kind", string(nt.Kind), "to", nt.To, "queue_id", env.QueueID)
			continue
		}
		n.Log.Info("notice queued", "kind", string(nt.Kind), "to", nt.To, "queue_id", env.QueueID, "code", nt.Code)
	}
}

var errSuppressed = errors.New("notice suppressed")

// errNoSMIMEEnv: a notice names an S/MIME transform but the notifier has
// no S/MIME env.
var errNoSMIMEEnv = errors.New("no S/MIME env for a notice to a peer agency")

func (n *Notifier) signEncrypt(data []byte, trs []policy.Transform) ([]byte, error) {
	if n.SMIME == nil {
		return nil, errNoSMIMEEnv
	}
	for _, tr := range trs {
		if tr.Kind != policy.TransformSMIMESignEncrypt {
			return nil, fmt.Errorf("notice transform %q not supported", tr.Kind)
		}
		var err error
		if data, err = n.SMIME.SignEncryptMessage(data, tr); err != nil {
			return nil, err
		}
	}
	return data, nil
}

func (n *Notifier) build(p *policy.Policy, nt policy.Notice, v policy.Verdict, env policy.Envelope, hs []policy.Header) (*notify.Message, error) {
	domain := "localhost"
	if len(p.Domains) > 0 {
		domain = p.Domains[0]
	}
	g := notify.Generator{Domain: domain}
	orig := notify.OriginalFromHeaders(hs)
	// The engine already dropped the notices the loop and postmaster rules
	// forbid (R93-R95, policy.ShouldNotify); only the rate limit, whose
	// state is this process's, is applied here.
	if nt.Kind == policy.NoticeCertRequest || nt.Kind == policy.NoticeCertAnswer {
		return n.certMail(p, nt, hs) // R44: its own rate limit, per domain
	}
	// R95: at most rate_count notices per recipient and code per window.
	if !n.Limiter.Allow(nt.To, string(nt.Kind)+nt.Code) {
		n.Log.Warn("notice suppressed by the rate limit (R95)", "kind", string(nt.Kind), "to", nt.To, "queue_id", env.QueueID)
		return nil, errSuppressed
	}
	msgID := ""
	if ids := policy.HeaderValues(hs, "Message-ID"); len(ids) > 0 {
		msgID = strings.TrimSpace(ids[0])
	}
	rp := notify.ReceiptParams{To: nt.To, Original: orig, Received: time.Now(), Recipients: nt.Rcpts, Reason: nt.Reason, InReplyTo: msgID}
	switch nt.Kind {
	case policy.NoticeReceipt:
		return g.DeliveryReceipt(rp)
	case policy.NoticeNDR:
		return g.NonDeliveryReport(rp)
	case policy.NoticePing:
		return g.PingReply(hs, nt.To, notify.PingInfo{Product: n.Product, Version: n.Version,
			Environment: p.Environment(), EnvironmentVersion: p.Profile, Agencies: p.Notify.Agencies, SMIME: nt.Reason})
	case policy.NoticeCertificate:
		// Table 1, receiving column: "Notify Recipient's Postmaster" of a
		// message delivered with an UNVERIFIED certificate warning (101-115).
		return g.Notice(notify.NoticeParams{Code: nt.Code, To: []string{nt.To}, Original: orig, Text: notify.TextParams{Detail: nt.Reason}})
	case policy.NoticeCertReplaced:
		// Table 1, sending, "Untrusted / Unknown CA": "Success: Send
		// message. Notify Recipient's Postmaster".
		_, d := policy.SplitAddress(nt.To)
		return g.CertificateReplaced(notify.CertReplacedParams{To: nt.To, Domain: d, Detail: nt.Reason, Original: orig})
	case policy.NoticeDelayed:
		// SECURE DELIVERY DELAYED (Table 1, 201-212) to the sender and the
		// sender's postmaster; Table 2's "The system will try again in X
		// hours" is the held-mail retry's smime.retry_interval, rounded up.
		return g.Notice(notify.NoticeParams{Code: nt.Code, To: []string{nt.To}, Original: orig,
			Text: notify.TextParams{Detail: nt.Reason, RetryHours: heldmail.RetryHours(p.SMIME.RetryInterval)}})
	case policy.NoticeHeld:
		// The engine names the Table 3 code: 001 for classified mail held
		// (R110), 002 for a DMARC-quarantined spoof (G-DMARC-IN).
		return g.Notice(notify.NoticeParams{Code: nt.Code, To: []string{nt.To}, Original: orig, Text: notify.TextParams{Detail: nt.Reason}})
	}
	return nil, fmt.Errorf("unknown notice kind %q", nt.Kind)
}
