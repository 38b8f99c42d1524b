package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

// Test keys, generated once per test binary (never committed).
var (
	keysOnce sync.Once
	testRSA  *rsa.PrivateKey
	testEd   ed25519.PrivateKey
)

func testKeys(tb testing.TB) (Key, Key) {
	tb.Helper()
	keysOnce.Do(func() {
		k, err := GenerateKey("rsa", 2048)
		if err != nil {
			panic(err)
		}
		testRSA = k.(*rsa.PrivateKey)
		e, err := GenerateKey("ed25519", 0)
		if err != nil {
			panic(err)
		}
		testEd = e.(ed25519.PrivateKey)
	})
	return Key{Selector: "rsa2026", Signer: testRSA}, Key{Selector: "ed2026", Signer: testEd}
}

// publish adds the key records of keys under domain to z.
func publish(tb testing.TB, z *dnstest.Zone, domain string, keys ...Key) *dnstest.Zone {
	tb.Helper()
	for _, k := range keys {
		rec, err := KeyRecord(k.Signer.Public())
		if err != nil {
			tb.Fatal(err)
		}
		z.TXT(k.Selector+"._domainkey."+domain, rec)
	}
	return z
}

// testMessage is a small CRLF message from user@domain with a body of
// about bodySize bytes.
func testMessage(domain string, bodySize int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Alice Example <alice@%s>\r\n", domain)
	b.WriteString("To: bob@example.net\r\n")
	b.WriteString("Subject: [IN-CONFIDENCE] quarterly figures\r\n")
	b.WriteString("Date: Mon, 02 Mar 2026 10:00:00 +1300\r\n")
	fmt.Fprintf(&b, "Message-ID: <20260302100000.1@%s>\r\n", domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n")
	b.WriteString("X-NZ-Secure-email: IN-CONFIDENCE\r\n")
	b.WriteString("\r\n")
	line := "The quick brown fox jumps over the lazy dog.  Trailing space \r\n"
	for n := 0; n < bodySize; n += len(line) {
		b.WriteString(line)
	}
	if bodySize == 0 {
		b.WriteString("Hello.\r\n")
	}
	return b.String()
}

// prepend returns the message with the DKIM-Signature values on top.
func prepend(msg string, values ...string) string {
	var b strings.Builder
	for _, v := range values {
		b.WriteString("DKIM-Signature: " + v + "\r\n")
	}
	return b.String() + msg
}

// writeKeyFile writes k as PKCS#8 PEM under dir.
func writeKeyFile(tb testing.TB, dir, name string, k crypto.Signer) string {
	tb.Helper()
	pemData, err := MarshalPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemData, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
