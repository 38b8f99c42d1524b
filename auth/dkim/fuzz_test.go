package dkim

import (
	"strings"
	"testing"
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
