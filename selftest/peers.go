package selftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/statefile"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Peer pings (R19 with the peers that exist, R96-R99): `selftest --peers`
// sends a ping from our ping address to each peer gateway's ping address
// through the MTA; the peer's answer comes back to our ping address, where
// the milter, which consumes mail to it (R96), records it in the answers
// directory (RecordAnswer); the client waits for every answer.

// PeerAnswer is a peer gateway's ping answer as the milter saw it.
type PeerAnswer struct {
	Domain   string    `json:"domain"`
	From     string    `json:"from"`
	Subject  string    `json:"subject"`
	Signed   bool      `json:"signed"` // S/MIME signed (multipart/signed or pkcs7-mime), by its structure
	Received time.Time `json:"received"`
	// SMIME is what the milter's inbound S/MIME path found (R81-R82,
	// R98): "verified", "unverified", "not S/MIME", or "not checked"
	// (smime.mode off). Verified is true only for "verified"; Code is the
	// Table 3 code of an unverified answer's state (003, 101-105, ...),
	// Detail why.
	SMIME    string `json:"smime,omitempty"`
	Verified bool   `json:"verified"`
	Code     string `json:"code,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Values of PeerAnswer.SMIME.
const (
	SMIMEVerified   = "verified"
	SMIMEUnverified = "unverified"
	SMIMENone       = "not S/MIME"
	SMIMENotChecked = "not checked"
)

// describe is how the report shows an answer's S/MIME.
func (a PeerAnswer) describe() string {
	switch a.SMIME {
	case "":
		return fmt.Sprintf("signed %v, S/MIME not verified", a.Signed)
	case SMIMEVerified:
		return "S/MIME verified: " + a.Detail
	case SMIMEUnverified:
		s := "S/MIME not verified"
		if a.Code != "" {
			s += " (" + a.Code + ")"
		}
		return s + ": " + a.Detail
	}
	return a.SMIME
}

// IsSigned reports whether a message's top-level Content-Type is an
// S/MIME signature (RFC 8551 sections 3.5.1 and 3.5.3).
func IsSigned(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.HasPrefix(ct, "multipart/signed") ||
		(strings.Contains(ct, "pkcs7-mime") && strings.Contains(ct, "signed-data"))
}

// RecordAnswer writes a (replacing the earlier answer of its domain),
// atomically, under dir.
func RecordAnswer(dir string, a PeerAnswer) error {
	d, ok := message.NormalizeDomain(a.Domain)
	if !ok {
		return fmt.Errorf("peer answer: bad domain %q", a.Domain)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("peer answer: %w", err)
	}
	a.Domain = d
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".answer-*")
	if err != nil {
		return fmt.Errorf("peer answer: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = statefile.OwnLikeDir(tmp, dir)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, d+".json"))
	}
	if err != nil {
		return fmt.Errorf("peer answer: %w", err)
	}
	return nil
}

// ReadAnswer is the last answer recorded for domain.
func ReadAnswer(dir, domain string) (PeerAnswer, error) {
	d, ok := message.NormalizeDomain(domain)
	if !ok {
		return PeerAnswer{}, fmt.Errorf("bad domain %q", domain)
	}
	b, err := os.ReadFile(filepath.Join(dir, d+".json"))
	if err != nil {
		return PeerAnswer{}, err
	}
	var a PeerAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return PeerAnswer{}, fmt.Errorf("%s: %w", d, err)
	}
	return a, nil
}

// PeerConfig is a peer-ping run.
type PeerConfig struct {
	Config
	// Peers are the ping addresses (policy SelftestPeers).
	Peers []string
	// AnswersDir is where the milter records answers (policy
	// PeerAnswersDir).
	AnswersDir string
	// Wait bounds how long the answers are waited for (default 10 min).
	Wait time.Duration
	// Poll is how often the directory is read (default 2 s).
	Poll time.Duration
}

// PingPeers pings every peer and waits for the answers; one result per
// peer ("peer-ping DOMAIN").
func PingPeers(ctx context.Context, cfg PeerConfig) []Result {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 10 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	p := cfg.Policy
	ours := p.PingAddress()
	wantSigned := p.SMIME.Mode == policy.SMIMEOn
	want := "answered"
	if wantSigned {
		want = "answered, S/MIME signed and verified (R98)"
	}
	start := cfg.Now().Add(-time.Second) // file times have coarse resolution
	_, src, srcErr := Sources(p, cfg.SMTP, cfg.InboundSource, cfg.OutboundSource)
	results := make([]Result, len(cfg.Peers))
	pending := map[int]string{}
	for i, peer := range cfg.Peers {
		_, d := policy.SplitAddress(peer)
		results[i] = Result{Scenario: "peer-ping " + d, Want: want, Status: Fail}
		switch {
		case ours == "":
			results[i].Got = "notify.ping_address is off: no address to receive the answer"
		case d == "":
			results[i].Got = fmt.Sprintf("%q is not an address", peer)
		case srcErr != nil:
			results[i].Got = srcErr.Error()
		default:
			sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			err := sendPing(sctx, cfg.Config, src, ours, peer)
			cancel()
			if err != nil {
				results[i].Got = "ping not sent: " + err.Error()
				continue
			}
			results[i].Got = "no answer within " + cfg.Wait.String()
			pending[i] = d
		}
	}
	deadline := cfg.Now().Add(cfg.Wait)
	for len(pending) > 0 {
		for i, d := range pending {
			a, err := ReadAnswer(cfg.AnswersDir, d)
			if err != nil || a.Received.Before(start) {
				continue
			}
			delete(pending, i)
			results[i].Got = fmt.Sprintf("answered by %s at %s (%s)", a.From, a.Received.UTC().Format(time.RFC3339), a.describe())
			// With S/MIME on, only an answer the inbound path verified
			// passes (R98): a signature by its structure alone, or one
			// whose certificate is revoked or untrusted, does not.
			if a.Verified || !wantSigned {
				results[i].Status = Pass
			}
		}
		if len(pending) == 0 || !cfg.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return results
		case <-time.After(cfg.Poll):
		}
	}
	return results
}

// sendPing submits one ping through the MTA from src (an internal
// address: it is outbound mail); the MTA must queue it.
func sendPing(ctx context.Context, cfg Config, src, from, to string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.DialContext(ctx, "tcp", cfg.SMTP)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(cfg.SMTP)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	_, fromDomain := policy.SplitAddress(from)
	if err := c.Hello(fromDomain); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	now := cfg.Now()
	msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: nzsecure-milter peer ping\r\nDate: %s\r\nMessage-ID: <peer-ping-%d@%s>\r\n\r\nA ping from the self-test of %s (R19, R96-R99): please answer.\r\n",
		from, to, now.Format(time.RFC1123Z), now.UnixNano(), fromDomain, fromDomain)
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			return fmt.Errorf("%d %s", te.Code, te.Msg)
		}
		return err
	}
	return c.Quit()
}
