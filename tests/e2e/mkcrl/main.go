// Command mkcrl writes a CRL of a test CA with thisUpdate and nextUpdate
// relative to now, for the end-to-end tests that need a CRL that expires
// while they run (tests/e2e/twogateways.sh: a revocation lifted, R57).
//
//	mkcrl -ca ca.crt -key ca.key [-revoke cert.crt]... -this -10s -next 30s -number N -out file.crl
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"time"
)

type list []string

func (l *list) String() string     { return fmt.Sprint(*l) }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	caFile := flag.String("ca", "", "CA certificate (PEM)")
	keyFile := flag.String("key", "", "CA key (PEM, PKCS#8)")
	this := flag.Duration("this", -10*time.Second, "thisUpdate relative to now")
	next := flag.Duration("next", time.Hour, "nextUpdate relative to now")
	number := flag.Int64("number", time.Now().Unix(), "CRL number")
	out := flag.String("out", "", "output file (DER)")
	var revoke list
	flag.Var(&revoke, "revoke", "certificate to list as revoked (repeatable)")
	flag.Parse()
	if err := run(*caFile, *keyFile, revoke, *this, *next, *number, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkcrl:", err)
		os.Exit(1)
	}
}

func readPEM(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	return b.Bytes, nil
}

func run(caFile, keyFile string, revoke []string, this, next time.Duration, number int64, out string) error {
	der, err := readPEM(caFile)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	kder, err := readPEM(keyFile)
	if err != nil {
		return err
	}
	key, err := x509.ParsePKCS8PrivateKey(kder)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(this), NextUpdate: now.Add(next)}
	for _, f := range revoke {
		d, err := readPEM(f)
		if err != nil {
			return err
		}
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return err
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(this), ReasonCode: 1})
	}
	crl, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, key.(crypto.Signer))
	if err != nil {
		return err
	}
	return os.WriteFile(out, crl, 0o644)
}
