package milter

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math/rand"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// encodingJSON is what slog.JSONHandler writes for v (encoding/json,
// HTML escaping off).
func encodingJSON(t *testing.T, v any) string {
	t.Helper()
	var bb bytes.Buffer
	enc := json.NewEncoder(&bb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(bb.String(), "\n")
}

// checkAppender compares an appender with encoding/json on random values
// of T: every field, exported or tagged, gets random contents (quick
// fills them all), so a field added to T and not to its appender fails.
func checkAppender[T any](t *testing.T, each func([]byte, *T) []byte) {
	t.Helper()
	r := rand.New(rand.NewSource(7))
	typ := reflect.TypeFor[T]()
	nasty := []string{"", `"\` + "\x00\b\f\n\u2028<&>", "\xff\xfe bad", "caf\u00e9"}
	for i := range 3000 {
		rv, ok := quick.Value(typ, r)
		if !ok {
			t.Fatalf("no random %v", typ)
		}
		x := rv.Interface().(T)
		if i%3 == 0 {
			// Empty and hostile strings, false booleans: the omitempty
			// cases and the escapes.
			p := reflect.ValueOf(&x).Elem()
			for f := range p.NumField() {
				switch fv := p.Field(f); fv.Kind() {
				case reflect.String:
					fv.SetString(nasty[r.Intn(len(nasty))])
				case reflect.Bool:
					fv.SetBool(r.Intn(2) == 0)
				}
			}
		}
		if got, want := string(each(nil, &x)), encodingJSON(t, x); got != want {
			t.Fatalf("%v:\n got  %s\n want %s", typ, got, want)
		}
	}
}

// TestDecisionJSON: the decision line's hand-written values are what
// encoding/json writes for them (issue 13 point 7).
func TestDecisionJSON(t *testing.T) {
	checkAppender(t, appendAuthCheck)
	checkAppender(t, appendDKIMCheck)
	checkAppender(t, appendRecipientDecision)
	checkAppender(t, appendMarking)
	checkAppender(t, func(b []byte, c *policy.DMARCCheck) []byte { return appendDMARCCheck(b, c) })
	if got := string(appendDMARCCheck(nil, nil)); got != "null" {
		t.Errorf("nil DMARC: %s", got)
	}
	for _, ss := range [][]string{nil, {}, {"a", "\x00\xff"}} {
		if got, want := string(appendJSONStrings(nil, ss)), encodingJSON(t, ss); got != want {
			t.Errorf("strings %q: %s, want %s", ss, got, want)
		}
		var ms []classify.Marking
		if ss != nil {
			ms = []classify.Marking{}
		}
		if got, want := string(appendJSONList(nil, ms, appendMarking)), encodingJSON(t, ms); got != want {
			t.Errorf("markings %v: %s, want %s", ms, got, want)
		}
	}
}

// TestDecisionLineMatchesSlog: serve's decision line (jsonlog's fast path)
// is the line slog.JSONHandler writes for the same transaction, for
// inbound, outbound and refused mail.
func TestDecisionLineMatchesSlog(t *testing.T) {
	p, err := policy.Load("", []string{`domains=["agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`, `internal_networks=["10.0.0.0/8"]`})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.NewState(p, testChecker())
	if err != nil {
		t.Fatal(err)
	}
	inbound := policy.Conn{ClientIP: netip.MustParseAddr("203.0.113.9"), ClientName: "mail.example.com", HELO: "mail.example.com", Daemon: "smtpd",
		TLS: policy.TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", CipherBits: 256}}
	outbound := policy.Conn{ClientIP: netip.MustParseAddr("10.1.2.3"), ClientName: "ws.agency.govt.nz", HELO: "ws", Daemon: "submission"}
	cases := []struct {
		name    string
		conn    policy.Conn
		from    string
		rcpts   []string
		subject string
		body    string
	}{
		{"inbound marked", inbound, "sender@example.com", []string{"bob@agency.govt.nz"}, "[IN-CONFIDENCE] figures \x7f \u2028", "body\r\n"},
		{"inbound spoof", inbound, "x@evil.example", []string{"bob@agency.govt.nz", "\"odd\\\"\"@agency.govt.nz"}, "hi", "[SECRET] <b>&amp;</b>\r\n"},
		{"inbound impersonation", inbound, "ceo@agency.govt.nz", []string{"bob@agency.govt.nz"}, "pay this", "<p>now</p>\r\n"},
		{"inbound unreadable", inbound, "sender@example.com", []string{"bob@agency.govt.nz"}, "=?utf-16?b?AFsAUwBF?=", "\x00\x00\r\n"},
		{"outbound", outbound, "alice@agency.govt.nz", []string{"x@example.com", "y@partner.govt.nz"}, "[SENSITIVE] plan", "text\r\n"},
		{"outbound unclassified", outbound, "alice@agency.govt.nz", []string{"x@example.com"}, "lunch", "café \xff\r\n"},
	}
	strip := regexp.MustCompile(`(?m)^\{"time":"[^"]*",`)
	for _, c := range cases {
		env := policy.Envelope{From: c.from}
		if c.conn.Daemon == "submission" {
			env.AuthUser = c.from
		}
		tx, v, err := pipeline.Begin(st, c.conn, env, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !v.Final() {
			for _, r := range c.rcpts {
				tx.Rcpt(r)
			}
			tx.SetQueueID("4ABC123")
			for _, h := range [][2]string{{"From", " Someone <" + c.from + ">"}, {"To", " " + c.rcpts[0]}, {"Subject", " " + c.subject},
				{"Message-ID", " <1@example.com>"}, {"MIME-Version", " 1.0"}, {"Content-Type", " text/html; charset=utf-8"}} {
				tx.Header(h[0], h[1])
			}
			tx.EndOfHeaders()
			tx.BodyChunk([]byte(c.body))
			v = tx.EndOfMessage()
		}
		var fast, slow bytes.Buffer
		for _, run := range []struct {
			h   slog.Handler
			out *bytes.Buffer
		}{{jsonlog.New(&fast, nil), &fast}, {slog.NewJSONHandler(&slow, nil), &slow}} {
			s := &session{srv: &Server{log: slog.New(run.h)}, conn: c.conn, tx: tx}
			s.logDecision(v, nil)
		}
		tx.Close()
		got, want := strip.ReplaceAllString(fast.String(), "{"), strip.ReplaceAllString(slow.String(), "{")
		t.Logf("%s: %s", c.name, got)
		if got != want || !strings.Contains(want, `"msg":"decision"`) {
			t.Errorf("%s:\n jsonlog %s\n slog    %s", c.name, got, want)
		}
	}
}
