package testpki

import (
	"crypto"
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
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	certFile = issue(tb, caCrt, caKey, &key.PublicKey, dir, name, cn, emails,
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2047, 1, 1, 0, 0, 0, 0, time.UTC))
	return certFile, keyFile
}

// ReissueDomainCert issues, like DomainCert, a certificate for the key
// already in keyFile (PKCS #8 PEM), valid from notBefore to notAfter: a
// CA's renewal of the same key (R51), or a certificate about to expire.
// It writes name.crt under dir and returns its path.
func ReissueDomainCert(tb testing.TB, caCrt, caKey, keyFile, dir, name string, notBefore, notAfter time.Time, cn string, emails ...string) string {
	tb.Helper()
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	kp, _ := pem.Decode(kb)
	if kp == nil {
		tb.Fatalf("%s is not PEM", keyFile)
	}
	priv, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	signer, ok := priv.(interface{ Public() crypto.PublicKey })
	if !ok {
		tb.Fatalf("%s: not a signing key", keyFile)
	}
	return issue(tb, caCrt, caKey, signer.Public(), dir, name, cn, emails, notBefore, notAfter)
}

// issue signs a domain certificate for pub with the CA and writes it to
// dir/name.crt.
func issue(tb testing.TB, caCrt, caKey string, pub crypto.PublicKey, dir, name, cn string, emails []string, notBefore, notAfter time.Time) string {
	tb.Helper()
	ca, caPriv := readCA(tb, caCrt, caKey)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Country: []string{"NZ"}, Organization: []string{"nzsecure-milter tests"}, CommonName: cn},
		EmailAddresses: emails,
		NotBefore:      notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caPriv)
	if err != nil {
		tb.Fatal(err)
	}
	certFile := filepath.Join(dir, name+".crt")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return certFile
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
