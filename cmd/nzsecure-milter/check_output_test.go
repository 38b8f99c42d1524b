package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Issue 13, "Tests that must exist": the same messages through
// `check --output` and through the milter (go-milter client playing
// Postfix, its modifications applied as Postfix applies them) give the
// same headers and body, apart from values that depend on time or chance
// (the DKIM t= and b=, X-NZ-Secure-Gateway received=, the MIME boundary
// of a wrap). Among them a wrapped and a prepended inbound warning and a
// DKIM-signed outbound message, whose signature verifies in both.
func TestCheckOutputMatchesMilter(t *testing.T) {
	dns := testDNS(t)
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "s1.key")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	record, _ := dkim.KeyRecord(key.Public())
	keyZone := dnstest.NewZone().TXT("s1._domainkey.agency.govt.nz", record)

	common := []string{`domains=["agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`, "record_times=true",
		fmt.Sprintf("dns.servers=[%q]", dns), fmt.Sprintf(`dkim.keys=["agency.govt.nz:s1:%s"]`, keyFile)}
	inbound := "From: Sender <sender@example.com>\nTo: Bob <bob@agency.govt.nz>\nSubject: quarterly figures\n" +
		"X-NZ-Secure-email: compliant; forged by the sender\nContent-Type: text/plain; charset=us-ascii\n\nHello Bob.\n"
	cases := []struct {
		name    string
		msg     string
		sets    []string
		auth    string
		from    string
		rcpt    string
		ip      string
		want    []string // in the output
		signed  bool
		changed bool // the body is replaced
	}{
		{name: "inbound wrapped warning", msg: inbound, from: "sender@example.com", rcpt: "bob@agency.govt.nz", ip: "203.0.113.9",
			want: []string{"X-NZ-Secure-Warning: 002", "Content-Type: multipart/mixed", "message/rfc822", "X-NZ-Secure-Gateway: received="}, changed: true},
		{name: "inbound prepended warning", msg: inbound, sets: []string{`inbound.warning_mode="prepend"`}, from: "sender@example.com",
			rcpt: "bob@agency.govt.nz", ip: "203.0.113.9", want: []string{"X-NZ-Secure-Warning: 002", "UNVERIFIED MESSAGE"}, changed: true},
		{name: "outbound DKIM signed", msg: "From: Alice <alice@agency.govt.nz>\nTo: partner@example.com\nSubject: minutes\n" +
			"X-NZ-Secure-email: forged\n\nSee attached.\n", auth: "alice", from: "alice@agency.govt.nz", rcpt: "partner@example.com", ip: "198.51.100.7",
			want: []string{"DKIM-Signature: ", "X-NZ-Secure-email: compliant;", "\r\n\r\nSee attached.\r\n"}, signed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sets := append(append([]string{}, common...), c.sets...)
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.eml"), filepath.Join(dir, "out.eml")
			if err := os.WriteFile(in, []byte(c.msg), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"check", "--output", out, "--client-ip", c.ip, "--tls-version", "TLSv1.3", "--cipher", "TLS_AES_256_GCM_SHA384",
				"--cipher-bits", "256", "--from", c.from, "--rcpt", c.rcpt}
			if c.auth != "" {
				args = append(args, "--auth", c.auth)
			}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			if code, _, errs := runCmd(t, append(args, in)...); code != 0 {
				t.Fatalf("check: exit %d: %s", code, errs)
			}
			fromCheck, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			fromMilter := throughMilter(t, sets, c.msg, c.auth, c.from, c.rcpt, c.ip)
			for _, w := range c.want {
				if !bytes.Contains(fromCheck, []byte(w)) {
					t.Errorf("check --output lacks %q:\n%s", w, fromCheck)
				}
			}
			_, origBody, _ := strings.Cut(c.msg, "\n\n")
			_, gotBody, _ := bytes.Cut(fromCheck, []byte("\r\n\r\n"))
			if kept := string(gotBody) == strings.ReplaceAll(origBody, "\n", "\r\n"); kept == c.changed {
				t.Errorf("body replaced: %v, want %v:\n%s", !kept, c.changed, fromCheck)
			}
			if a, b := normalise(fromCheck), normalise(fromMilter); a != b {
				t.Errorf("check --output and the milter differ\n--- check:\n%s\n--- milter:\n%s", a, b)
			}
			if c.signed {
				for who, raw := range map[string][]byte{"check": fromCheck, "milter": fromMilter} {
					sigs, err := dkim.Verify(context.Background(), bytes.NewReader(raw), dkim.VerifyOptions{LookupTXT: keyZone.LookupTXT})
					if err != nil || len(sigs) != 1 || sigs[0].Result != dkim.Pass {
						t.Errorf("%s: DKIM signature does not verify over the final form: %+v %v", who, sigs, err)
					}
				}
			}
		})
	}
}

var timeDependent = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\bt=\d+`), "t=T"},
	{regexp.MustCompile(`\bb=[A-Za-z0-9+/=\s]+`), "b=B"},
	{regexp.MustCompile(`received=[^;]*;`), "received=R;"},
	{regexp.MustCompile(`(?m)^Date: .*$`), "Date: D"},
}

var boundaryParam = regexp.MustCompile(`boundary="?([^";\r\n]+)"?`)

// normalise replaces what depends on time or chance; a wrap's boundary is
// random per rendering.
func normalise(raw []byte) string {
	s := string(raw)
	for _, m := range boundaryParam.FindAllStringSubmatch(s, -1) {
		s = strings.ReplaceAll(s, m[1], "BOUNDARY")
	}
	for _, r := range timeDependent {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

// throughMilter runs msg through a milter serving the same policy and
// rebuilds the message as Postfix would deliver it from the milter's
// modifications.
func throughMilter(t *testing.T, sets []string, msg, auth, from, rcpt, ip string) []byte {
	t.Helper()
	p, err := policy.Load("", sets)
	if err != nil {
		t.Fatal(err)
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := milter.NewServer(p, runner, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}()
	client := gomilter.NewClient("tcp", ln.Addr().String(),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptQuarantine|gomilter.OptChangeBody|
			gomilter.OptAddRcpt|gomilter.OptRemoveRcpt|gomilter.OptChangeFrom|gomilter.OptSetMacros))
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mx.agency.govt.nz")
	s, err := client.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(a *gomilter.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("milter protocol: %v", err)
		}
		if a.Type != gomilter.ActionContinue {
			t.Fatalf("milter ended early: %v", a)
		}
	}
	must(s.Conn("client.example", gomilter.FamilyInet, 40000, ip))
	macros.Set(gomilter.MacroTlsVersion, "TLSv1.3")
	macros.Set(gomilter.MacroCipher, "TLS_AES_256_GCM_SHA384")
	macros.Set(gomilter.MacroCipherBits, "256")
	must(s.Helo("client.example"))
	macros.Set(gomilter.MacroAuthAuthen, auth)
	must(s.Mail("<"+from+">", ""))
	must(s.Rcpt("<"+rcpt+">", ""))
	must(s.DataStart())
	// The message as Postfix hands it over: header values after the colon,
	// CRLF body.
	head, body, _ := strings.Cut(msg, "\n\n")
	var hs []policy.Header
	for _, line := range strings.Split(head, "\n") {
		name, value, _ := strings.Cut(line, ":")
		hs = append(hs, policy.Header{Name: name, Value: value})
		must(s.HeaderField(name, value, nil))
	}
	must(s.HeaderEnd())
	body = strings.ReplaceAll(body, "\n", "\r\n")
	must(s.BodyChunk([]byte(body)))
	mods, act, err := s.End()
	if err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v %v", act, err)
	}
	var newBody []byte
	replaced := false
	for _, m := range mods {
		switch m.Type {
		case gomilter.ActionAddHeader:
			hs = append(hs, policy.Header{Name: m.HeaderName, Value: m.HeaderValue})
		case gomilter.ActionInsertHeader:
			i := min(int(m.HeaderIndex), len(hs))
			hs = append(hs[:i], append([]policy.Header{{Name: m.HeaderName, Value: m.HeaderValue}}, hs[i:]...)...)
		case gomilter.ActionChangeHeader:
			n := 0
			for i := range hs {
				if strings.EqualFold(hs[i].Name, m.HeaderName) {
					if n++; n == int(m.HeaderIndex) {
						if m.HeaderValue == "" {
							hs = append(hs[:i], hs[i+1:]...)
						} else {
							hs[i].Value = m.HeaderValue
						}
						break
					}
				}
			}
		case gomilter.ActionReplaceBody:
			replaced = true
			newBody = append(newBody, m.Body...)
		}
	}
	if replaced {
		body = string(newBody)
	}
	var b strings.Builder
	for _, h := range hs {
		v := strings.ReplaceAll(strings.ReplaceAll(h.Value, "\r\n", "\n"), "\n", "\r\n")
		if v != "" && v[0] != ' ' && v[0] != '\t' {
			v = " " + v // Postfix puts a space after the colon of a value without one
		}
		b.WriteString(h.Name + ":" + v + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// --output - writes the message instead of the report; a message the
// gateway does not pass on (refused) gives an empty output, the report
// says why.
func TestCheckOutputStdoutAndRefused(t *testing.T) {
	base := []string{"check", "--set", `domains=["agency.govt.nz"]`, "--set", `authserv_id="mx.agency.govt.nz"`, "--set", "record_times=false"}
	code, out, errs := runCmd(t, append(base, "--auth", "alice", "--output", "-", "testdata/outbound.eml")...)
	if code != 0 || !strings.HasPrefix(out, "From: Alice <alice@agency.govt.nz>\r\n") ||
		!strings.Contains(out, "\r\nX-NZ-Secure-email: compliant;") || !strings.HasSuffix(out, "\r\n\r\nSee attached.\r\n") {
		t.Fatalf("exit %d %s; output:\n%q", code, errs, out)
	}
	file := filepath.Join(t.TempDir(), "out.eml")
	code, out, errs = runCmd(t, append(base, "--auth", "bob", "--output", file, "testdata/outbound.eml")...)
	if code != 0 || !strings.Contains(out, `"action": "reject"`) {
		t.Fatalf("exit %d %s; report %s", code, errs, out)
	}
	if b, err := os.ReadFile(file); err != nil || len(b) != 0 {
		t.Errorf("refused message: output %q %v, want an empty file", b, err)
	}
}
