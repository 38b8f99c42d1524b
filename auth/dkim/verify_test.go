package dkim

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/dkim/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RFC 8463 Appendix A: the example message signed with Ed25519-SHA256 and
// RSA-SHA256 verifies with the published keys (A.2), with LF and with
// CRLF line ends.
func TestRFC8463AppendixA(t *testing.T) {
	zone := dnstest.MustParseZone(readTestdata(t, "rfc8463-a2.zone"))
	msg := readTestdata(t, "rfc8463-a3.eml")

	// A.1: the Ed25519 secret key gives the published public key.
	seed, _ := base64.StdEncoding.DecodeString("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if got := base64.StdEncoding.EncodeToString(pub); got != "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" {
		t.Fatalf("A.1 public key = %s", got)
	}

	for name, m := range map[string]string{"LF": msg, "CRLF": strings.ReplaceAll(msg, "\n", "\r\n")} {
		t.Run(name, func(t *testing.T) {
			sigs, err := Verify(context.Background(), strings.NewReader(m), VerifyOptions{LookupTXT: zone.LookupTXT})
			if err != nil {
				t.Fatal(err)
			}
			want := []struct{ alg, sel, b string }{
				{"ed25519-sha256", "brisbane", "/gCrinpc"},
				{"rsa-sha256", "test", "F45dVWDf"},
			}
			if len(sigs) != len(want) {
				t.Fatalf("got %d signatures, want %d", len(sigs), len(want))
			}
			for i, w := range want {
				s := sigs[i]
				if s.Result != Pass || s.Err != nil {
					t.Errorf("signature %d (%s): %s %v", i, w.alg, s.Result, s.Err)
				}
				if s.Algorithm != w.alg || s.Selector != w.sel || s.Domain != "football.example.com" ||
					s.HeaderB != w.b || s.Identifier != "@football.example.com" || s.BodyLengthLimited {
					t.Errorf("signature %d = %+v", i, s)
				}
				if !s.Time.Equal(time.Unix(1528637909, 0)) {
					t.Errorf("signature %d time %v", i, s.Time)
				}
			}
		})
	}

	// A modified body breaks both (RFC 6376 section 6.1.3: body hash).
	bad := strings.Replace(msg, "hungry", "thirsty", 1)
	sigs, err := Verify(context.Background(), strings.NewReader(bad), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sigs {
		if s.Result != Fail || !errors.Is(s.Err, ErrFail) {
			t.Errorf("modified body, signature %d: %s %v", i, s.Result, s.Err)
		}
	}
}

// A message signed by OpenDKIM 2.11 (Ed25519-SHA256 and RSA-SHA256,
// relaxed/relaxed, From oversigned), kept in testdata so that the check
// runs where OpenDKIM is not installed.
func TestOpenDKIMVector(t *testing.T) {
	zone := dnstest.MustParseZone(readTestdata(t, "opendkim-signed.zone"))
	msg := readTestdata(t, "opendkim-signed.eml")
	for name, m := range map[string]string{"LF": msg, "CRLF": strings.ReplaceAll(msg, "\n", "\r\n")} {
		sigs, err := Verify(context.Background(), strings.NewReader(m), VerifyOptions{LookupTXT: zone.LookupTXT})
		if err != nil {
			t.Fatal(err)
		}
		if len(sigs) != 2 || sigs[0].Result != Pass || sigs[0].Algorithm != "ed25519-sha256" ||
			sigs[1].Result != Pass || sigs[1].Algorithm != "rsa-sha256" || sigs[1].Domain != "example.govt.nz" {
			t.Fatalf("%s: %+v", name, sigs)
		}
	}
	// The oversigned From: a second one added on top breaks both.
	sigs, _ := Verify(context.Background(), strings.NewReader("From: ceo@example.govt.nz\n"+msg), VerifyOptions{LookupTXT: zone.LookupTXT})
	if len(sigs) != 2 || sigs[0].Result != Fail || sigs[1].Result != Fail {
		t.Fatalf("added From: %+v", sigs)
	}
}

// Our signatures (RSA-SHA256 and Ed25519-SHA256 dual signing, RFC 8463
// section 4) verify, in every canonicalization.
func TestSignVerifyRoundTrip(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	msg := testMessage("agency.govt.nz", 3000)
	for _, c := range []struct{ h, b string }{{"", ""}, {Simple, Simple}, {Relaxed, Simple}, {Simple, Relaxed}} {
		values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey},
			SignOptions{HeaderCanonicalization: c.h, BodyCanonicalization: c.b})
		if err != nil {
			t.Fatal(err)
		}
		if len(values) != 2 {
			t.Fatalf("got %d values", len(values))
		}
		for _, v := range values {
			if strings.HasPrefix(v, " ") || strings.HasSuffix(v, "\r\n") || strings.HasPrefix(v, "DKIM-Signature") {
				t.Errorf("value not trimmed: %q", v)
			}
		}
		sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: zone.LookupTXT})
		if err != nil {
			t.Fatal(err)
		}
		if len(sigs) != 2 {
			t.Fatalf("got %d signatures", len(sigs))
		}
		wantC := c.h + "/" + c.b
		if c.h == "" {
			wantC = "relaxed/relaxed"
		}
		for i, alg := range []string{"rsa-sha256", "ed25519-sha256"} {
			s := sigs[i]
			if s.Result != Pass || s.Algorithm != alg || s.Domain != "agency.govt.nz" || s.Canonicalization != wantC {
				t.Errorf("%s: %+v", wantC, s)
			}
		}
		// RFC 6376 section 8.15: From is oversigned, absent fields are
		// not listed.
		h := strings.Join(sigs[0].SignedHeaders, ":")
		if !strings.HasPrefix(h, "From:From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:X-NZ-Secure-email") ||
			strings.Contains(h, "Cc") || strings.Contains(h, "Reply-To") {
			t.Errorf("h=%s", h)
		}
	}
}

func TestVerifyResults(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	ctx := context.Background()
	msg := testMessage("agency.govt.nz", 500)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed := prepend(msg, values...)
	good := func() *dnstest.Zone { return publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey) }
	keyName := rsaKey.Selector + "._domainkey.agency.govt.nz"

	cases := []struct {
		name    string
		msg     string
		zone    *dnstest.Zone
		want    Result
		wantErr error
		reason  string
	}{
		{"pass", signed, good(), Pass, nil, ""},
		// RFC 6376 section 6.1.3: the body hash no longer matches.
		{"body changed", strings.Replace(signed, "lazy dog", "lazy cat", 1), good(), Fail, ErrFail, "body hash"},
		// RFC 6376 section 6.1.3: a signed header field changed.
		{"subject changed", strings.Replace(signed, "quarterly figures", "quarterly figures!", 1), good(), Fail, ErrFail, "signature did not verify"},
		// RFC 6376 section 8.15: From is oversigned, so a second From
		// added in transit, even above the signed one, breaks the
		// signature.
		{"From added", "From: mallory@evil.example\r\n" + signed, good(), Fail, ErrFail, ""},
		// RFC 6376 section 6.1.2 step 3: no key record is PERMFAIL.
		{"no key", signed, dnstest.NewZone(), PermError, ErrPermFail, "no key"},
		// RFC 6376 section 3.6.1: empty p= is a revoked key (the SGE
		// non-email domain record "v=DKIM1; p=").
		{"revoked", signed, dnstest.NewZone().TXT(keyName, "v=DKIM1; p="), PermError, ErrPermFail, "revoked"},
		// RFC 6376 section 3.6.2.2 leaves several key records undefined:
		// each is tried, one that verifies is a pass.
		{"two key records", signed, good().TXT(keyName, "v=DKIM1; p="), Pass, nil, ""},
		{"two key records, none usable", signed, dnstest.NewZone().TXT(keyName, "v=DKIM1; p=").TXT(keyName, "v=spf1 -all"), PermError, ErrPermFail, "revoked"},
		// Wrong key type in the record (k=ed25519 for an RSA signature).
		{"key type", signed, publish(t, dnstest.NewZone(), "agency.govt.nz", Key{Selector: rsaKey.Selector, Signer: edKey.Signer}), PermError, ErrPermFail, "key"},
		// RFC 6376 section 6.1.2 step 2: key unavailable is TEMPFAIL.
		{"servfail", signed, dnstest.NewZone().SetFault(keyName, dnstest.ServFail), TempError, ErrTempFail, "key unavailable"},
		{"timeout", signed, dnstest.NewZone().SetFault(keyName, dnstest.Timeout), TempError, ErrTempFail, "key unavailable"},
		// RFC 8301 section 3.1: rsa-sha1 must not be verified.
		{"rsa-sha1", strings.Replace(signed, "a=rsa-sha256", "a=rsa-sha1", 1), good(), PermError, ErrPermFail, "sha1"},
		// RFC 6376 section 3.5: v= is required and must be 1.
		{"bad version", strings.Replace(signed, "v=1;", "v=2;", 1), good(), PermError, ErrPermFail, "version"},
		// RFC 6376 section 3.5: d= is required.
		{"no d=", strings.Replace(signed, " d=agency.govt.nz;", "", 1), good(), PermError, ErrPermFail, "required tag"},
		// An l= added to a signature changes the signed field: fail (the
		// l= cases with real signatures are in TestVerifyBodyLength).
		{"l= added", strings.Replace(signed, "v=1;", "v=1; l=10;", 1), good(), Fail, ErrFail, "body hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sigs, err := Verify(ctx, strings.NewReader(c.msg), VerifyOptions{LookupTXT: c.zone.LookupTXT})
			if err != nil {
				t.Fatal(err)
			}
			if len(sigs) != 1 {
				t.Fatalf("got %d signatures", len(sigs))
			}
			s := sigs[0]
			if s.Result != c.want || (c.wantErr == nil) != (s.Err == nil) || (c.wantErr != nil && !errors.Is(s.Err, c.wantErr)) {
				t.Fatalf("got %s %v, want %s %v", s.Result, s.Err, c.want, c.wantErr)
			}
			if !strings.Contains(s.Reason(), c.reason) || strings.Contains(s.Reason(), "dkim: ") {
				t.Errorf("reason %q, want it to contain %q", s.Reason(), c.reason)
			}
			if c.name == "l= added" && (!s.BodyLengthLimited || s.BodyLength != 10) {
				t.Errorf("l= not noted: %+v", s)
			}
			if s.Domain != "agency.govt.nz" && c.name != "no d=" || s.Selector != rsaKey.Selector {
				t.Errorf("d=%q s=%q", s.Domain, s.Selector)
			}
		})
	}
}

func TestVerifyUnsignedAndMalformed(t *testing.T) {
	ctx := context.Background()
	sigs, err := Verify(ctx, strings.NewReader(testMessage("example.org", 10)), VerifyOptions{LookupTXT: dnstest.NewZone().LookupTXT})
	if err != nil || len(sigs) != 0 {
		t.Fatalf("unsigned: %v %v", sigs, err)
	}
	if _, err := Verify(ctx, strings.NewReader(""), VerifyOptions{}); !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("empty message: %v", err)
	}
	// A header without body and without the empty line is a message.
	sigs, err = Verify(ctx, strings.NewReader("From: a@example.org\r\nDKIM-Signature: v=1; d=example.org; s=x"), VerifyOptions{LookupTXT: dnstest.NewZone().LookupTXT})
	if err != nil || len(sigs) != 1 || sigs[0].Result != PermError {
		t.Fatalf("header only: %+v %v", sigs, err)
	}
}

// A read error in the body (a spool file going away) is returned as an
// error, and leaves no goroutine behind, with one or several signatures.
func TestVerifyReadError(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	msg := testMessage("agency.govt.nz", 200<<10)
	for _, keys := range [][]Key{{edKey}, {rsaKey, edKey, edKey}} {
		values, err := Sign(strings.NewReader(msg), "agency.govt.nz", keys, SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		signed := prepend(msg, values...)
		before := runtime.NumGoroutine()
		boom := errors.New("spool file vanished")
		r := io.MultiReader(strings.NewReader(signed[:len(signed)/2]), iotest.ErrReader(boom))
		if _, err := Verify(context.Background(), r, VerifyOptions{LookupTXT: zone.LookupTXT}); !errors.Is(err, boom) {
			t.Fatalf("%d signatures: err = %v", len(keys), err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d signatures: %d goroutines left (%d before)", len(keys), n, before)
		}
	}
}

// RFC 6376 section 6.1: verifiers may limit the signatures they check;
// those beyond the limit are reported as neutral, never as pass.
func TestVerifyMaxSignatures(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	msg := testMessage("agency.govt.nz", 100)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey, rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: zone.LookupTXT, MaxSignatures: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 3 || sigs[0].Result != Pass || sigs[1].Result != Pass || sigs[2].Result != Neutral || !errors.Is(sigs[2].Err, ErrNotVerified) {
		t.Fatalf("%+v", sigs)
	}
}

// RFC 6008 section 4: header.b is at least 8 characters and long enough
// to tell the message's signatures apart.
func TestHeaderB(t *testing.T) {
	sigs := []Signature{{HeaderB: "abcdefghXYZ1"}, {HeaderB: "abcdefghXYZ2"}, {HeaderB: "zzzzzzzzzzzz"}, {HeaderB: "short"}, {HeaderB: "abcdefghXY"}}
	setHeaderB(sigs)
	want := []string{"abcdefghXYZ1", "abcdefghXYZ2", "zzzzzzzz", "short", "abcdefghXY"}
	for i, w := range want {
		if sigs[i].HeaderB != w {
			t.Errorf("%d: %q, want %q", i, sigs[i].HeaderB, w)
		}
	}
}

// A cancelled context never turns into a final result.
func TestVerifyCancelled(t *testing.T) {
	rsaKey, _ := testKeys(t)
	msg := testMessage("agency.govt.nz", 100)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey)
	lookup := func(c context.Context, name string) ([]string, error) {
		cancel()
		return zone.LookupTXT(c, name)
	}
	sigs, err := Verify(ctx, strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: lookup})
	if err == nil && (len(sigs) != 1 || sigs[0].Result != TempError) {
		t.Fatalf("%+v", sigs)
	}
}

// Verification through a real DNS server: the keys in TXT records served
// by dnstest on loopback, looked up by the project's resolver.
func TestVerifyThroughDNSServer(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	zone := dnstest.NewZone()
	// The RSA record is longer than 255 bytes: several character-strings.
	publish(t, zone, "agency.govt.nz", rsaKey, edKey)
	zone.SetFault("broken._domainkey.agency.govt.nz", dnstest.ServFail)
	addr := dnstest.MustStart(t, zone)
	res, err := dnsresolver.New(dnsresolver.Config{Servers: []string{addr}, Timeout: 500 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("agency.govt.nz", 2000)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey, {Selector: "broken", Signer: edKey.Signer}, {Selector: "missing", Signer: edKey.Signer}}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: res.LookupTXT})
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{Pass, Pass, TempError, PermError}
	if len(sigs) != len(want) {
		t.Fatalf("got %d signatures", len(sigs))
	}
	for i, w := range want {
		if sigs[i].Result != w {
			t.Errorf("signature %d (s=%s): %s %v, want %s", i, sigs[i].Selector, sigs[i].Result, sigs[i].Err, w)
		}
	}
}
