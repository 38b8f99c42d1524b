package smime

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/pkcs7"
)

// Sign returns the DER of CMS signed data over content, signed by id with
// SHA-256, carrying id's certificate and chain (R70) and our
// SMIMECapabilities as a signed attribute (R71). detached leaves the
// content out (multipart/signed, RFC 8551 section 3.5.3); otherwise it is
// encapsulated (application/pkcs7-mime; smime-type=signed-data).
func Sign(content []byte, id *Identity, detached bool) ([]byte, error) {
	if id == nil || id.Cert == nil || id.Key == nil {
		return nil, ErrNoIdentity
	}
	capsDER, err := OurCapabilities.Marshal()
	if err != nil {
		return nil, err
	}
	var out []byte
	err = guard("sign", func() error {
		sd, err := pkcs7.NewSignedData(content)
		if err != nil {
			return err
		}
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		cfg := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
			{Type: oidSMIMECapabilites, Value: asn1.RawValue{FullBytes: capsDER}},
		}}
		if len(id.Chain) > 0 {
			err = sd.AddSignerChain(id.Cert, id.Key, id.Chain, cfg)
		} else {
			err = sd.AddSigner(id.Cert, id.Key, cfg)
		}
		if err != nil {
			return err
		}
		if detached {
			sd.Detach()
		}
		out, err = sd.Finish()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("smime: sign as %s: %w", id.Domain, err)
	}
	return out, nil
}

// Signed is what Verify found in signed data.
type Signed struct {
	// Content is the signed content (the encapsulated one, or the detached
	// content given to Verify).
	Content []byte
	// Signer is the signer's certificate (from the message, R81, or from
	// the extra certificates given, R82).
	Signer *x509.Certificate
	// Certificates are all the certificates the message carries (the
	// chain, for validation; R88-R89 strips them from what is delivered).
	Certificates []*x509.Certificate
	// Capabilities are the signer's SMIMECapabilities (R84), nil if none.
	Capabilities Capabilities
	// SigningTime is the signer's claimed signing time, zero if none.
	SigningTime time.Time
	// DatesUnchecked: the signing time lies outside the signer
	// certificate's validity, so the library would not check the
	// signature; the certificate is expired or not yet valid and the
	// message is UNVERIFIED whatever the signature (Table 1).
	DatesUnchecked bool
}

// ErrNoSigner: the signed data has no signer, or several.
var ErrNoSigner = errors.New("smime: signed data must have exactly one signer")

// Verify checks the signature of CMS signed data (DER or BER). detached is
// the content of a multipart/signed message (nil for encapsulated data).
// extra are certificates from the peer store, for a message that does not
// carry its signer's (R82). Verify checks the signature only: the
// certificate's trust, dates and revocation are the Validator's.
func Verify(der, detached []byte, extra []*x509.Certificate) (*Signed, error) {
	if err := checkSize(der); err != nil {
		return nil, err
	}
	var p7 *pkcs7.PKCS7
	if err := guard("parse signed data", func() (err error) {
		p7, err = pkcs7.Parse(der)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(p7.Signers) != 1 {
		if len(p7.Signers) == 0 {
			return nil, fmt.Errorf("%w: not signed data, or no signer", ErrNoSigner)
		}
		return nil, fmt.Errorf("%w: %d signers", ErrNoSigner, len(p7.Signers))
	}
	if detached != nil {
		p7.Content = detached
	}
	s := &Signed{Content: p7.Content, Certificates: append([]*x509.Certificate(nil), p7.Certificates...)}
	p7.Certificates = append(p7.Certificates, extra...)
	s.Signer = p7.GetOnlySigner()
	if s.Signer == nil {
		return nil, fmt.Errorf("%w: the signer's certificate is neither in the message nor in the peer store", ErrSignature)
	}
	var capsRaw asn1.RawValue
	if err := guard("signed attributes", func() error { return p7.UnmarshalSignedAttribute(oidSMIMECapabilites, &capsRaw) }); err == nil {
		if caps, err := ParseCapabilities(capsRaw.FullBytes); err == nil {
			s.Capabilities = caps
		}
	}
	_ = guard("signing time", func() error { return p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &s.SigningTime) })
	err := guard("verify", func() error { return p7.Verify() })
	var dates *pkcs7.SigningTimeNotValidError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &dates):
		s.DatesUnchecked = true
		return s, nil
	case errors.Is(err, ErrInternal):
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil, fmt.Errorf("%w: %v", ErrSignature, err)
}
