package smime

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/smallstep/pkcs7"
)

// CMS structures for enveloped data with key transport (RFC 5652 section
// 6), written here rather than through the library so that the content
// cipher is an argument (the library's is a package-wide variable, not safe
// for concurrent sessions) and 3DES is available for old peers (R85).
type issuerAndSerial struct {
	IssuerName   asn1.RawValue
	SerialNumber *big.Int
}

type keyTransRecipientInfo struct {
	Version                int
	RID                    issuerAndSerial
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey           []byte
}

type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0,optional"`
}

type envelopedData struct {
	Version              int
	RecipientInfos       []keyTransRecipientInfo `asn1:"set"`
	EncryptedContentInfo encryptedContentInfo
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

// Encrypt returns the DER of a CMS ContentInfo holding enveloped data: the
// content encrypted with c under a fresh key, the key encrypted to each
// recipient's RSA certificate (RSAES-PKCS1-v1_5, RFC 3370 section 4.2.1,
// which every S/MIME agent decrypts). R62-R64, R67: to the peer's DCA
// certificate; R85: c is the strongest both sides support.
func Encrypt(content []byte, recipients []*x509.Certificate, c Cipher) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("smime: encrypt: no recipients")
	}
	oid, ok := cipherOIDs[c]
	if !ok {
		return nil, fmt.Errorf("%w: content cipher %v", ErrUnsupported, c)
	}
	key := make([]byte, c.keyLen())
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	var block cipher.Block
	var err error
	if c == Cipher3DES {
		block, err = des.NewTripleDESCipher(key)
	} else {
		block, err = aes.NewCipher(key)
	}
	if err != nil {
		return nil, err
	}
	iv := make([]byte, block.BlockSize())
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	// PKCS #7 padding (RFC 5652 section 6.3): always 1..blocksize bytes.
	n := block.BlockSize() - len(content)%block.BlockSize()
	plain := make([]byte, len(content)+n)
	copy(plain, content)
	for i := len(content); i < len(plain); i++ {
		plain[i] = byte(n)
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	ed := envelopedData{
		EncryptedContentInfo: encryptedContentInfo{
			ContentType:                oidData,
			ContentEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: ivDER}},
			EncryptedContent:           ct,
		},
	}
	for _, r := range recipients {
		pub, ok := r.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: recipient %q has a %T key; only RSA key transport is implemented", ErrUnsupported, r.Subject.CommonName, r.PublicKey)
		}
		// RSAES-PKCS1-v1_5 key transport is what every S/MIME agent
		// decrypts (RFC 8551 section 2.3, RFC 3370 section 4.2.1; RSAES-OAEP
		// is optional there and older peer gateways lack it). Interoperability
		// between gateways outweighs the deprecation.
		//lint:ignore SA1019 PKCS #1 v1.5 key transport is the S/MIME baseline peers decrypt
		ek, err := rsa.EncryptPKCS1v15(rand.Reader, pub, key)
		if err != nil {
			return nil, fmt.Errorf("smime: encrypt to %q: %w", r.Subject.CommonName, err)
		}
		ed.RecipientInfos = append(ed.RecipientInfos, keyTransRecipientInfo{
			RID:                    issuerAndSerial{IssuerName: asn1.RawValue{FullBytes: r.RawIssuer}, SerialNumber: r.SerialNumber},
			KeyEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue},
			EncryptedKey:           ek,
		})
	}
	inner, err := asn1.Marshal(ed)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidEnvelopedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}

// Decrypted is the outcome of Decrypt.
type Decrypted struct {
	Content []byte
	// By is the identity whose key decrypted it (R38: any valid one).
	By *Identity
}

// Decrypt opens enveloped data (DER or BER, as openssl and gpgsm write it)
// with the first of ids whose certificate it names (R38: every valid DCA
// key of ours decrypts). ErrNotForUs when it names none of them (R80, R87).
func Decrypt(der []byte, ids []*Identity) (*Decrypted, error) {
	if err := checkSize(der); err != nil {
		return nil, err
	}
	var p7 *pkcs7.PKCS7
	if err := guard("parse enveloped data", func() (err error) {
		p7, err = pkcs7.Parse(der)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var lastErr error
	for _, id := range ids {
		if id == nil || id.Cert == nil || id.Key == nil {
			continue
		}
		var out []byte
		err := guard("decrypt", func() (err error) {
			out, err = p7.Decrypt(id.Cert, id.Key)
			return err
		})
		switch {
		case err == nil:
			return &Decrypted{Content: out, By: id}, nil
		case errors.Is(err, pkcs7.ErrNotEncryptedContent):
			return nil, fmt.Errorf("%w: not enveloped data", ErrMalformed)
		case strings.Contains(err.Error(), "no enveloped recipient"):
			continue
		case errors.Is(err, pkcs7.ErrUnsupportedAlgorithm), errors.Is(err, pkcs7.ErrUnsupportedAsymmetricEncryptionAlgorithm):
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
		default:
			lastErr = err
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, lastErr)
	}
	return nil, ErrNotForUs
}
