package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Submitter hands a generated message to the MTA. envelopeFrom "" (or
// "<>") is the null sender.
type Submitter interface {
	Submit(ctx context.Context, envelopeFrom string, rcpts []string, msg []byte) error
}

// Submission errors.
var (
	// ErrPermanent marks a failure that a retry cannot fix (5xx reply, a
	// refused address, a sendmail usage or data error). Queue does not
	// retry it.
	ErrPermanent = errors.New("permanent submission failure")
	// ErrNotLoopback: SMTPSubmitter talks to the local MTA only.
	ErrNotLoopback = errors.New("submission address is not a loopback address")
	// ErrBadAddress: an envelope address that cannot be passed on safely.
	ErrBadAddress = errors.New("invalid envelope address")
)

// validEnvelopeAddress refuses what must not reach a command line or an
// SMTP command: empty, control characters, white space, angle brackets, a
// leading "-" (it would read as an option) and over-long addresses.
func validEnvelopeAddress(a string) error {
	switch {
	case a == "":
		return fmt.Errorf("%w: empty", ErrBadAddress)
	case len(a) > 320:
		return fmt.Errorf("%w: longer than 320 bytes", ErrBadAddress)
	case strings.HasPrefix(a, "-"):
		return fmt.Errorf("%w: %q starts with '-'", ErrBadAddress, a)
	}
	for _, r := range a {
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == ',' {
			return fmt.Errorf("%w: %q", ErrBadAddress, a)
		}
	}
	return nil
}

// checkEnvelope validates the envelope; from "" and "<>" are the null sender.
func checkEnvelope(from string, rcpts []string) (string, error) {
	if from == "<>" {
		from = ""
	}
	if from != "" {
		if err := validEnvelopeAddress(from); err != nil {
			return "", fmt.Errorf("%w (sender)", errors.Join(err, ErrPermanent))
		}
	}
	if len(rcpts) == 0 {
		return "", fmt.Errorf("%w: no recipients", errors.Join(ErrBadAddress, ErrPermanent))
	}
	for _, r := range rcpts {
		if err := validEnvelopeAddress(r); err != nil || !strings.Contains(r, "@") {
			if err == nil {
				err = fmt.Errorf("%w: %q has no domain", ErrBadAddress, r)
			}
			return "", fmt.Errorf("%w (recipient)", errors.Join(err, ErrPermanent))
		}
	}
	return from, nil
}

// SendmailSubmitter runs the MTA's sendmail command:
//
//	sendmail -i -f <sender> -- <rcpt>...
//
// with the message on standard input. -i: a line with a single "." does
// not end the input. -f '<>' gives the null sender (Postfix's sendmail
// parses -f as an address, so "<>" is the empty address; Sendmail accepts
// the same). "--" ends the options, and addresses starting with "-" are
// refused anyway.
type SendmailSubmitter struct {
	// Path is the sendmail command; "" is /usr/sbin/sendmail.
	Path string
	// Args are put before -i (for example "-C", "/etc/postfix-out").
	Args []string
}

// sendmail exit codes (sysexits.h) that a retry cannot fix.
var permanentExit = map[int]string{
	64: "EX_USAGE", 65: "EX_DATAERR", 67: "EX_NOUSER", 68: "EX_NOHOST", 77: "EX_NOPERM",
}

// Submit runs sendmail; exit status 0 is success, EX_TEMPFAIL (75) and the
// other non-permanent codes are temporary.
func (s SendmailSubmitter) Submit(ctx context.Context, envelopeFrom string, rcpts []string, msg []byte) error {
	from, err := checkEnvelope(envelopeFrom, rcpts)
	if err != nil {
		return err
	}
	if from == "" {
		from = "<>"
	}
	path := s.Path
	if path == "" {
		path = "/usr/sbin/sendmail"
	}
	args := append(append([]string(nil), s.Args...), "-i", "-f", from, "--")
	args = append(args, rcpts...)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewReader(msg)
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	detail := strings.TrimSpace(out.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		code := ee.ExitCode()
		if name, ok := permanentExit[code]; ok {
			return fmt.Errorf("%w: %s exited %d (%s): %s", ErrPermanent, path, code, name, detail)
		}
		return fmt.Errorf("%s exited %d: %s", path, code, detail)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", path, ctx.Err())
	}
	return fmt.Errorf("running %s: %w", path, err)
}

// limitedBuffer keeps the first 4 KiB of a command's output.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// SMTPSubmitter submits over SMTP to the local MTA, typically a Postfix
// smtpd on a loopback port without milters (so generated mail is not
// filtered again). It refuses any address that is not loopback, both when
// the name is given and for the address actually dialled.
type SMTPSubmitter struct {
	// Addr is host:port, e.g. "127.0.0.1:10025", "[::1]:10025" or
	// "localhost:10025".
	Addr string
	// HeloName is sent in EHLO; "" is "localhost".
	HeloName string
	// Timeout bounds a submission when ctx has no deadline; 0 is 60s.
	Timeout time.Duration
}

// Validate checks that Addr is a loopback address (or "localhost").
func (s SMTPSubmitter) Validate() error {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("smtp submitter %q: %w", s.Addr, err)
	}
	if port == "" {
		return fmt.Errorf("smtp submitter %q: no port", s.Addr)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%w: %q (only 127.0.0.0/8, ::1 or localhost)", ErrNotLoopback, s.Addr)
	}
	return nil
}

// Submit sends one message: EHLO, MAIL FROM, RCPT TO each recipient, DATA,
// QUIT. A 5xx reply is ErrPermanent; 4xx replies and network errors are
// temporary.
func (s SMTPSubmitter) Submit(ctx context.Context, envelopeFrom string, rcpts []string, msg []byte) error {
	if err := s.Validate(); err != nil {
		return errors.Join(err, ErrPermanent)
	}
	from, err := checkEnvelope(envelopeFrom, rcpts)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		t := s.Timeout
		if t <= 0 {
			t = 60 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	d := net.Dialer{Control: loopbackOnly}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		if errors.Is(err, ErrNotLoopback) {
			return errors.Join(err, ErrPermanent)
		}
		return fmt.Errorf("smtp submitter: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpErr("greeting", err)
	}
	defer c.Close()
	helo := s.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if err := c.Hello(helo); err != nil {
		return smtpErr("EHLO", err)
	}
	if err := c.Mail(from); err != nil {
		return smtpErr("MAIL FROM", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return smtpErr("RCPT TO:<"+r+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("end of DATA", err)
	}
	_ = c.Quit()
	return nil
}

// loopbackOnly refuses a connection to anything but a loopback address,
// whatever the name resolved to.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("%w: dialling %s", ErrNotLoopback, address)
	}
	return nil
}

// smtpErr classifies an SMTP error: 5xx replies are permanent.
func smtpErr(stage string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return fmt.Errorf("%w: smtp %s: %d %s", ErrPermanent, stage, te.Code, te.Msg)
	}
	return fmt.Errorf("smtp %s: %w", stage, err)
}
