package smime

import (
	"encoding/asn1"
	"fmt"
	"strings"
)

// Cipher is a content-encryption algorithm for enveloped data.
type Cipher int

// The ciphers this package encrypts with, weakest first. R23-R26, R85: the
// strongest both sides support; 3DES only for a peer that offers nothing
// better (RFC 8551 section 2.7: AES-CBC is what S/MIME 3.2+ agents decrypt).
const (
	CipherUnknown Cipher = iota
	Cipher3DES           // DES-EDE3-CBC, RFC 3370 section 5.1
	CipherAES128         // AES-128-CBC, RFC 3565
	CipherAES256         // AES-256-CBC, RFC 3565
)

// Object identifiers (RFC 3370, RFC 3565, RFC 8551 section 2.5.2).
var (
	oidData             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEnvelopedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidRSAEncryption    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSMIMECapabilites = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 15}
	oidDESEDE3CBC       = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES256CBC        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES128GCM        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	oidAES256GCM        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	oidSHA256           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

var cipherOIDs = map[Cipher]asn1.ObjectIdentifier{
	Cipher3DES: oidDESEDE3CBC, CipherAES128: oidAES128CBC, CipherAES256: oidAES256CBC,
}

func (c Cipher) String() string {
	switch c {
	case Cipher3DES:
		return "3des-cbc"
	case CipherAES128:
		return "aes128-cbc"
	case CipherAES256:
		return "aes256-cbc"
	}
	return "unknown"
}

// keyLen is the content-encryption key length in bytes.
func (c Cipher) keyLen() int {
	switch c {
	case Cipher3DES:
		return 24
	case CipherAES128:
		return 16
	case CipherAES256:
		return 32
	}
	return 0
}

func cipherOf(oid asn1.ObjectIdentifier) Cipher {
	for c, o := range cipherOIDs {
		if o.Equal(oid) {
			return c
		}
	}
	return CipherUnknown
}

// Capabilities is a peer's SMIMECapabilities attribute (RFC 8551 section
// 2.5.2): the algorithm identifiers it announced, in its order of
// preference. R84: cached per peer; R85: decides what we encrypt with.
type Capabilities []asn1.ObjectIdentifier

type smimeCapability struct {
	ID     asn1.ObjectIdentifier
	Params asn1.RawValue `asn1:"optional"`
}

// ParseCapabilities decodes the DER value of an SMIMECapabilities
// attribute (a SEQUENCE OF SMIMECapability). Parameters are ignored.
func ParseCapabilities(der []byte) (Capabilities, error) {
	var seq []smimeCapability
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("%w: SMIMECapabilities: %v", ErrMalformed, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: SMIMECapabilities: trailing data", ErrMalformed)
	}
	caps := make(Capabilities, 0, len(seq))
	for _, c := range seq {
		caps = append(caps, c.ID)
	}
	return caps, nil
}

// Marshal encodes caps as the DER value of an SMIMECapabilities attribute.
func (caps Capabilities) Marshal() ([]byte, error) {
	seq := make([]smimeCapability, 0, len(caps))
	for _, id := range caps {
		seq = append(seq, smimeCapability{ID: id})
	}
	return asn1.Marshal(seq)
}

// OurCapabilities is what this gateway announces (R71): the ciphers it
// decrypts (the library's: no AES-192), strongest first, then the digest it
// signs with.
var OurCapabilities = Capabilities{oidAES256CBC, oidAES128CBC, oidAES256GCM, oidAES128GCM, oidDESEDE3CBC, oidSHA256}

// Strongest returns the strongest cipher of ours that caps announce (R23-R26,
// R85). With no capabilities known it returns AES-256-CBC, which every
// S/MIME 3.2 and later agent decrypts (RFC 8551 section 2.7.1.2); with
// capabilities that name none of our ciphers, 3DES, the one cipher every
// S/MIME agent must decrypt (RFC 2633 section 2.7).
func (caps Capabilities) Strongest() Cipher {
	if len(caps) == 0 {
		return CipherAES256
	}
	best := CipherUnknown
	for _, id := range caps {
		if c := cipherOf(id); c > best {
			best = c
		}
	}
	if best == CipherUnknown {
		return Cipher3DES
	}
	return best
}

func (caps Capabilities) String() string {
	names := make([]string, 0, len(caps))
	for _, id := range caps {
		if c := cipherOf(id); c != CipherUnknown {
			names = append(names, c.String())
			continue
		}
		names = append(names, id.String())
	}
	return strings.Join(names, ",")
}
