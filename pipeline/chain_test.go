package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// nopChecker runs no sender checks.
type nopChecker struct{}

func (nopChecker) Mail(context.Context, policy.Wants, policy.Conn, policy.Envelope) policy.MailChecks {
	return policy.MailChecks{}
}
func (nopChecker) Headers(context.Context, policy.Wants, policy.Conn, policy.Envelope, policy.MailChecks, []policy.Header) policy.HeaderChecks {
	return policy.HeaderChecks{}
}
func (nopChecker) Message(context.Context, policy.Wants, policy.Conn, policy.Envelope, []policy.Header, policy.MailChecks, io.Reader) policy.MessageChecks {
	return policy.MessageChecks{}
}

// footerStep is a test-only transform: it appends a line to the body and
// records in a header the Content-Type it saw, so the test can tell that
// it read the message as the step before it left it.
type footerStep struct{}

func (footerStep) Run(cur Current) (Change, error) {
	b, err := io.ReadAll(cur.Body())
	if err != nil {
		return Change{}, err
	}
	ct := policy.HeaderValues(cur.Headers, "Content-Type")
	seen := "none"
	if len(ct) > 0 {
		seen = strings.Fields(strings.TrimSpace(ct[len(ct)-1]))[0]
	}
	return Change{
		Edits: []policy.HeaderEdit{{Op: policy.OpAdd, Name: "X-Test-Step", Value: "saw " + seen}},
		Body:  io.MultiReader(bytes.NewReader(b), strings.NewReader("-- test footer\r\n")),
	}, nil
}

// Issue 13 point 4: two body steps on one message, then DKIM: warn-wrap,
// a test step that reads the wrapped form and changes it again, then the
// signature, which verifies over the final form; the net edits applied to
// the received headers give the final headers, and there is one body.
func TestChainTwoStepsThenDKIM(t *testing.T) {
	p, err := policy.Load("", []string{`domains=["agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`, "record_times=false"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := dkim.MarshalPrivateKey(key)
	k, err := dkim.ParseKey("s1", pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dkim.NewSigner("agency.govt.nz", []dkim.Key{k}, dkim.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record, _ := dkim.KeyRecord(key.Public())
	zone := dnstest.NewZone().TXT("s1._domainkey.agency.govt.nz", record)

	tx, v, err := Begin(State{Policy: p, Checker: nopChecker{}}, policy.Conn{TLS: policy.TLSInfo{Version: "TLSv1.3"}}, policy.Envelope{From: "a@example.com"}, time.Now())
	if err != nil || v.Final() {
		t.Fatalf("begin: %v %v", v.Action, err)
	}
	defer tx.Close()
	received := [][2]string{{"From", " Ann <ann@agency.govt.nz>"}, {"Subject", " hi"}, {"Content-Type", " text/plain"}}
	for _, h := range received {
		tx.Header(h[0], h[1])
	}
	tx.BodyChunk([]byte("Hello.\r\n"))
	verdict := policy.Verdict{Action: policy.Accept, Edits: []policy.HeaderEdit{{Op: policy.OpAdd, Name: "X-Verdict", Value: "first"}}}
	steps := []Step{
		WarnStep{Policy: p, Transform: policy.Transform{Kind: policy.TransformWarnWrap, Code: "002"}},
		footerStep{},
		SignStep{Signer: signer},
	}
	out, err := tx.Run(verdict, steps)
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	if _, err := out.WriteTo(&msg); err != nil {
		t.Fatal(err)
	}
	raw := msg.String()
	if got := policy.HeaderValues(out.Headers, "X-Test-Step"); len(got) != 1 || got[0] != "saw multipart/mixed;" {
		t.Errorf("the test step saw %q, want the wrapped form (multipart/mixed)", got)
	}
	if !strings.Contains(raw, "message/rfc822") || !strings.HasSuffix(raw, "-- test footer\r\n") {
		t.Errorf("the body is not the wrap with the footer after it:\n%s", raw)
	}
	if out.Signatures != 1 || !strings.HasPrefix(raw, "DKIM-Signature:") {
		t.Errorf("%d signatures; the message does not start with one:\n%s", out.Signatures, raw)
	}
	sigs, err := dkim.Verify(context.Background(), strings.NewReader(raw), dkim.VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil || len(sigs) != 1 || sigs[0].Result != dkim.Pass {
		t.Fatalf("DKIM does not verify over the final form: %+v %v\n%s", sigs, err, raw)
	}
	// The net edits, applied in order to the received headers, are the
	// final headers: what the milter sends is what check writes.
	var hs []policy.Header
	for _, h := range received {
		hs = append(hs, policy.Header{Name: h[0], Value: h[1]})
	}
	if got, want := fmt.Sprint(policy.ApplyEdits(hs, out.Edits)), fmt.Sprint(out.Headers); got != want {
		t.Errorf("net edits give\n%s\nwant\n%s", got, want)
	}
	body, _ := io.ReadAll(out.Body())
	if !bytes.HasSuffix(body, []byte("-- test footer\r\n")) {
		t.Errorf("the one body replacement is not the final body")
	}
}

// The steps of a verdict follow its Transforms; a refused message has
// none.
func TestStepsFollowTheVerdict(t *testing.T) {
	p, err := policy.Load("", []string{`domains=["agency.govt.nz"]`})
	if err != nil {
		t.Fatal(err)
	}
	tx, _, err := Begin(State{Policy: p, Checker: nopChecker{}}, policy.Conn{}, policy.Envelope{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	v := policy.Verdict{Action: policy.Accept, Transforms: []policy.Transform{{Kind: policy.TransformWarnPrepend, Code: "005"}, {Kind: policy.TransformDKIMSign, Domain: "agency.govt.nz"}}}
	steps, err := tx.Steps(v)
	if err != nil || len(steps) != 2 {
		t.Fatalf("%d steps, %v", len(steps), err)
	}
	if w, ok := steps[0].(WarnStep); !ok || w.Transform.Kind != policy.TransformWarnPrepend {
		t.Errorf("first step %#v, want the prepend warning", steps[0])
	}
	if _, ok := steps[1].(SignStep); !ok {
		t.Errorf("last step %#v, want DKIM", steps[1])
	}
	v.Action = policy.Reject
	if steps, _ := tx.Steps(v); len(steps) != 0 {
		t.Errorf("a refused message has %d steps", len(steps))
	}
	v.Action, v.Transforms = policy.Accept, []policy.Transform{{Kind: "bogus"}}
	if _, err := tx.Steps(v); err == nil {
		t.Error("an unknown transform is not an error")
	}
}

// FuzzReadRawHeaders: any input gives headers or an error, never a
// panic, within the bound; what it returns rebuilds to a header block.
func FuzzReadRawHeaders(f *testing.F) {
	f.Add("From: a@b\r\nSubject:  x\r\n\ty\r\n\r\nbody")
	f.Add("From x Mon\r\nA: b\r\n\r\n")
	f.Add(" cont\r\n")
	f.Add("Bad line\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		hs, err := ReadRawHeaders(bufio.NewReaderSize(strings.NewReader(in), 16), 4096)
		if err != nil {
			return
		}
		n := 0
		for _, h := range hs {
			if !message.ValidFieldName(h.Name) {
				t.Fatalf("name %q", h.Name)
			}
			n += len(h.Name) + len(h.Value)
		}
		if n > 4096 {
			t.Fatalf("%d bytes past the bound", n)
		}
	})
}
