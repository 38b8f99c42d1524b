package smime

import (
	"crypto/x509"
	"fmt"
	"os"
)

// ReadCertificatesFile reads every certificate of a PEM (or DER) file: a
// trust anchor file (smime.trust_anchors), a peer or fixture certificate.
// A read error is os.ReadFile's (it names the file); a parse error is
// prefixed with the file name.
func ReadCertificatesFile(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return certs, nil
}
