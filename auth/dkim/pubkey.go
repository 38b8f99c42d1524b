package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// pubKey is one parsed key record (RFC 6376 section 3.6.1).
type pubKey struct {
	rsa    *rsa.PublicKey
	ed     ed25519.PublicKey
	hashes []string // h=; nil: any
	strict bool     // t=s
}

// parseKey parses a DKIM key record.
func parseKey(txt string) (*pubKey, error) {
	tags, err := strictTags(txt)
	if err != nil {
		return nil, fmt.Errorf("key record error: %v", err)
	}
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return nil, errors.New("incompatible public key version")
	}
	p, ok := tags["p"]
	if !ok {
		return nil, errors.New("key syntax error: missing public key data")
	}
	p = stripFWS(p)
	if p == "" {
		return nil, errors.New("key revoked")
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("key syntax error: %v", err)
	}
	k := &pubKey{}
	switch stripFWS(tags["k"]) {
	case "rsa", "":
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			// RFC 6376 erratum 3017: RSAPublicKey is found in the wild too.
			if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
				return nil, fmt.Errorf("key syntax error: %v", err)
			}
		}
		r, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("key syntax error: not an RSA public key")
		}
		// RFC 8301 section 3.2: keys under 1024 bits are not valid.
		if r.N.BitLen() < 1024 {
			return nil, fmt.Errorf("key is too short: %d bits, want 1024", r.N.BitLen())
		}
		k.rsa = r
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("invalid Ed25519 public key size: %d bytes", len(der))
		}
		k.ed = ed25519.PublicKey(der)
	default:
		return nil, errors.New("unsupported key algorithm")
	}
	if h, ok := tags["h"]; ok {
		k.hashes = strings.Split(stripFWS(h), ":")
	}
	if s, ok := tags["s"]; ok {
		svc := strings.Split(stripFWS(s), ":")
		if !slices.Contains(svc, "*") && !slices.Contains(svc, "email") {
			return nil, errors.New("inappropriate service")
		}
	}
	if t, ok := tags["t"]; ok {
		k.strict = slices.Contains(strings.Split(stripFWS(t), ":"), "s")
	}
	return k, nil
}

// usable says why the key cannot verify a signature of algorithm alg.
func (k *pubKey) usable(alg string, subdomainAUID bool) error {
	ka, ha, _ := strings.Cut(alg, "-")
	if (ka == "rsa") != (k.rsa != nil) {
		return errors.New("inappropriate key algorithm")
	}
	if k.hashes != nil && !slices.Contains(k.hashes, ha) {
		return errors.New("inappropriate hash algorithm")
	}
	if k.strict && subdomainAUID {
		// RFC 6376 section 3.6.1, t=s: the i= domain must be d= itself,
		// not a subdomain.
		return errors.New("key has t=s but i= is in a subdomain of d=")
	}
	return nil
}

// verify checks sig over the SHA-256 digest of the header hash input
// (RFC 6376 section 3.7; RFC 8463 section 3: Ed25519 signs the digest).
func (k *pubKey) verify(digest, sig []byte) bool {
	if k.rsa != nil {
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest, sig) == nil
	}
	return ed25519.Verify(k.ed, digest, sig)
}
