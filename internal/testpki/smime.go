package testpki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DomainCert issues an S/MIME domain certificate for tests, signed by the
// CA in caCrt/caKey (PEM files, e.g. testdata/smime/ca.crt and ca.key), with
// common name cn and the rfc822Names emails, for email protection, valid
// 2025-2047 like the fixtures of testdata/smime/make-fixtures.sh. It
// writes name.crt and name.key (PEM, RSA-2048) under dir and returns their
// paths. Tests use it for certificates the fixtures do not have (a
// misnamed DCA for R46, a second domain of ours for R64).
func DomainCert(tb testing.TB, caCrt, caKey, dir, name, cn string, emails ...string) (certFile, keyFile string) {
	tb.Helper()
	ca, caPriv := readCA(tb, caCrt, caKey)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Country: []string{"NZ"}, Organization: []string{"nzsecure-milter tests"}, CommonName: cn},
		EmailAddresses: emails,
		NotBefore:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2047, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caPriv)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

func readCA(tb testing.TB, caCrt, caKey string) (*x509.Certificate, any) {
	tb.Helper()
	cb, err := os.ReadFile(caCrt)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := os.ReadFile(caKey)
	if err != nil {
		tb.Fatal(err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		tb.Fatalf("%s or %s is not PEM", caCrt, caKey)
	}
	ca, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return ca, priv
}
