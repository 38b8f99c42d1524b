package testpki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// Fixture is the absolute path of file name among the S/MIME test
// fixtures (testdata/smime of the module, made by make-fixtures.sh), from
// any package's tests: go test runs them in the package's directory, so
// the module root is the nearest directory above it holding go.mod.
func Fixture(name string) string {
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", "smime", name)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "smime", name)
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "testdata", "smime", name)
		}
	}
}

// FixtureCert is the first certificate of the fixture name.crt
// ("agency-b", "revoked", ...). The one loader of the test packages;
// parsed here with encoding/pem, as package smime's own tests use this
// package too.
func FixtureCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	data, err := os.ReadFile(Fixture(name + ".crt"))
	if err != nil {
		tb.Fatal(err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			tb.Fatalf("%s.crt: no certificate", name)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			tb.Fatalf("%s.crt: %v", name, err)
		}
		return c
	}
}
