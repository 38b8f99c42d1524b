package selftest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func testPolicy(t *testing.T, sets ...string) *policy.Policy {
	t.Helper()
	p, err := policy.Load("", append([]string{`domains=["agency.govt.nz"]`}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToken(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Unix(1_800_000_000, 0)
	tok := Token(key, "ping", now)
	if sc, err := Verify(key, tok, now.Add(time.Minute)); err != nil || sc != "ping" {
		t.Fatalf("Verify = %q, %v", sc, err)
	}
	for name, c := range map[string]struct {
		key   []byte
		value string
		at    time.Time
	}{
		"other key":       {[]byte(strings.Repeat("x", 32)), tok, now},
		"scenario edited": {key, strings.Replace(tok, "scenario=ping", "scenario=inbound-spoof", 1), now},
		"too old":         {key, tok, now.Add(MaxSkew + time.Second)},
		"from the future": {key, tok, now.Add(-MaxSkew - time.Second)},
		"malformed":       {key, "garbage", now},
		"no key":          {nil, tok, now},
	} {
		if _, err := Verify(c.key, c.value, c.at); !errors.Is(err, ErrToken) {
			t.Errorf("%s: error %v, want ErrToken", name, err)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "selftest.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if string(k) != string(keys[0]) || len(k) != keyBytes {
			t.Fatal("concurrent first users got different keys")
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a corrupt key file accepted")
	}
	if _, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "no", "dir", "key")); err == nil {
		t.Error("a key in a missing directory: no error")
	}
}

func TestReplyRoundTrip(t *testing.T) {
	v := policy.Verdict{Action: policy.Quarantine, Classification: "TOP SECRET", WarningCode: "001",
		Notices: []policy.Notice{{Kind: policy.NoticeHeld}, {Kind: policy.NoticePing}},
		Reply:   &policy.Reply{Code: 550, Status: "5.7.1"}}
	o, ok := ParseReply(ReplyText("outbound-secret", v))
	want := Outcome{Scenario: "outbound-secret", Action: "quarantine", Classification: "TOP SECRET", Warning: "001", Notices: "held,ping", Reply: "550/5.7.1"}
	if !ok || o != want {
		t.Errorf("ParseReply(ReplyText) = %+v, %v; want %+v", o, ok, want)
	}
	o, ok = ParseReply(ReplyText("ping", policy.Verdict{Action: policy.Accept, Classification: policy.Unclassified}))
	if !ok || o.Warning != "-" || o.Notices != "-" || o.Reply != "-" {
		t.Errorf("empty fields: %+v", o)
	}
	for _, bad := range []string{"", "selftest", "Must issue a STARTTLS command first", `selftest x: classification="open`} {
		if _, ok := ParseReply(bad); ok {
			t.Errorf("ParseReply(%q) ok", bad)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(`selftest ping: action=discard classification="UNCLASSIFIED" warning=- notices=ping reply=-`)
	f.Add(`selftest a: action=x classification="`)
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := ParseReply(s)
		if ok && o.Action == "" {
			t.Fatal("ok without an action")
		}
	})
}

func TestScenariosFollowPolicy(t *testing.T) {
	find := func(p *policy.Policy, name string) scenario {
		for _, s := range scenarios(p) {
			if s.name == name {
				return s
			}
		}
		t.Fatalf("no scenario %s", name)
		return scenario{}
	}
	if s := find(testPolicy(t), "inbound-plaintext"); s.skip != "" || !strings.Contains(s.want, "5.7.10") {
		t.Errorf("sge: plaintext scenario %+v, want a 5.7.10 refusal expected", s)
	}
	if s := find(testPolicy(t, `profile="securemail"`), "inbound-plaintext"); s.skip == "" {
		t.Error("securemail (plaintext allowed): plaintext scenario not skipped")
	}
	if s := find(testPolicy(t, `notify.ping_address="off"`), "ping"); s.skip == "" {
		t.Error("ping off: ping scenario not skipped")
	}
	if s := find(testPolicy(t, `outbound.by_class.SECRET="exception-only"`), "outbound-secret"); !strings.Contains(s.want, "refused") {
		t.Errorf("SECRET exception-only: want %q, expected a refusal", s.want)
	}
	if s := find(testPolicy(t), "inbound-spoof"); s.header != "selftest@agency.govt.nz" || s.rcpt != "postmaster@agency.govt.nz" {
		t.Errorf("spoof scenario %+v", s)
	}
}

func TestSources(t *testing.T) {
	p := testPolicy(t)
	in, out, err := Sources(p, "127.0.0.1:25", "", "")
	if err != nil || in != "127.0.0.2" || out != "127.0.0.1" {
		t.Errorf("Sources = %q, %q, %v; want 127.0.0.2, 127.0.0.1", in, out, err)
	}
	wide := testPolicy(t, `internal_networks=["127.0.0.0/8"]`)
	if _, _, err := Sources(wide, "127.0.0.1:25", "", ""); err == nil || !strings.Contains(err.Error(), "inbound source") {
		t.Errorf("every loopback address internal: error %v", err)
	}
	if _, _, err := Sources(p, "192.0.2.1:25", "", ""); err == nil {
		t.Error("a remote MTA without sources: no error")
	}
	if _, _, err := Sources(p, "127.0.0.1:25", "127.0.0.1", ""); err == nil || !strings.Contains(err.Error(), "internal_networks") {
		t.Errorf("an internal inbound source: error %v", err)
	}
}

// fakeMTA answers like Postfix with nzsecure-milter would: STARTTLS
// offered; plaintext refused at MAIL FROM when requireTLS; at the end of
// a message with a valid token, 550 5.7.0 with the verdict verdicts gives
// (ignoreToken: queued instead, as an MTA without the milter).
type fakeMTA struct {
	key         []byte
	cert        tls.Certificate
	requireTLS  bool
	ignoreToken bool
	noTLS       bool   // STARTTLS not offered
	tlsRefusal  string // the MAIL FROM refusal of a plaintext session
	verdicts    map[string]policy.Verdict
	mu          sync.Mutex
	from        map[string]string // scenario: client IP
}

func (f *fakeMTA) serve(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.session(c)
		}
	}()
	return ln.Addr().String()
}

func (f *fakeMTA) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	client, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	tp := textproto.NewConn(c)
	secure := false
	_ = tp.PrintfLine("220 fake ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			if f.noTLS {
				_ = tp.PrintfLine("250-fake\r\n250 8BITMIME")
			} else {
				_ = tp.PrintfLine("250-fake\r\n250-STARTTLS\r\n250 8BITMIME")
			}
		case cmd == "STARTTLS":
			_ = tp.PrintfLine("220 2.0.0 go ahead")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{f.cert}})
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			tp = textproto.NewConn(tc)
		case strings.HasPrefix(cmd, "MAIL"):
			if f.requireTLS && !secure && client != "127.0.0.1" { // inbound only, as the milter

				refusal := f.tlsRefusal
				if refusal == "" {
					refusal = "530 5.7.10 Must issue a STARTTLS command first"
				}
				_ = tp.PrintfLine("%s", refusal)
				continue
			}
			_ = tp.PrintfLine("250 2.1.0 Ok")
		case strings.HasPrefix(cmd, "RCPT"):
			_ = tp.PrintfLine("250 2.1.5 Ok")
		case cmd == "DATA":
			_ = tp.PrintfLine("354 go")
			body, _ := io.ReadAll(tp.DotReader())
			hdr, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader()
			sc, err := Verify(f.key, hdr.Get(Header), time.Now())
			f.mu.Lock()
			f.from[sc] = client
			f.mu.Unlock()
			switch {
			case f.ignoreToken:
				_ = tp.PrintfLine("250 2.0.0 Ok: queued as FAKE")
			case err != nil:
				_ = tp.PrintfLine("550 5.7.0 %s", err)
			default:
				_ = tp.PrintfLine("550 5.7.0 %s", ReplyText(sc, f.verdicts[sc]))
			}
		case cmd == "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 5.5.2 what")
		}
	}
}

func goodVerdicts() map[string]policy.Verdict {
	return map[string]policy.Verdict{
		"inbound-spoof":     {Action: policy.Accept, Classification: policy.Unclassified, WarningCode: policy.WarningOwnAgency},
		"inbound-plaintext": {Action: policy.Accept, Classification: policy.Unclassified},
		"outbound-secret":   {Action: policy.Quarantine, Classification: "SECRET", Notices: []policy.Notice{{Kind: policy.NoticeHeld}}},
		"ping":              {Action: policy.Discard, Classification: policy.Unclassified, Notices: []policy.Notice{{Kind: policy.NoticePing}}},
	}
}

func TestRunAgainstFakeMTA(t *testing.T) {
	_, cert := testpki.New(t, "localhost")
	key := []byte(strings.Repeat("s", 32))
	status := func(rep *Report) map[string]Status {
		m := map[string]Status{}
		for _, r := range rep.Results {
			m[r.Scenario] = r.Status
		}
		return m
	}
	t.Run("green", func(t *testing.T) {
		f := &fakeMTA{key: key, cert: cert, requireTLS: true, verdicts: goodVerdicts(), from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		var b strings.Builder
		_ = rep.Write(&b)
		if !rep.OK() || len(rep.Results) != 4 {
			t.Fatalf("report not green:\n%s", b.String())
		}
		if !strings.Contains(b.String(), "4 scenario(s), 0 failed: PASSED") {
			t.Errorf("summary line:\n%s", b.String())
		}
		// Inbound scenarios from outside internal_networks, the outbound
		// one from inside.
		if f.from["inbound-spoof"] != "127.0.0.2" || f.from["ping"] != "127.0.0.2" || f.from["outbound-secret"] != "127.0.0.1" {
			t.Errorf("client addresses %v", f.from)
		}
	})
	t.Run("plaintext accepted", func(t *testing.T) {
		f := &fakeMTA{key: key, cert: cert, verdicts: goodVerdicts(), from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if s := status(rep); rep.OK() || s["inbound-plaintext"] != Fail || s["inbound-spoof"] != Pass {
			t.Errorf("statuses %v, want only inbound-plaintext failed", s)
		}
	})
	t.Run("spoof not warned", func(t *testing.T) {
		v := goodVerdicts()
		v["inbound-spoof"] = policy.Verdict{Action: policy.Accept, Classification: policy.Unclassified}
		f := &fakeMTA{key: key, cert: cert, requireTLS: true, verdicts: v, from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if s := status(rep); s["inbound-spoof"] != Fail || rep.Failed() != 1 {
			t.Errorf("statuses %v, want inbound-spoof failed", s)
		}
	})
	t.Run("no milter", func(t *testing.T) {
		f := &fakeMTA{key: key, cert: cert, requireTLS: true, ignoreToken: true, from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if rep.Failed() != 3 {
			t.Errorf("%d failed, want 3 (every scenario that reaches the end of the message)", rep.Failed())
		}
		for _, r := range rep.Results {
			if r.Status == Fail && !strings.Contains(r.Got, "queued") {
				t.Errorf("%s: got %q, want it to say the MTA queued it", r.Scenario, r.Got)
			}
		}
	})
	t.Run("another key", func(t *testing.T) {
		f := &fakeMTA{key: []byte(strings.Repeat("o", 32)), cert: cert, requireTLS: true, verdicts: goodVerdicts(), from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if rep.Failed() != 3 {
			t.Errorf("%d failed, want 3", rep.Failed())
		}
	})
	t.Run("the MTA enforces TLS itself", func(t *testing.T) {
		f := &fakeMTA{key: key, cert: cert, requireTLS: true, tlsRefusal: "530 5.7.0 Must issue a STARTTLS command first", verdicts: goodVerdicts(), from: map[string]string{}}
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if !rep.OK() {
			t.Errorf("statuses %v, want green", status(rep))
		}
	})
	t.Run("no STARTTLS", func(t *testing.T) {
		f := &fakeMTA{key: key, cert: cert, noTLS: true, verdicts: goodVerdicts(), from: map[string]string{}}
		// sge asks for TLS: the TLS scenarios cannot run.
		rep := Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t), Key: key, Timeout: 10 * time.Second})
		if s := status(rep); s["inbound-spoof"] != Fail || s["ping"] != Fail {
			t.Errorf("sge without STARTTLS: statuses %v, want the TLS scenarios failed", s)
		}
		// seemail allows plaintext: they run without it.
		rep = Run(context.Background(), Config{SMTP: f.serve(t), Policy: testPolicy(t, `profile="seemail"`), Key: key, Timeout: 10 * time.Second})
		if s := status(rep); !rep.OK() || s["inbound-plaintext"] != Skip {
			t.Errorf("seemail without STARTTLS: statuses %v, want green, plaintext skipped", s)
		}
	})
	t.Run("no MTA", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		rep := Run(context.Background(), Config{SMTP: addr, Policy: testPolicy(t), Key: key, Timeout: 5 * time.Second})
		if rep.Failed() != 4 {
			t.Errorf("%d failed with nothing listening, want 4", rep.Failed())
		}
	})
}

func FuzzVerify(f *testing.F) {
	key := []byte(strings.Repeat("f", 32))
	now := time.Unix(1_800_000_000, 0)
	f.Add(Token(key, "ping", now))
	f.Add("scenario=a; t=1; n=2; mac=3")
	f.Add(";;==;")
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := Verify(key, s, now)
		if err != nil && !errors.Is(err, ErrToken) {
			t.Fatalf("error %v does not wrap ErrToken", err)
		}
		if err == nil && (sc == "" || strings.ContainsAny(sc, " \t\r\n")) {
			t.Fatalf("verified scenario %q", sc)
		}
	})
}

func TestPingPeers(t *testing.T) {
	_, cert := testpki.New(t, "localhost")
	key := []byte(strings.Repeat("s", 32))
	f := &fakeMTA{key: key, cert: cert, ignoreToken: true, from: map[string]string{}} // queues the pings
	addr := f.serve(t)
	dir := filepath.Join(t.TempDir(), "peer-answers")
	run := func(p *policy.Policy, wait time.Duration) []Result {
		return PingPeers(context.Background(), PeerConfig{
			Config: Config{SMTP: addr, Policy: p, Key: key, Timeout: 5 * time.Second},
			Peers:  []string{"ping@peer.example", "ping@silent.example"}, AnswersDir: dir, Wait: wait, Poll: 10 * time.Millisecond})
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		if err := RecordAnswer(dir, PeerAnswer{Domain: "Peer.Example", From: "postmaster@peer.example", Received: time.Now()}); err != nil {
			t.Error(err)
		}
	}()
	res := run(testPolicy(t), time.Second)
	if len(res) != 2 || res[0].Status != Pass || !strings.Contains(res[0].Got, "answered by postmaster@peer.example") {
		t.Errorf("peer.example: %+v, want answered", res[0])
	}
	if res[1].Status != Fail || !strings.Contains(res[1].Got, "no answer") {
		t.Errorf("silent.example: %+v, want no answer", res[1])
	}
	// With S/MIME on, an unsigned answer fails (R99).
	res = run(testPolicy(t, `smime.mode="on"`), 50*time.Millisecond)
	if res[0].Status != Fail {
		t.Errorf("unsigned answer with smime.mode on: %+v, want fail", res[0])
	}
	// An answer older than the ping does not count.
	if err := RecordAnswer(dir, PeerAnswer{Domain: "peer.example", From: "postmaster@peer.example", Received: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if res = run(testPolicy(t), 50*time.Millisecond); res[0].Status != Fail {
		t.Errorf("stale answer: %+v, want fail", res[0])
	}
	if !IsSigned(`multipart/signed; protocol="application/pkcs7-signature"`) || !IsSigned(`application/pkcs7-mime; smime-type=signed-data`) || IsSigned("text/plain") {
		t.Error("IsSigned")
	}
}
