package tlspolicy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func TestNetstring(t *testing.T) {
	good := map[string]string{"0:,": "", "5:hello,": "hello", "12:policy a.com,": "policy a.com"}
	for in, want := range good {
		got, err := ReadNetstring(bufio.NewReader(strings.NewReader(in)), 100)
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
		if enc := string(AppendNetstring(nil, []byte(want))); enc != in {
			t.Errorf("encode %q = %q", want, enc)
		}
	}
	bad := []string{":x,", "05:hello,", "5:hello;", "5:hel", "x:1,", "1234567890:x,", "101:" + strings.Repeat("a", 101) + ","}
	for _, in := range bad {
		if _, err := ReadNetstring(bufio.NewReader(strings.NewReader(in)), 100); !errors.Is(err, ErrNetstring) {
			t.Errorf("%q: want ErrNetstring, got %v", in, err)
		}
	}
	// Two in a row on one stream.
	r := bufio.NewReader(strings.NewReader("3:abc,2:de,"))
	a, _ := ReadNetstring(r, 10)
	b, _ := ReadNetstring(r, 10)
	if string(a) != "abc" || string(b) != "de" {
		t.Errorf("sequence: %q %q", a, b)
	}
}

func FuzzNetstring(f *testing.F) {
	f.Add([]byte("5:hello,"))
	f.Add([]byte("0:,3:abc,"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadNetstring(bufio.NewReader(bytes.NewReader(data)), 1000)
		if err == nil && !bytes.HasPrefix(data, AppendNetstring(nil, got)) {
			t.Fatalf("decoded %q from %q, which does not re-encode to a prefix", got, data)
		}
	})
}

type lookupFunc func(ctx context.Context, name, key string) Reply

func (f lookupFunc) Lookup(ctx context.Context, name, key string) Reply { return f(ctx, name, key) }

func startServer(t *testing.T, l Lookuper) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Lookup: l, LookupLimit: 300 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func exchange(t *testing.T, c net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	if _, err := c.Write(AppendNetstring(nil, []byte(req))); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := ReadNetstring(r, 100000)
	if err != nil {
		t.Fatalf("reply to %q: %v", req, err)
	}
	return string(reply)
}

// The socketmap protocol: OK, NOTFOUND, TEMP, PERM, TIMEOUT, several
// requests on one connection, and a framing error closing the connection.
func TestServerProtocol(t *testing.T) {
	addr := startServer(t, lookupFunc(func(ctx context.Context, name, key string) Reply {
		switch key {
		case "secure.example":
			return Reply{OK, "encrypt protocols=>=TLSv1.2"}
		case "temp.example":
			return Reply{Temp, "resolver down"}
		case "perm.example":
			return Reply{Perm, "bad"}
		case "slow.example":
			<-ctx.Done()
			return Reply{OK, "too late"}
		}
		return Reply{Status: NotFound}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for req, want := range map[string]string{
		"policy secure.example": "OK encrypt protocols=>=TLSv1.2",
		"policy other.example":  "NOTFOUND ",
		"policy temp.example":   "TEMP resolver down",
		"policy perm.example":   "PERM bad",
		"policy slow.example":   "TIMEOUT lookup timed out",
		"nokey":                 "PERM request must be: name <space> key",
	} {
		if got := exchange(t, c, r, req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
	c.Write([]byte("x:garbage,"))
	reply, err := ReadNetstring(r, 1000)
	if err != nil || string(reply) != "PERM malformed request" {
		t.Errorf("framing error reply %q %v", reply, err)
	}
	if _, err := ReadNetstring(r, 1000); err == nil {
		t.Error("connection not closed after a framing error")
	}
}

// stsWorld is a loopback HTTPS server for mta-sts.* names and a TXT table.
type stsWorld struct {
	mu       sync.Mutex
	txt      map[string][]string
	txtErr   map[string]error
	policies map[string]string // host -> body
	fetches  atomic.Int64
	now      time.Time
	cache    *STSCache
}

var errNotFound = errors.New("not found")

func newSTSWorld(t *testing.T) *stsWorld {
	w := &stsWorld{txt: map[string][]string{}, txtErr: map[string]error{}, policies: map[string]string{}, now: time.Unix(1_800_000_000, 0)}
	pool, cert := testpki.New(t, "mta-sts.enforce.example", "mta-sts.testing.example", "mta-sts.redirect.example", "mta-sts.html.example", "mta-sts.big.example", "mta-sts.missing.example")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.fetches.Add(1)
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		switch r.Host {
		case "mta-sts.redirect.example":
			http.Redirect(rw, r, "https://mta-sts.enforce.example/.well-known/mta-sts.txt", http.StatusFound)
			return
		case "mta-sts.html.example":
			rw.Header().Set("Content-Type", "text/html")
		case "mta-sts.big.example":
			rw.Header().Set("Content-Type", "text/plain")
			rw.Write([]byte("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 100\n" + strings.Repeat("#", 70000)))
			return
		default:
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.mu.Lock()
		body, ok := w.policies[r.Host]
		w.mu.Unlock()
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Write([]byte(body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		// Every mta-sts.* name resolves to the loopback server.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	w.cache = &STSCache{
		HTTP:     client,
		NotFound: errNotFound,
		Now:      func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now },
		LookupTXT: func(ctx context.Context, name string) ([]string, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if err := w.txtErr[name]; err != nil {
				return nil, err
			}
			if r, ok := w.txt[name]; ok {
				return r, nil
			}
			return nil, fmt.Errorf("%s: %w", name, errNotFound)
		},
	}
	return w
}

func (w *stsWorld) set(domain, txt, policy string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.txt["_mta-sts."+domain] = []string{txt}
	w.policies["mta-sts."+domain] = policy
}

func (w *stsWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

const enforcePolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.enforce.example\r\nmx: *.backup.example\r\nmax_age: 86400\r\n"

// G-MTASTS: RFC 8461 discovery, fetch and caching against a real HTTPS
// server with a test CA.
func TestSTSCache(t *testing.T) {
	w := newSTSWorld(t)
	ctx := context.Background()
	w.set("enforce.example", "v=STSv1; id=20240101;", enforcePolicy)
	p, err := w.cache.Get(ctx, "enforce.example")
	if err != nil || p.Mode != ModeEnforce || len(p.MX) != 2 || p.MaxAge != 24*time.Hour || p.ID != "20240101" {
		t.Fatalf("enforce: %+v %v", p, err)
	}
	for host, want := range map[string]bool{"mx1.enforce.example": true, "MX1.enforce.example.": true, "a.backup.example": true,
		"backup.example": false, "a.b.backup.example": false, "mx2.enforce.example": false} {
		if got := p.MatchMX(host); got != want {
			t.Errorf("MatchMX(%q) = %v, want %v", host, got, want)
		}
	}
	n := w.fetches.Load()
	// Same id after the recheck interval: no new fetch (section 5.1).
	w.advance(10 * time.Minute)
	if _, err := w.cache.Get(ctx, "enforce.example"); err != nil || w.fetches.Load() != n {
		t.Errorf("unchanged id refetched (%d fetches) %v", w.fetches.Load()-n, err)
	}
	// DNS failing: the cached policy stays in force.
	w.mu.Lock()
	w.txtErr["_mta-sts.enforce.example"] = errors.New("SERVFAIL")
	w.mu.Unlock()
	w.advance(10 * time.Minute)
	if p, err := w.cache.Get(ctx, "enforce.example"); err != nil || p.Mode != ModeEnforce {
		t.Errorf("cached policy not used on DNS failure: %v %v", p, err)
	}
	w.mu.Lock()
	delete(w.txtErr, "_mta-sts.enforce.example")
	w.mu.Unlock()
	// New id: fetched again, new policy in force.
	w.set("enforce.example", "v=STSv1; id=20240202;", strings.Replace(enforcePolicy, "mode: enforce", "mode: testing", 1))
	w.advance(10 * time.Minute)
	if p, err := w.cache.Get(ctx, "enforce.example"); err != nil || p.Mode != ModeTesting || w.fetches.Load() != n+1 {
		t.Errorf("changed id: %+v %v fetches %d", p, err, w.fetches.Load()-n)
	}
	// Web server gone, policy expired: no policy.
	w.mu.Lock()
	delete(w.policies, "mta-sts.enforce.example")
	w.txt["_mta-sts.enforce.example"] = []string{"v=STSv1; id=20240303;"}
	w.mu.Unlock()
	w.advance(25 * time.Hour)
	if _, err := w.cache.Get(ctx, "enforce.example"); err == nil {
		t.Error("expired policy whose server is gone still used")
	}

	// Refusals of RFC 8461 section 3.3.
	w.set("redirect.example", "v=STSv1; id=1;", enforcePolicy)
	w.set("html.example", "v=STSv1; id=1;", enforcePolicy)
	w.set("big.example", "v=STSv1; id=1;", enforcePolicy)
	for domain, want := range map[string]string{"redirect.example": "HTTP 302", "html.example": "text/html", "big.example": "larger than"} {
		if _, err := w.cache.Get(ctx, domain); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", domain, err, want)
		}
	}
	if _, err := w.cache.Get(ctx, "nothing.example"); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("no TXT: %v", err)
	}
	// A certificate that does not cover the name is refused.
	w.set("wrongcert.example", "v=STSv1; id=1;", enforcePolicy)
	if _, err := w.cache.Get(ctx, "wrongcert.example"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong certificate: %v", err)
	}
}

func TestParseSTS(t *testing.T) {
	for _, c := range []struct {
		txts []string
		id   string
		err  error
	}{
		{[]string{"v=STSv1; id=abc123"}, "abc123", nil},
		{[]string{"v=spf1 -all", "v=STSv1;id=X1;"}, "X1", nil},
		{nil, "", ErrNoPolicy},
		{[]string{"v=STSv1; id=a", "v=STSv1; id=b"}, "", ErrBadPolicy},
		{[]string{"v=STSv1; id=bad-id"}, "", ErrBadPolicy},
		{[]string{"v=STSv1;"}, "", ErrBadPolicy},
		{[]string{"v=STSv10; id=a"}, "", ErrBadPolicy},
	} {
		id, err := ParseSTSRecord(c.txts)
		if id != c.id || !errors.Is(err, c.err) {
			t.Errorf("%q: %q %v", c.txts, id, err)
		}
	}
	for text, ok := range map[string]bool{
		enforcePolicy: true,
		"version: STSv1\nmode: none\nmax_age: 0\n":                   true,
		"version: STSv1\nmode: enforce\nmax_age: 10\n":               false, // no mx
		"version: STSv2\nmode: enforce\nmx: a\nmax_age: 10\n":        false,
		"version: STSv1\nmode: strict\nmx: a\nmax_age: 10\n":         false,
		"version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999": false,
		"version: STSv1\nmode: enforce\nmx: a\n":                     false,
		"garbage":                                                    false,
	} {
		_, err := ParseSTSPolicy(text)
		if (err == nil) != ok {
			t.Errorf("%q: %v", text, err)
		}
	}
}

func FuzzParseSTSPolicy(f *testing.F) {
	f.Add(enforcePolicy)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseSTSPolicy(text)
		if err == nil && p.Mode != ModeNone && len(p.MX) == 0 {
			t.Fatal("policy without mx accepted")
		}
	})
}

func decider(t *testing.T, w *stsWorld, sets ...string) *Decider {
	t.Helper()
	p, err := policy.Load("", append([]string{
		`outbound.secure_domains=["*.govt.nz"]`, `outbound.seemail_domains=["seemail.example"]`,
		`outbound.securemail_domains=["securemail.example"]`, `outbound.exceptions=["partner.example"]`}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	d := &Decider{Policy: func() *policy.Policy { return p }}
	if w != nil {
		d.STS = w.cache
	}
	return d
}

// M-SEC-OUT, G-MTASTS: what Postfix is told for each kind of domain.
func TestDecider(t *testing.T) {
	w := newSTSWorld(t)
	w.set("enforce.example", "v=STSv1; id=1;", enforcePolicy)
	w.set("testing.example", "v=STSv1; id=1;", strings.Replace(enforcePolicy, "enforce\r", "testing\r", 1))
	ctx := context.Background()
	d := decider(t, w)
	for key, want := range map[string]string{
		"mfat.govt.nz":       "OK encrypt protocols=>=TLSv1.2",
		"MFAT.govt.nz.":      "OK encrypt protocols=>=TLSv1.2",
		"seemail.example":    "OK encrypt protocols=>=TLSv1.2",
		"securemail.example": "OK encrypt protocols=>=TLSv1.2",
		"partner.example":    "NOTFOUND ",
		"enforce.example":    "OK secure match=mx1.enforce.example:.backup.example servername=hostname protocols=>=TLSv1.2",
		"testing.example":    "NOTFOUND ",
		"plain.example":      "NOTFOUND ",
		"[relay.example]:25": "NOTFOUND ",
		"govt.nz":            "NOTFOUND ",
	} {
		if got := d.Lookup(ctx, "policy", key).String(); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	d = decider(t, w, `tlspolicy.level="secure"`, `tlspolicy.min_tls="1.3"`, "tlspolicy.exceptions=true", "tlspolicy.mta_sts=false")
	for key, want := range map[string]string{
		"mfat.govt.nz":    "OK secure match=nexthop:dot-nexthop protocols=>=TLSv1.3",
		"partner.example": "OK secure match=nexthop:dot-nexthop protocols=>=TLSv1.3",
		"enforce.example": "NOTFOUND ",
	} {
		if got := d.Lookup(ctx, "policy", key).String(); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}

func TestWritePostmap(t *testing.T) {
	var b bytes.Buffer
	if err := WritePostmap(&b, decider(t, nil).Policy()); err != nil {
		t.Fatal(err)
	}
	want := "# TLS policy table written by nzsecure-milter from embedded default; run postmap on it.\n" +
		".govt.nz encrypt protocols=>=TLSv1.2\n" +
		"securemail.example encrypt protocols=>=TLSv1.2\n" +
		"seemail.example encrypt protocols=>=TLSv1.2\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
