package notify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSendmail writes a shell script that records its arguments and
// standard input next to itself and exits with the status in ./exit.
func fakeSendmail(t *testing.T) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "sendmail")
	script := `#!/bin/sh
dir=$(dirname "$0")
: > "$dir/args"
for a in "$@"; do printf '%s\n' "$a" >> "$dir/args"; done
cat > "$dir/stdin"
if [ -f "$dir/exit" ]; then echo "fake sendmail: failing as told" >&2; exit "$(cat "$dir/exit")"; fi
exit 0
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func TestSendmailSubmitter(t *testing.T) {
	path, dir := fakeSendmail(t)
	s := SendmailSubmitter{Path: path}
	msg := []byte("From: postmaster@agency.govt.nz\r\nSubject: x\r\n\r\n.\r\nline after a lone dot\r\n")
	ctx := context.Background()

	if err := s.Submit(ctx, "", []string{"alice@example.org", "bob@agency.govt.nz"}, msg); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got, want := string(args), "-i\n-f\n<>\n--\nalice@example.org\nbob@agency.govt.nz\n"; got != want {
		t.Errorf("args:\n%s\nwant\n%s", got, want)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if string(stdin) != string(msg) {
		t.Errorf("stdin %q", stdin)
	}

	s.Args = []string{"-C", "/etc/postfix-out"}
	if err := s.Submit(ctx, "postmaster@agency.govt.nz", []string{"a@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	args, _ = os.ReadFile(filepath.Join(dir, "args"))
	if got, want := string(args), "-C\n/etc/postfix-out\n-i\n-f\npostmaster@agency.govt.nz\n--\na@example.org\n"; got != want {
		t.Errorf("args:\n%s\nwant\n%s", got, want)
	}

	// EX_TEMPFAIL is temporary, EX_NOUSER permanent.
	if err := os.WriteFile(filepath.Join(dir, "exit"), []byte("75"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Submit(ctx, "", []string{"a@example.org"}, msg)
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "failing as told") {
		t.Errorf("exit 75: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exit"), []byte("67"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(ctx, "", []string{"a@example.org"}, msg); !errors.Is(err, ErrPermanent) {
		t.Errorf("exit 67: %v", err)
	}
	_ = os.Remove(filepath.Join(dir, "exit"))

	// Addresses that could become options or break the command are refused
	// before anything runs.
	_ = os.Remove(filepath.Join(dir, "args"))
	for _, bad := range [][]string{{"-oQ/tmp/x@y"}, {"a@b c"}, {"a\n@b"}, {}, {"nodomain"}, {"<a@b>"}} {
		if err := s.Submit(ctx, "", bad, msg); !errors.Is(err, ErrBadAddress) || !errors.Is(err, ErrPermanent) {
			t.Errorf("recipients %q: %v", bad, err)
		}
	}
	if err := s.Submit(ctx, "-f", []string{"a@b.nz"}, msg); !errors.Is(err, ErrBadAddress) {
		t.Errorf("sender -f: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "args")); err == nil {
		t.Error("sendmail ran with a refused address")
	}

	// A missing command is a temporary error (the queue retries).
	err = SendmailSubmitter{Path: filepath.Join(dir, "missing")}.Submit(ctx, "", []string{"a@b.nz"}, msg)
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("missing command: %v", err)
	}
}

// smtpSink is a minimal SMTP server on 127.0.0.1 that records transactions.
type smtpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	froms []string
	rcpts [][]string
	data  []string
	// rejectRcpt gets this reply to RCPT.
	rejectRcpt string
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := func(l string) { fmt.Fprintf(c, "%s\r\n", l) }
	w("220 sink ESMTP")
	var from string
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		up := strings.ToUpper(cmd)
		switch {
		case strings.HasPrefix(up, "EHLO"), strings.HasPrefix(up, "HELO"):
			w("250-sink")
			w("250 8BITMIME")
		case strings.HasPrefix(up, "MAIL FROM:"):
			from = cmd[len("MAIL FROM:"):]
			if i := strings.IndexByte(from, ' '); i >= 0 {
				from = from[:i]
			}
			w("250 ok")
		case strings.HasPrefix(up, "RCPT TO:"):
			s.mu.Lock()
			rej := s.rejectRcpt
			s.mu.Unlock()
			if rej != "" {
				w(rej)
				continue
			}
			rcpts = append(rcpts, cmd[len("RCPT TO:"):])
			w("250 ok")
		case up == "DATA":
			w("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.froms = append(s.froms, from)
			s.rcpts = append(s.rcpts, rcpts)
			s.data = append(s.data, b.String())
			s.mu.Unlock()
			w("250 queued")
		case up == "QUIT":
			w("221 bye")
			return
		case up == "RSET":
			w("250 ok")
		default:
			w("502 unknown")
		}
	}
}

func TestSMTPSubmitter(t *testing.T) {
	sink := newSMTPSink(t)
	s := SMTPSubmitter{Addr: sink.ln.Addr().String()}
	msg := []byte("From: postmaster@agency.govt.nz\r\nSubject: x\r\n\r\n.leading dot\r\nT\xc4\x93n\xc4\x81 koe\r\n")
	if err := s.Submit(context.Background(), "", []string{"alice@example.org", "bob@agency.govt.nz"}, msg); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	if len(sink.data) != 1 || sink.froms[0] != "<>" || strings.Join(sink.rcpts[0], ",") != "<alice@example.org>,<bob@agency.govt.nz>" || sink.data[0] != string(msg) {
		t.Errorf("sink got from=%q rcpts=%q data=%q", sink.froms, sink.rcpts, sink.data)
	}
	sink.rejectRcpt = "550 5.1.1 no such user"
	sink.mu.Unlock()
	if err := s.Submit(context.Background(), "postmaster@agency.govt.nz", []string{"x@example.org"}, msg); !errors.Is(err, ErrPermanent) {
		t.Errorf("550: %v", err)
	}
	sink.mu.Lock()
	sink.rejectRcpt = "451 4.3.0 try later"
	sink.mu.Unlock()
	if err := s.Submit(context.Background(), "", []string{"x@example.org"}, msg); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("451: %v", err)
	}
	// localhost resolves to loopback and is allowed.
	_, port, _ := net.SplitHostPort(sink.ln.Addr().String())
	sink.mu.Lock()
	sink.rejectRcpt = ""
	sink.mu.Unlock()
	if err := (SMTPSubmitter{Addr: "localhost:" + port}).Submit(context.Background(), "", []string{"a@b.nz"}, msg); err != nil &&
		!strings.Contains(err.Error(), "connection refused") { // localhost may resolve to ::1 first
		t.Errorf("localhost: %v", err)
	}
}

// TestSMTPSubmitterLoopbackOnly: generated mail goes to the local MTA only.
func TestSMTPSubmitterLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"192.0.2.1:25", "[2001:db8::1]:25", "mail.example.org:25", "0.0.0.0:25", "[::]:25", "10.0.0.1:10025", "127.0.0.1", ""} {
		s := SMTPSubmitter{Addr: addr}
		if err := s.Validate(); err == nil {
			t.Errorf("%q validated", addr)
		}
		err := s.Submit(context.Background(), "", []string{"a@b.nz"}, []byte("x"))
		if err == nil || !errors.Is(err, ErrPermanent) {
			t.Errorf("%q: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:10025", "127.1.2.3:25", "[::1]:10025", "localhost:10025", "[::ffff:127.0.0.1]:25"} {
		if err := (SMTPSubmitter{Addr: addr}).Validate(); err != nil {
			t.Errorf("%q: %v", addr, err)
		}
	}
	if err := loopbackOnly("tcp", "192.0.2.1:25", nil); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("dial check: %v", err)
	}
	if err := loopbackOnly("tcp", "127.0.0.1:25", nil); err != nil {
		t.Errorf("dial check loopback: %v", err)
	}
}

func TestSMTPSubmitterTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second) // never greets
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = SMTPSubmitter{Addr: ln.Addr().String()}.Submit(ctx, "", []string{"a@b.nz"}, []byte("x"))
	if err == nil || errors.Is(err, ErrPermanent) || time.Since(start) > time.Second {
		t.Errorf("silent server: %v after %s", err, time.Since(start))
	}
}
