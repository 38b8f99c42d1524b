package dkim

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

// rawSign signs msg with the RSA key under tags the production signer
// cannot write (l=), relaxed/relaxed, h= as given; l < 0 means no l=. It
// returns the DKIM-Signature field value.
func rawSign(t *testing.T, msg string, k Key, domain string, h []string, l int64) string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	hdr, err := readHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	bh := sha256.New()
	c := newBodyCanon(&limitWriter{w: bh, n: l}, true)
	if _, err := br.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	v := fmt.Sprintf(" v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s;", domain, k.Selector)
	if l >= 0 {
		v += fmt.Sprintf(" l=%d;", l)
	}
	v += " h=" + strings.Join(h, ":") + "; bh=" + base64.StdEncoding.EncodeToString(bh.Sum(nil)) + "; b="
	hh := sha256.New()
	hx := indexHeader(hdr)
	used := map[string]int{}
	for _, name := range h {
		ln := strings.ToLower(name)
		if f := hx.pick(ln, used[ln]); f != "" {
			hh.Write([]byte(canonHeader(f, true)))
		}
		used[ln]++
	}
	hh.Write([]byte(strings.TrimRight(canonHeader("DKIM-Signature:"+v+crlf, true), "\r\n")))
	sig, err := k.Signer.Sign(rand.Reader, hh.Sum(nil), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return v + base64.StdEncoding.EncodeToString(sig)
}

func verifyOne(t *testing.T, msg string, zone *dnstest.Zone) Signature {
	t.Helper()
	sigs, err := Verify(context.Background(), strings.NewReader(msg), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Fatalf("%d signatures", len(sigs))
	}
	return sigs[0]
}

// RFC 6376 section 8.15: a signed message replayed with an unsigned
// instance of a signed field added above the signed one still verifies
// (the signed instance is picked from the bottom), but a mail client
// shows the added one: policy, never pass.
func TestVerifyHeaderReplay(t *testing.T) {
	rsaKey, _ := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey)
	msg := testMessage("agency.govt.nz", 300)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed := prepend(msg, values...)
	cases := []struct {
		name   string
		msg    string
		want   Result
		reason string
	}{
		{"as signed", signed, Pass, ""},
		{"Subject on top", "Subject: Urgent: new bank details\r\n" + signed, Policy, "2 subject fields"},
		{"Date on top", "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n" + signed, Policy, "2 date fields"},
		{"To on top", "To: victim@agency.govt.nz\r\n" + signed, Policy, "2 to fields"},
		{"Content-Type on top", "Content-Type: text/html\r\n" + signed, Policy, "2 content-type fields"},
		// From is oversigned by our signer: the added From breaks it.
		{"From on top", "From: ceo@agency.govt.nz\r\n" + signed, Fail, "signature did not verify"},
		// A field the signature does not cover, or a trace field added
		// by every hop, changes nothing.
		{"Received on top", "Received: from mx.example.net\r\n" + signed, Pass, ""},
		{"Reply-To absent from h=", "Keywords: x\r\n" + signed, Pass, ""},
		// Added below the signed one, it is the one picked: fail.
		{"Subject below", strings.Replace(signed, "\r\n\r\n", "\r\nSubject: other\r\n\r\n", 1), Fail, "signature did not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := verifyOne(t, c.msg, zone)
			if s.Result != c.want || !strings.Contains(s.Reason(), c.reason) {
				t.Fatalf("got %s %q, want %s %q", s.Result, s.Reason(), c.want, c.reason)
			}
			if c.want == Policy && !errors.Is(s.Err, ErrHeaderReplay) {
				t.Errorf("err %v does not wrap ErrHeaderReplay", s.Err)
			}
		})
	}
}

// RFC 6376 section 3.6.1: a key with t=s verifies only signatures whose
// i= domain is d= itself.
func TestVerifyStrictKey(t *testing.T) {
	rsaKey, _ := testKeys(t)
	rec, err := KeyRecord(rsaKey.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	name := rsaKey.Selector + "._domainkey.agency.govt.nz"
	msg := testMessage("agency.govt.nz", 100)
	for _, c := range []struct {
		identifier, record string
		want               Result
	}{
		{"alice@mail.agency.govt.nz", rec + "; t=s", PermError},
		{"alice@mail.agency.govt.nz", rec + "; t=y:s", PermError},
		{"alice@mail.agency.govt.nz", rec + "; t=y", Pass},
		{"alice@mail.agency.govt.nz", rec, Pass},
		{"alice@agency.govt.nz", rec + "; t=s", Pass},
		{"", rec + "; t=s", Pass},
	} {
		values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{Identifier: c.identifier})
		if err != nil {
			t.Fatal(err)
		}
		s := verifyOne(t, prepend(msg, values...), dnstest.NewZone().TXT(name, c.record))
		if s.Result != c.want {
			t.Errorf("i=%s, key %q: %s %v, want %s", c.identifier, c.record[len(c.record)-6:], s.Result, s.Err, c.want)
		}
		if c.want == PermError && !strings.Contains(s.Reason(), "t=s") {
			t.Errorf("reason %q does not name t=s", s.Reason())
		}
	}
}

// RFC 6376 section 3.5 l= and 8.2: an l= covering the whole body signs
// all of it (pass); a shorter one leaves content unsigned (policy); one
// longer than the body is wrong (fail).
func TestVerifyBodyLength(t *testing.T) {
	rsaKey, _ := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey)
	msg := testMessage("agency.govt.nz", 200)
	h := []string{"From", "From", "To", "Subject", "Date"}
	// The relaxed canonical body length.
	var whole int64
	{
		n := &countWriter{}
		c := newBodyCanon(n, true)
		_, body, _ := strings.Cut(msg, "\r\n\r\n")
		if _, err := c.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		whole = n.n
	}
	appended := func(m string) string { return m + "Appended by an attacker.\r\n" }
	cases := []struct {
		name string
		l    int64
		edit func(string) string
		want Result
		err  error
	}{
		{"l= whole body", whole, nil, Pass, nil},
		{"l= whole body, then content appended", whole, appended, Policy, ErrBodyLength},
		{"l= shorter", whole - 20, nil, Policy, ErrBodyLength},
		{"l=0", 0, nil, Policy, ErrBodyLength},
		{"l= longer than the body", whole + 1, nil, Fail, ErrFail},
		{"no l=, content appended", -1, appended, Fail, ErrFail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := prepend(msg, rawSign(t, msg, rsaKey, "agency.govt.nz", h, c.l))
			if c.edit != nil {
				m = c.edit(m)
			}
			s := verifyOne(t, m, zone)
			if s.Result != c.want || (c.err == nil) != (s.Err == nil) || (c.err != nil && !errors.Is(s.Err, c.err)) {
				t.Fatalf("got %s %v, want %s %v", s.Result, s.Err, c.want, c.err)
			}
			if c.l >= 0 && (!s.BodyLengthLimited || s.BodyLength != c.l) {
				t.Errorf("l= not reported: %+v", s)
			}
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// RFC 6376 section 3.6.2.2: with two TXT records at the selector, each is
// tried: the key being rolled in verifies, the one rolled out does not.
func TestVerifyTwoKeyRecords(t *testing.T) {
	rsaKey, _ := testKeys(t)
	other, err := GenerateKey("rsa", 2048)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := KeyRecord(rsaKey.Signer.Public())
	old, _ := KeyRecord(other.Public())
	name := rsaKey.Selector + "._domainkey.agency.govt.nz"
	msg := testMessage("agency.govt.nz", 100)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed := prepend(msg, values...)
	for _, c := range []struct {
		name    string
		records []string
		want    Result
	}{
		{"old then good", []string{old, good}, Pass},
		{"good then old", []string{good, old}, Pass},
		{"stray SPF record then good", []string{"v=spf1 -all", good}, Pass},
		{"old only, twice", []string{old, old}, Fail},
	} {
		z := dnstest.NewZone()
		for _, r := range c.records {
			z.TXT(name, r)
		}
		if s := verifyOne(t, signed, z); s.Result != c.want {
			t.Errorf("%s: %s %v, want %s", c.name, s.Result, s.Err, c.want)
		}
	}
}

// Body canonicalization, RFC 6376 sections 3.4.3, 3.4.4 and 3.4.6.
func TestBodyCanon(t *testing.T) {
	for _, c := range []struct {
		in              string
		simple, relaxed string
	}{
		{"", "\r\n", ""},
		{"\r\n\r\n", "\r\n", ""},
		{" C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
		{"a\nb", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"a  \r\n \r\nb\r\n", "a  \r\n \r\nb\r\n", "a\r\n\r\nb\r\n"},
	} {
		for _, relaxed := range []bool{false, true} {
			var b strings.Builder
			cn := newBodyCanon(&b, relaxed)
			// Byte by byte: state must survive write boundaries.
			for i := 0; i < len(c.in); i++ {
				if _, err := cn.Write([]byte{c.in[i]}); err != nil {
					t.Fatal(err)
				}
			}
			if err := cn.Close(); err != nil {
				t.Fatal(err)
			}
			want := c.simple
			if relaxed {
				want = c.relaxed
			}
			if b.String() != want {
				t.Errorf("%q relaxed=%v: %q, want %q", c.in, relaxed, b.String(), want)
			}
		}
	}
}

// 500 signatures: one pass over the body, the first MaxSignatures
// verified, the rest neutral.
func TestVerifySignatureFlood(t *testing.T) {
	rsaKey, _ := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey)
	msg := testMessage("agency.govt.nz", 1000)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flood := make([]string, 500)
	for i := range flood {
		flood[i] = values[0]
	}
	sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, flood...)), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 500 {
		t.Fatalf("%d results", len(sigs))
	}
	for i, s := range sigs {
		want := Neutral
		if i < DefaultMaxSignatures {
			want = Pass
		}
		if s.Result != want {
			t.Fatalf("signature %d: %s %v, want %s", i, s.Result, s.Err, want)
		}
	}
}

// setHeaderB (sorted neighbours) gives what the plain definition gives:
// the shortest prefix of at least 8 characters no other value starts with.
func TestHeaderBMatchesDefinition(t *testing.T) {
	naive := func(full []string, i int) string {
		b := full[i]
		for n := HeaderBMinLength; n < len(b); n++ {
			shared := false
			for j, o := range full {
				shared = shared || (j != i && strings.HasPrefix(o, b[:n]))
			}
			if !shared {
				return b[:n]
			}
		}
		return b
	}
	rnd := uint32(1)
	next := func() uint32 { rnd = rnd*1664525 + 1013904223; return rnd >> 24 }
	for round := 0; round < 300; round++ {
		n := 1 + int(next()%12)
		sigs := make([]Signature, n)
		full := make([]string, n)
		for i := range sigs {
			var b strings.Builder
			for l := int(next() % 20); l > 0; l-- {
				b.WriteByte("ab"[next()%2])
			}
			full[i] = b.String()
			sigs[i].HeaderB = full[i]
		}
		setHeaderB(sigs)
		for i := range sigs {
			if want := naive(full, i); sigs[i].HeaderB != want {
				t.Fatalf("%q: %d: %q, want %q", full, i, sigs[i].HeaderB, want)
			}
		}
	}
}
