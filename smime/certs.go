package smime

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// DCACommonName is the common name of every domain certificate (R45-R46).
const DCACommonName = "domain-confidentiality-authority"

// Identity is one of our domain certificates with its key (policy
// smime.identities, "domain:/path/cert.pem:/path/key.pem"); a domain may
// have several (R37: the newest valid one signs; R38: all valid ones
// decrypt).
type Identity struct {
	Domain string
	Cert   *x509.Certificate
	Key    crypto.Signer
	// Chain are the intermediate certificates after Cert in its PEM file,
	// sent with each signature (R70).
	Chain []*x509.Certificate
}

// ParseIdentitySpec splits "domain:/path/cert.pem:/path/key.pem".
func ParseIdentitySpec(spec string) (domain, certFile, keyFile string, err error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("smime: identity %q: want domain:/path/cert.pem:/path/key.pem", spec)
	}
	return strings.ToLower(strings.TrimSuffix(parts[0], ".")), parts[1], parts[2], nil
}

// LoadIdentity reads an identity from PEM files: the certificate (then any
// chain) and its private key (PKCS #8, PKCS #1 or SEC 1). The key must
// match the certificate.
func LoadIdentity(domain, certFile, keyFile string) (*Identity, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("smime: identity %s: %w", domain, err)
	}
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("smime: identity %s: %s: no certificate (%v)", domain, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("smime: identity %s: %w", domain, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("smime: identity %s: %s: %w", domain, keyFile, err)
	}
	if !publicKeysEqual(certs[0].PublicKey, key.Public()) {
		return nil, fmt.Errorf("smime: identity %s: the key in %s does not match the certificate in %s", domain, keyFile, certFile)
	}
	return &Identity{Domain: domain, Cert: certs[0], Key: key, Chain: certs[1:]}, nil
}

// LoadKey reads a private key from a PEM file (PKCS #8, PKCS #1 or SEC 1).
func LoadKey(keyFile string) (crypto.Signer, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("smime: key: %w", err)
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("smime: key: %s: %w", keyFile, err)
	}
	return key, nil
}

// KeyMatches: key is the private key of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	return publicKeysEqual(cert.PublicKey, key.Public())
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// ParseCertificatesPEM returns every CERTIFICATE block of a PEM file, in
// order; a file of raw DER holds one certificate.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, errors.New("no PEM certificate and not a DER certificate")
		}
		out = append(out, c)
	}
	return out, nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key found")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
}

// Fingerprint is the SHA-256 of a certificate's DER, lower-case hex: how
// smime.crl_bypass and `certs approve` name a certificate (R59, R54).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// State is what a certificate's validation found (Table 1's rows).
type State string

const (
	StateValid       State = "valid"
	StateExpired     State = "expired"
	StateNotYetValid State = "not yet valid"
	StateRevoked     State = "revoked"
	StateUnknown     State = "unknown status" // revocation status could not be established
	StateUntrusted   State = "untrusted"      // no chain to an accredited CA (R179-R180)
	StateMisnamed    State = "misnamed"       // not a DCA certificate for the domain (R45-R47)
)

// Revocation is the status a RevocationChecker gives.
type Revocation int

const (
	NotRevoked Revocation = iota
	Revoked
	RevocationUnknown
)

// RevocationChecker answers whether cert, issued by issuer, is revoked
// (R36, R39-R40, R49): the CRL cache, or a fake in tests.
type RevocationChecker interface {
	Status(ctx context.Context, cert, issuer *x509.Certificate) (Revocation, error)
}

// Validator judges certificates (R36): a chain to one of the trust anchors,
// validity now (not at signing time, R37 note), revocation, and the DCA
// naming rules.
type Validator struct {
	Anchors *x509.CertPool
	// Revocation is consulted for every certificate that chains; nil
	// means revocation is not checked (smime.crl_check = false, R59).
	Revocation RevocationChecker
	// Bypass are fingerprints exempt from revocation checks (R59).
	Bypass []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verdict is a certificate's state and why.
type Verdict struct {
	State  State
	Reason string
	Chain  []*x509.Certificate // the chain found, leaf first, when it chains
}

// Validate judges cert for domain ("" skips the naming check), with
// intermediates that may help build the chain.
func (v *Validator) Validate(ctx context.Context, cert *x509.Certificate, domain string, intermediates []*x509.Certificate) Verdict {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if domain != "" {
		if err := CheckNaming(cert, domain); err != nil {
			return Verdict{State: StateMisnamed, Reason: err.Error()}
		}
	}
	if cert.IsCA {
		return Verdict{State: StateUntrusted, Reason: "a CA certificate is not a domain certificate"}
	}
	if v.Anchors == nil {
		return Verdict{State: StateUntrusted, Reason: "no trust anchors configured (smime.trust_anchors)"}
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	// Chain at the certificate's own lifetime first, to tell "untrusted"
	// from "expired": the dates are judged now, below.
	at := now
	if now.After(cert.NotAfter) {
		at = cert.NotAfter.Add(-time.Second)
	} else if now.Before(cert.NotBefore) {
		at = cert.NotBefore.Add(time.Second)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: v.Anchors, Intermediates: pool, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}})
	if err != nil {
		return Verdict{State: StateUntrusted, Reason: "no chain to an accredited CA: " + err.Error()}
	}
	chain := chains[0]
	switch {
	case now.After(cert.NotAfter):
		return Verdict{State: StateExpired, Reason: "expired " + cert.NotAfter.UTC().Format(time.RFC3339), Chain: chain}
	case now.Before(cert.NotBefore):
		return Verdict{State: StateNotYetValid, Reason: "not valid before " + cert.NotBefore.UTC().Format(time.RFC3339), Chain: chain}
	}
	for _, c := range chain[1:] {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			return Verdict{State: StateExpired, Reason: "issuer " + c.Subject.CommonName + " is outside its validity", Chain: chain}
		}
	}
	if v.Revocation == nil || slices.Contains(v.Bypass, Fingerprint(cert)) {
		return Verdict{State: StateValid, Reason: "chains to an accredited CA; revocation not checked (R59 bypass)", Chain: chain}
	}
	// Every certificate below the anchor must not be revoked.
	for i := 0; i+1 < len(chain); i++ {
		st, err := v.Revocation.Status(ctx, chain[i], chain[i+1])
		switch st {
		case Revoked:
			return Verdict{State: StateRevoked, Reason: fmt.Sprintf("%s is revoked", describe(chain[i])), Chain: chain}
		case RevocationUnknown:
			why := "no usable CRL"
			if err != nil {
				why = err.Error()
			}
			return Verdict{State: StateUnknown, Reason: fmt.Sprintf("revocation status of %s unknown: %s", describe(chain[i]), why), Chain: chain}
		}
	}
	return Verdict{State: StateValid, Reason: "chains to an accredited CA, in date, not revoked", Chain: chain}
}

func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %s)", c.Subject.CommonName, c.SerialNumber.Text(16))
}

// CheckNaming enforces R45-R47: a DCA certificate has the common name
// domain-confidentiality-authority, every RFC 822 address it carries
// (rfc822Name or emailAddress) has that name as its local part (R46, RFC
// 3183 section 4.1: "this name MUST appear in the end entity part of the
// address"), and one of them is domain-confidentiality-authority@domain.
//
// The domain must be the same as the entities' domain, not an ascendant of
// it: RFC 3183's name mapping rule allows an ascendant, but the spec
// amended R47 to delete "or an ascendant of" (a DCA per domain, R45), so
// a DCA for govt.nz does not sign for agency-a.govt.nz. Local part and
// domain compare case-insensitively (the local part is a fixed name, not a
// mailbox whose case may matter).
func CheckNaming(c *x509.Certificate, domain string) error {
	if c.Subject.CommonName != DCACommonName {
		return fmt.Errorf("common name %q is not %s (R45-R46)", c.Subject.CommonName, DCACommonName)
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	found := false
	for _, a := range CertEmails(c) {
		local, d, ok := cutLastAt(a)
		if !ok || !strings.EqualFold(local, DCACommonName) {
			return fmt.Errorf("address %q: the local part is not %s (R46, RFC 3183 section 4.1)", a, DCACommonName)
		}
		if strings.EqualFold(d, domain) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no rfc822Name or emailAddress in domain %s (R47)", domain)
	}
	return nil
}

// cutLastAt splits an address at its last "@" (a quoted local part may
// hold one).
func cutLastAt(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// oidEmailAddress is PKCS #9 emailAddress in a subject DN.
var oidEmailAddress = []int{1, 2, 840, 113549, 1, 9, 1}

// CertEmails are the rfc822Names and subject emailAddress values of c.
func CertEmails(c *x509.Certificate) []string {
	out := append([]string(nil), c.EmailAddresses...)
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidEmailAddress) {
			if s, ok := n.Value.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// CertDomains are the domains of CertEmails, lower case.
func CertDomains(c *x509.Certificate) []string {
	var out []string
	for _, a := range CertEmails(c) {
		if _, d, ok := strings.Cut(a, "@"); ok {
			d = strings.ToLower(d)
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// Newest returns the valid identity that signs for domain (R37: the newest
// valid certificate, by NotBefore), or ErrNoIdentity.
func Newest(ctx context.Context, v *Validator, ids []*Identity, domain string) (*Identity, error) {
	var best *Identity
	var why []string
	for _, id := range ids {
		if !strings.EqualFold(id.Domain, domain) {
			continue
		}
		vd := v.Validate(ctx, id.Cert, domain, id.Chain)
		if vd.State != StateValid {
			why = append(why, fmt.Sprintf("%s: %s (%s)", Fingerprint(id.Cert)[:16], vd.State, vd.Reason))
			continue
		}
		if best == nil || id.Cert.NotBefore.After(best.Cert.NotBefore) {
			best = id
		}
	}
	if best == nil {
		if len(why) == 0 {
			return nil, fmt.Errorf("%w: no identity configured for %s", ErrNoIdentity, domain)
		}
		return nil, fmt.Errorf("%w for %s: %s", ErrNoIdentity, domain, strings.Join(why, "; "))
	}
	return best, nil
}
