package dkim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

func TestSignOptionErrors(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name   string
		domain string
		keys   []Key
		opts   SignOptions
		want   error
	}{
		{"no keys", "agency.govt.nz", nil, SignOptions{}, ErrBadOption},
		{"bad domain", "agency govt.nz", []Key{rsaKey}, SignOptions{}, ErrBadOption},
		{"empty domain", "", []Key{rsaKey}, SignOptions{}, ErrBadOption},
		{"bad selector", "agency.govt.nz", []Key{{Selector: "a;b", Signer: edKey.Signer}}, SignOptions{}, ErrBadOption},
		{"nil signer", "agency.govt.nz", []Key{{Selector: "s"}}, SignOptions{}, ErrBadOption},
		{"RSA 1024 (RFC 8301 section 3.2)", "agency.govt.nz", []Key{{Selector: "s", Signer: weak}}, SignOptions{}, ErrWeakKey},
		{"canonicalization", "agency.govt.nz", []Key{rsaKey}, SignOptions{BodyCanonicalization: "nowsp"}, ErrBadOption},
		{"identifier outside d=", "agency.govt.nz", []Key{rsaKey}, SignOptions{Identifier: "alice@other.govt.nz"}, ErrBadOption},
		{"header name", "agency.govt.nz", []Key{rsaKey}, SignOptions{Headers: []string{"Sub ject"}}, ErrBadOption},
	}
	for _, c := range cases {
		if _, err := NewSigner(c.domain, c.keys, c.opts); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// RFC 6376 section 5.4: From must be signed, so a message without one is
// refused.
func TestSignNoFrom(t *testing.T) {
	rsaKey, _ := testKeys(t)
	msg := strings.Replace(testMessage("agency.govt.nz", 10), "From: Alice Example <alice@agency.govt.nz>\r\n", "", 1)
	if _, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{}); !errors.Is(err, ErrNoFrom) {
		t.Fatalf("%v", err)
	}
	if _, err := Sign(strings.NewReader(""), "agency.govt.nz", []Key{rsaKey}, SignOptions{}); !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("%v", err)
	}
}

// Configured header lists: From is always signed, repeated fields are
// listed once per instance (RFC 6376 section 5.4.2), oversigned ones once
// more (section 8.15); i= and x= are set when asked.
func TestSignHeaderSelection(t *testing.T) {
	_, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", edKey)
	msg := "To: a@example.net\r\nTo: b@example.net\r\nFrom: alice@agency.govt.nz\r\nSubject: s\r\n\r\nbody\r\n"
	values, err := Sign(strings.NewReader(msg), "Agency.govt.nz.", []Key{edKey}, SignOptions{
		Headers:    []string{"to", "Subject"},
		Oversign:   []string{"Subject", "Reply-To"},
		Identifier: "alice@agency.govt.nz",
		Expiration: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil || len(sigs) != 1 {
		t.Fatal(err)
	}
	s := sigs[0]
	if s.Result != Pass || s.Domain != "agency.govt.nz" || s.Identifier != "alice@agency.govt.nz" {
		t.Fatalf("%+v", s)
	}
	if got := strings.Join(s.SignedHeaders, ":"); got != "From:to:to:Subject:Subject:Reply-To" {
		t.Errorf("h=%s", got)
	}
	if d := s.Expiration.Sub(s.Time); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("x - t = %v", d)
	}
	// No oversigning at all: a second From added above the signed one
	// does not break the signature, as DKIM takes the last instance (RFC
	// 6376 section 5.4.2); that is why From is oversigned by default. The
	// verifier still notices the unsigned instance (section 8.15): policy.
	values, err = Sign(strings.NewReader(msg), "agency.govt.nz", []Key{edKey}, SignOptions{Oversign: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	added := "From: mallory@evil.example\r\n" + prepend(msg, values...)
	sigs, _ = Verify(context.Background(), strings.NewReader(added), VerifyOptions{LookupTXT: zone.LookupTXT})
	if len(sigs) != 1 || sigs[0].Result != Policy || !errors.Is(sigs[0].Err, ErrHeaderReplay) {
		t.Fatalf("%+v", sigs)
	}
}

// Signing is deterministic for Ed25519 and safe for concurrent use.
func TestSignerConcurrent(t *testing.T) {
	_, edKey := testKeys(t)
	s, err := NewSigner("agency.govt.nz", []Key{edKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("agency.govt.nz", 5000)
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func() {
			v, err := s.Sign(strings.NewReader(msg))
			if err != nil {
				done <- err.Error()
				return
			}
			// t= may differ by a second between goroutines: keep bh=.
			_, bh, _ := strings.Cut(v[0], "bh=")
			bh, _, _ = strings.Cut(bh, ";")
			done <- bh
		}()
	}
	first := <-done
	for i := 1; i < 8; i++ {
		if got := <-done; got != first {
			t.Fatalf("%q != %q", got, first)
		}
	}
}
