package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// LoadKey reads a PEM private key file (see ParseKey) for selector. A
// missing or unreadable file gives an error wrapping the os error
// (errors.Is(err, fs.ErrNotExist) works).
func LoadKey(selector, path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("dkim: key file: %w", err)
	}
	k, err := ParseKey(selector, data)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses a PEM private key: "RSA PRIVATE KEY" (PKCS#1) or
// "PRIVATE KEY" (PKCS#8, RSA or Ed25519). It refuses encrypted keys
// (ErrBadPEM), RSA keys under MinRSABits (ErrWeakKey) and other key types
// (ErrUnsupportedKey).
func ParseKey(selector string, data []byte) (Key, error) {
	var block *pem.Block
	rest := data
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			return Key{}, fmt.Errorf("%w: no PEM private key block", ErrBadPEM)
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if _, enc := block.Headers["Proc-Type"]; enc || block.Type == "ENCRYPTED PRIVATE KEY" {
		return Key{}, fmt.Errorf("%w: encrypted keys are not supported", ErrBadPEM)
	}
	var priv any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return Key{}, fmt.Errorf("%w: PEM type %q (want RSA PRIVATE KEY or PRIVATE KEY)", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrBadPEM, err)
	}
	var signer crypto.Signer
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		signer = p
	case ed25519.PrivateKey:
		signer = p
	default:
		return Key{}, fmt.Errorf("%w: %T (want RSA or Ed25519)", ErrUnsupportedKey, priv)
	}
	k := Key{Selector: selector, Signer: signer}
	if err := k.check(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// GenerateKey makes a new key: algorithm "rsa" (bits >= MinRSABits; 0
// means MinRSABits) or "ed25519" (bits ignored).
func GenerateKey(algorithm string, bits int) (crypto.Signer, error) {
	switch strings.ToLower(algorithm) {
	case "rsa", "":
		if bits == 0 {
			bits = MinRSABits
		}
		if bits < MinRSABits {
			return nil, fmt.Errorf("%w: %d bits, need %d (RFC 8301 section 3.2)", ErrWeakKey, bits, MinRSABits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case "ed25519":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("%w: algorithm %q (want rsa or ed25519)", ErrUnsupportedKey, algorithm)
}

// MarshalPrivateKey encodes a private key as PKCS#8 PEM ("PRIVATE KEY"),
// readable by ParseKey, OpenSSL and OpenDKIM.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyRecord returns the DNS TXT record data publishing pub (RFC 6376
// section 3.6.1): "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>" or, for
// Ed25519, "v=DKIM1; k=ed25519; p=<32 raw bytes>" (RFC 8463 section 4.2).
func KeyRecord(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// ZoneLine returns the zone-file line publishing record at
// selector._domainkey.domain, the data split into character-strings of at
// most 255 bytes (RFC 1035 section 3.3.14; RFC 6376 section 3.6.2.2 joins
// them back):
//
//	sel._domainkey.example.org. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...AQAB"
func ZoneLine(selector, domain, record string) string {
	var b strings.Builder
	b.WriteString(selector + "._domainkey." + strings.TrimSuffix(domain, ".") + ". IN TXT")
	for len(record) > 0 {
		n := min(len(record), 255)
		b.WriteString(` "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(record[:n]) + `"`)
		record = record[n:]
	}
	return b.String()
}
