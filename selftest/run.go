package selftest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Config is one self-test run.
type Config struct {
	// SMTP is the MTA's address (HOST:PORT), the one the milter filters.
	SMTP string
	// InboundSource and OutboundSource are the local addresses the
	// inbound scenarios (which must look like the internet to the milter)
	// and the outbound one (an internal network) connect from; empty:
	// chosen by Sources.
	InboundSource, OutboundSource string
	// Policy is the policy the milter runs: it says what each scenario
	// must give.
	Policy *policy.Policy
	// Key is the selftest key (LoadOrCreateKey).
	Key []byte
	// Timeout bounds each scenario (default 60s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Status of one scenario.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // the policy does not ask for it (e.g. plaintext allowed)
)

// Result is one scenario's outcome.
type Result struct {
	Scenario string
	Status   Status
	Want     string // what the policy expects
	Got      string // what the gateway answered
}

// Report is a whole run.
type Report struct {
	Results []Result
	Started time.Time
	Elapsed time.Duration
}

// OK: no scenario failed.
func (r *Report) OK() bool { return r.Failed() == 0 }

// Failed counts the failed scenarios.
func (r *Report) Failed() int {
	n := 0
	for _, x := range r.Results {
		if x.Status == Fail {
			n++
		}
	}
	return n
}

// Write prints the report as a table and a summary line.
func (r *Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSTATUS\tWANT\tGOT")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Scenario, strings.ToUpper(string(x.Status)), x.Want, x.Got)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASSED"
	if !r.OK() {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "\nselftest: %d scenario(s), %d failed: %s\n", len(r.Results), r.Failed(), verdict)
	return err
}

// scenario is one built-in test.
type scenario struct {
	name     string
	inbound  bool
	starttls bool
	from     string // MAIL FROM
	rcpt     string
	header   string // From: header address
	subject  string
	// want says what the policy expects, skip why the scenario is not
	// run; judge decides the answer: the outcome parsed from a selftest
	// reply, or nil with the real reply when the gateway refused before
	// the end of the message.
	want  string
	skip  string
	judge func(o *Outcome, reply *textproto.Error) bool
}

// senderNone is a MAIL FROM domain that has no SPF record anywhere (RFC
// 2606 .invalid), so sender checks neither pass nor fail the scenarios.
const senderNone = "selftest@selftest.invalid"

// scenarios are the built-in tests of issue 17 point 2, with the verdicts
// p expects.
func scenarios(p *policy.Policy) []scenario {
	dom := "agency.invalid"
	if len(p.Domains) > 0 {
		dom = p.Domains[0]
	}
	out := []scenario{{
		// 005: mail From: our own domain arriving from outside is warned
		// (or refused, or deleted: never delivered unmarked).
		name: "inbound-spoof", inbound: true, starttls: true,
		from: senderNone, rcpt: p.Postmaster(), header: "selftest@" + dom,
		subject: "nzsecure-milter self-test: spoofed sender",
		want:    "warning 005 or 002 (or refused)",
		judge: func(o *Outcome, _ *textproto.Error) bool {
			return o != nil && (o.Warning == policy.WarningOwnAgency || o.Warning == policy.WarningForgedAgency ||
				o.Action == string(policy.Reject) || o.Action == string(policy.Discard))
		},
	}}
	plain := scenario{name: "inbound-plaintext", inbound: true, from: senderNone, rcpt: p.Postmaster(), header: senderNone,
		subject: "nzsecure-milter self-test: plaintext"}
	if p.Inbound.MinTLS == "none" || p.Inbound.MinTLS == "" {
		plain.skip = "inbound.min_tls is \"none\" (profile " + p.Profile + "): plaintext is allowed"
	} else {
		plain.want = "refused at MAIL FROM with 5.7.10 (TLS " + p.Inbound.MinTLS + " required)"
		plain.judge = func(o *Outcome, r *textproto.Error) bool {
			// The milter's 5.7.10 (G-TLS), or the MTA's own refusal when it
			// enforces TLS itself (Postfix: "530 5.7.0 Must issue a
			// STARTTLS command first").
			return o == nil && r != nil && r.Code >= 500 && (strings.HasPrefix(r.Msg, "5.7.10") || strings.Contains(r.Msg, "STARTTLS"))
		}
	}
	out = append(out, plain)
	secret := scenario{name: "outbound-secret", from: "selftest@" + dom, rcpt: "selftest@selftest.invalid", header: "selftest@" + dom,
		subject: "[SECRET] nzsecure-milter self-test"}
	switch r, ok := p.Outbound.ByClass["SECRET"]; {
	case !ok:
		secret.skip = "the policy has no SECRET classification"
	case r == policy.Hold:
		secret.want = "held (quarantine, R110)"
		secret.judge = func(o *Outcome, _ *textproto.Error) bool {
			return o != nil && o.Action == string(policy.Quarantine) && o.Classification == "SECRET"
		}
	default:
		secret.want = "refused (outbound.by_class.SECRET = " + string(r) + ")"
		secret.judge = func(o *Outcome, _ *textproto.Error) bool {
			return o != nil && o.Action == string(policy.Reject) && o.Classification == "SECRET"
		}
	}
	out = append(out, secret)
	ping := scenario{name: "ping", inbound: true, starttls: true, from: senderNone, rcpt: p.PingAddress(), header: senderNone,
		subject: "nzsecure-milter self-test: ping"}
	if ping.rcpt == "" {
		ping.skip = "notify.ping_address is off"
	} else {
		ping.want = "answered (a ping notice, R96-R99)"
		ping.judge = func(o *Outcome, _ *textproto.Error) bool {
			return o != nil && strings.Contains(","+o.Notices+",", ",ping,")
		}
	}
	return append(out, ping)
}

// Run runs every scenario against the live MTA.
func Run(ctx context.Context, cfg Config) *Report {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	rep := &Report{Started: cfg.Now()}
	in, out, srcErr := Sources(cfg.Policy, cfg.SMTP, cfg.InboundSource, cfg.OutboundSource)
	for _, sc := range scenarios(cfg.Policy) {
		res := Result{Scenario: sc.name, Want: sc.want}
		switch {
		case sc.skip != "":
			res.Status, res.Want = Skip, sc.skip
		case srcErr != nil:
			res.Status, res.Got = Fail, srcErr.Error()
		default:
			src := out
			if sc.inbound {
				src = in
			}
			sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			o, reply, err := send(sctx, cfg, sc, src)
			cancel()
			res.Status, res.Got = Fail, describe(o, reply, err)
			if err == nil && sc.judge(o, reply) {
				res.Status = Pass
			}
		}
		rep.Results = append(rep.Results, res)
	}
	rep.Elapsed = cfg.Now().Sub(rep.Started)
	return rep
}

func describe(o *Outcome, reply *textproto.Error, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case o != nil:
		return fmt.Sprintf("action=%s classification=%s warning=%s notices=%s", o.Action, o.Classification, o.Warning, o.Notices)
	case reply != nil:
		return fmt.Sprintf("%d %s", reply.Code, reply.Msg)
	}
	return "accepted: the MTA queued the message (is the milter filtering this MTA with the same selftest key?)"
}

// Sources picks the local addresses of the scenarios when not given: for
// an MTA on loopback, a loopback address outside internal_networks for the
// inbound ones (127.0.0.2 upwards; Linux answers every 127/8 address) and
// one inside for the outbound one (127.0.0.1 by default). Elsewhere both
// must be given.
func Sources(p *policy.Policy, smtpAddr, in, out string) (string, string, error) {
	host, _, err := net.SplitHostPort(smtpAddr)
	if err != nil {
		return "", "", fmt.Errorf("selftest SMTP address %q: %w", smtpAddr, err)
	}
	ip, perr := netip.ParseAddr(host)
	loop := host == "localhost" || perr == nil && ip.IsLoopback()
	if in == "" && loop {
		for i := 2; i < 255 && in == ""; i++ {
			a := netip.AddrFrom4([4]byte{127, 0, 0, byte(i)})
			if !p.IsInternal(a) {
				in = a.String()
			}
		}
	}
	if out == "" && loop {
		for _, c := range []string{"127.0.0.1", "::1"} {
			if p.IsInternal(netip.MustParseAddr(c)) {
				out = c
				break
			}
		}
	}
	var probs []string
	if a, err := netip.ParseAddr(in); err != nil {
		probs = append(probs, "no inbound source address (give selftest.inbound_source: an address of this host outside internal_networks)")
	} else if p.IsInternal(a) {
		probs = append(probs, fmt.Sprintf("inbound source %s is in internal_networks: the milter would take it as outbound", in))
	}
	if a, err := netip.ParseAddr(out); err != nil {
		probs = append(probs, "no outbound source address (give selftest.outbound_source: an address of this host in internal_networks)")
	} else if !p.IsInternal(a) {
		probs = append(probs, fmt.Sprintf("outbound source %s is not in internal_networks: the milter would take it as inbound", out))
	}
	if len(probs) > 0 {
		return in, out, errors.New(strings.Join(probs, "; "))
	}
	return in, out, nil
}

// send runs one scenario's SMTP transaction from src. It returns the
// outcome of a selftest reply, or the real reply that ended the
// transaction earlier, or err when the MTA could not be talked to.
func send(ctx context.Context, cfg Config, sc scenario, src string) (*Outcome, *textproto.Error, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.DialContext(ctx, "tcp", cfg.SMTP)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s from %s: %w", cfg.SMTP, src, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(cfg.SMTP)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return early(err)
	}
	defer c.Close()
	if err := c.Hello("selftest.invalid"); err != nil {
		return early(err)
	}
	if sc.starttls {
		if ok, _ := c.Extension("STARTTLS"); ok {
			// Our own MTA, reached by address: its name is not checked;
			// only the milter's verdict on a TLS session is tested here.
			if err := c.StartTLS(&tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}); err != nil { //nolint:gosec
				return early(err)
			}
		} else if mt := cfg.Policy.Inbound.MinTLS; mt != "none" && mt != "" {
			return nil, nil, fmt.Errorf("%s offers no STARTTLS, but inbound.min_tls is %s", cfg.SMTP, mt)
		}
	}
	if err := c.Mail(sc.from); err != nil {
		return early(err)
	}
	if err := c.Rcpt(sc.rcpt); err != nil {
		return early(err)
	}
	w, err := c.Data()
	if err != nil {
		return early(err)
	}
	now := cfg.Now()
	msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <selftest-%d@selftest.invalid>\r\n%s: %s\r\n\r\nnzsecure-milter self-test scenario %s (R19-R21). This message is never delivered.\r\n",
		sc.header, sc.rcpt, sc.subject, now.Format(time.RFC1123Z), now.UnixNano(), Header, Token(cfg.Key, sc.name, now), sc.name)
	if _, err := io.WriteString(w, msg); err != nil {
		return early(err)
	}
	err = w.Close()
	_ = c.Quit()
	if err == nil {
		return nil, nil, nil // queued: the milter did not answer for the scenario
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		text := te.Msg
		if _, rest, ok := strings.Cut(text, " "); ok && strings.HasPrefix(text, "5.7.0") {
			text = rest
		}
		if o, ok := ParseReply(text); ok {
			if o.Scenario != sc.name {
				return nil, te, fmt.Errorf("the milter answered for scenario %q, not %q", o.Scenario, sc.name)
			}
			return &o, nil, nil
		}
		return nil, te, nil
	}
	return nil, nil, err
}

// early turns an SMTP error before the end of the message into the reply
// (a refusal is an answer to judge), or an error.
func early(err error) (*Outcome, *textproto.Error, error) {
	var te *textproto.Error
	if errors.As(err, &te) {
		return nil, te, nil
	}
	return nil, nil, err
}
