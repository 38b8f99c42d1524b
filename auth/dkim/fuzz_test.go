package dkim

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

// FuzzParseKey: no key record crashes the parser.
func FuzzParseKey(f *testing.F) {
	f.Add("v=DKIM1; k=rsa; p=MIIBIjANBg")
	f.Add("v=DKIM1; k=ed25519; t=s:y; h=sha256; s=email; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("p=;p=")
	f.Fuzz(func(t *testing.T, txt string) {
		if k, err := parseKey(txt); err == nil {
			_ = k.usable("rsa-sha256", true)
		}
	})
}

// FuzzBodyCanon: the canonical body does not depend on how the body is
// cut into writes, and ends in CRLF or is empty.
func FuzzBodyCanon(f *testing.F) {
	f.Add([]byte("a \t b \r\n\r\nc\n\r\n"), 3, true)
	f.Add([]byte("\r"), 1, false)
	f.Fuzz(func(t *testing.T, body []byte, cut int, relaxed bool) {
		if len(body) > 4096 {
			return
		}
		var whole, parts strings.Builder
		c := newBodyCanon(&whole, relaxed)
		c.Write(body)
		c.Close()
		if cut <= 0 {
			cut = 1
		}
		c = newBodyCanon(&parts, relaxed)
		for i := 0; i < len(body); i += cut {
			c.Write(body[i:min(i+cut, len(body))])
		}
		c.Close()
		if whole.String() != parts.String() {
			t.Fatalf("%q: whole %q, in parts of %d %q", body, whole.String(), cut, parts.String())
		}
		if s := whole.String(); s != "" && !strings.HasSuffix(s, "\r\n") {
			t.Fatalf("%q does not end in CRLF", s)
		}
	})
}

// FuzzVerify: no message, however its DKIM-Signature fields are written,
// crashes the verifier or gets a result outside RFC 8601's vocabulary.
func FuzzVerify(f *testing.F) {
	rsaKey, edKey := testKeys(f)
	zone := publish(f, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	msg := testMessage("agency.govt.nz", 200)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey}, SignOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(prepend(msg, values...)))
	f.Add([]byte(prepend(msg, "v=1; a=rsa-sha256; d=agency.govt.nz; s=rsa2026; l=5; i=@x.agency.govt.nz; h=from:from; bh=; b=")))
	f.Add([]byte("DKIM-Signature: v=1;;\r\n\r\n"))
	f.Fuzz(func(t *testing.T, m []byte) {
		if len(m) > 16<<10 {
			return
		}
		sigs, err := Verify(context.Background(), bytes.NewReader(m), VerifyOptions{LookupTXT: zone.LookupTXT})
		if err != nil {
			return
		}
		for _, s := range sigs {
			switch s.Result {
			case Pass, Fail, Policy, Neutral, TempError, PermError:
			default:
				t.Fatalf("result %q", s.Result)
			}
			if (s.Result == Pass) != (s.Err == nil) {
				t.Fatalf("%s with err %v", s.Result, s.Err)
			}
		}
	})
}
