package classify

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// The S/MIME fixtures are generated deterministically, so that the
// corpus check (TestCorpusGenerated) can compare the files on disk with
// the generator: a throw-away RSA key made from primes drawn from a
// seeded generator (crypto/rsa.GenerateKey ignores a custom random
// source), a certificate with fixed fields signed by it, and signed-data
// without signed attributes (PKCS #1 v1.5 signatures are deterministic;
// the signing-time attribute of pkcs7.AddSigner is not). The scanner does
// not verify signatures, so this loses nothing that is tested here.
var testSigner = sync.OnceValues(func() (*x509.Certificate, *rsa.PrivateKey) {
	r := rand.New(rand.NewChaCha8([32]byte{'n', 'z', 's', 'e', 'c', 'u', 'r', 'e'}))
	prime := func() *big.Int {
		buf := make([]byte, 128)
		for {
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			buf[0] |= 0xC0
			buf[len(buf)-1] |= 1
			p := new(big.Int).SetBytes(buf)
			if p.ProbablyPrime(20) {
				return p
			}
		}
	}
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, q := prime(), prime()
		if p.Cmp(q) == 0 {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		key := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}, D: d, Primes: []*big.Int{p, q}}
		key.Precompute()
		if err := key.Validate(); err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Alice (nzsecure-milter test only)"},
			EmailAddresses: []string{"alice@agency.govt.nz"},
			NotBefore:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
			SignatureAlgorithm: x509.SHA256WithRSA,
		}
		der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		return cert, key
	}
})

// signedData returns a CMS signed-data object encapsulating content
// (opaque signing, RFC 8551 section 3.5.3).
func signedData(content []byte) []byte {
	cert, key := testSigner()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		panic(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		panic(err)
	}
	der, err := sd.Finish()
	if err != nil {
		panic(err)
	}
	return der
}

// detachedSignature returns a detached CMS signature of content (the
// application/pkcs7-signature part of multipart/signed, RFC 8551
// section 3.5.3.1).
func detachedSignature(content []byte) []byte {
	cert, key := testSigner()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		panic(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		panic(err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		panic(err)
	}
	return der
}

// certsOnly returns a degenerate signed-data object holding only the
// certificate (smime-type=certs-only, RFC 8551 section 3.6).
func certsOnly() []byte {
	cert, _ := testSigner()
	der, err := pkcs7.DegenerateCertificate(cert.Raw)
	if err != nil {
		panic(err)
	}
	return der
}

// cmsObject returns a ContentInfo of the given type around a minimal
// enveloped-data-like structure with fixed "ciphertext": the scanner must
// recognise encrypted content by its type alone.
func cmsObject(oid asn1.ObjectIdentifier) []byte {
	type encryptedContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     []byte `asn1:"tag:0,optional"`
	}
	type envelopedData struct {
		Version    int
		Recipients asn1.RawValue
		Encrypted  encryptedContentInfo
	}
	inner, err := asn1.Marshal(envelopedData{
		Recipients: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true},
		Encrypted: encryptedContentInfo{ContentType: pkcs7.OIDData,
			Algorithm: pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDEncryptionAlgorithmAES128CBC,
				Parameters: asn1.RawValue{Tag: asn1.TagOctetString, Bytes: bytes.Repeat([]byte{7}, 16)}},
			Content: bytes.Repeat([]byte("\x13\x37ciphertext"), 8)},
	})
	if err != nil {
		panic(err)
	}
	ci, err := asn1.Marshal(struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}{oid, asn1.RawValue{FullBytes: inner}})
	if err != nil {
		panic(err)
	}
	return ci
}

// berIndefinite re-encodes a DER signed-data ContentInfo as Outlook
// streams its S/MIME output (BER, X.690 section 8.1.3.6): indefinite
// lengths for the ContentInfo, the SignedData and the encapsulated
// content, which is a constructed OCTET STRING in chunks of 1000 bytes.
func berIndefinite(der []byte) []byte {
	elems := func(b []byte) (out [][]byte) {
		for len(b) > 0 {
			var v asn1.RawValue
			rest, err := asn1.Unmarshal(b, &v)
			if err != nil {
				panic(err)
			}
			out = append(out, v.FullBytes)
			b = rest
		}
		return out
	}
	body := func(tlv []byte) []byte {
		var v asn1.RawValue
		if _, err := asn1.Unmarshal(tlv, &v); err != nil {
			panic(err)
		}
		return v.Bytes
	}
	indef := func(tag byte, parts ...[]byte) []byte {
		out := []byte{tag, 0x80}
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, 0, 0)
	}
	ci := elems(body(der))          // contentType, [0]
	sd := elems(body(body(ci[1])))  // version, digestAlgorithms, encapContentInfo, ...
	encap := elems(body(sd[2]))     // eContentType, [0]
	content := body(body(encap[1])) // the OCTET STRING's bytes
	var chunks [][]byte
	for len(content) > 0 {
		n := min(len(content), 1000)
		c, _ := asn1.Marshal(content[:n])
		chunks = append(chunks, c)
		content = content[n:]
	}
	newEncap := indef(0x30, encap[0], indef(0xA0, indef(0x24, chunks...)))
	newSD := indef(0x30, append([][]byte{sd[0], sd[1], newEncap}, sd[3:]...)...)
	return indef(0x30, ci[0], indef(0xA0, newSD))
}

func TestCMSContentType(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want asn1.ObjectIdentifier
	}{
		{signedData([]byte("x")), oidSignedData},
		{berIndefinite(signedData([]byte("x"))), oidSignedData},
		{cmsObject(oidEnvelopedData), oidEnvelopedData},
		{cmsObject(oidAuthEnveloped), oidAuthEnveloped},
		{[]byte{0x30, 0x03, 0x06, 0x01}, nil},
		{[]byte{0x30}, nil},
		{[]byte("MIME-Version: 1.0"), nil},
		{nil, nil},
	} {
		got, ok := cmsContentType(c.in)
		if ok != (c.want != nil) || (ok && !got.Equal(c.want)) {
			t.Errorf("%x: %v %v, want %v", c.in[:min(len(c.in), 12)], got, ok, c.want)
		}
	}
}

// TestPKCS7 runs the S/MIME stage over signed, encrypted and broken
// objects: signed content is scanned, the rest is unreadable, nothing
// panics.
func TestPKCS7(t *testing.T) {
	entity := []byte("Content-Type: text/plain\r\n\r\nSigned [SECRET] text\r\n")
	signed := signedData(entity)
	for _, c := range []struct {
		name       string
		in         []byte
		want       string // the classification
		unreadable string // a substring of the reason; "" when readable
	}{
		{"signed", signed, "SECRET", ""},
		{"signed BER", berIndefinite(signed), "SECRET", ""},
		{"signed BER, a marking across chunks", berIndefinite(signedData([]byte("\r\n" + strings.Repeat("x", 990) + "[TOP SECRET]"))), "TOP SECRET", ""},
		{"signed entity without header", signedData([]byte("[CONFIDENTIAL]")), "CONFIDENTIAL", ""},
		{"certs only", certsOnly(), Unclassified, ""},
		{"enveloped", cmsObject(oidEnvelopedData), Unclassified, "enveloped-data"},
		{"auth enveloped", cmsObject(oidAuthEnveloped), Unclassified, "authEnveloped-data"},
		{"compressed", cmsObject(oidCompressedData), Unclassified, "compressed-data"},
		{"signed, truncated", signed[:len(signed)/2], Unclassified, "signed-data"},
		{"signed, garbage inside", cmsObject(oidSignedData), Unclassified, "signed-data"},
		{"not CMS", []byte("[SECRET] plain text"), Unclassified, "not a CMS object"},
		{"nested too deep", append(signed[:19:19], bytes.Repeat([]byte{0x30, 0x80}, 1<<20)...), Unclassified, "nested deeper"},
		{"too many elements", append(append(signed[:15:15], 0xA0, 0x80, 0x30, 0x80), bytes.Repeat([]byte{0x05, 0x00}, maxBERElements)...), Unclassified, "more than"},
		{"empty", nil, Unclassified, "not a CMS object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := newPKCS7Stage(ctx, "body", newEntity(ctx, 1, "", false, false, ""))
			feed(s, c.in, 1000)
			res := ctx.col.result()
			if res.Classification != c.want {
				t.Errorf("classification %s, want %s (%q)", res.Classification, c.want, res.Markings)
			}
			got := strings.Join(res.Unreadable, "; ")
			if (c.unreadable == "") != (got == "") || !strings.Contains(got, c.unreadable) {
				t.Errorf("unreadable %q, want %q", got, c.unreadable)
			}
		})
	}
}

// TestPKCS7Limit: an object larger than MaxSignedData is not buffered
// beyond the limit and is unreadable.
func TestPKCS7Limit(t *testing.T) {
	ctx := testCtx(t)
	s := newPKCS7Stage(ctx, "body", newEntity(ctx, 1, "", false, false, ""))
	chunk := make([]byte, 1<<20)
	for i := 0; i < MaxSignedData>>20+2; i++ {
		s.write(chunk)
		if len(s.buf) > MaxSignedData {
			t.Fatalf("buffered %d bytes", len(s.buf))
		}
	}
	s.close()
	if res := ctx.col.result(); len(res.Unreadable) != 1 || !strings.Contains(res.Unreadable[0], "larger than") {
		t.Errorf("unreadable %q", res.Unreadable)
	}
}

// FuzzPKCS7 feeds arbitrary bytes, and mutations of real signed-data, to
// the S/MIME stage: no panic, a bounded result, and either the content
// was read or the part is unreadable or holds only certificates. Inputs
// are bounded by the fuzzer's size (MaxSignedData caps the buffer).
func FuzzPKCS7(f *testing.F) {
	for _, s := range [][]byte{
		signedData([]byte("Content-Type: text/plain\r\n\r\n[SECRET]\r\n")),
		berIndefinite(signedData([]byte("[TOP SECRET]"))),
		certsOnly(), cmsObject(oidEnvelopedData), cmsObject(oidSignedData), {0x30, 0x80, 0x06, 0x00},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		ctx := testCtx(t)
		s := newPKCS7Stage(ctx, "body", newEntity(ctx, 1, "", false, false, ""))
		s.write(in)
		s.close()
		res := ctx.col.result()
		if len(res.Markings) > MaxMarkings || len(res.Unreadable) > MaxProblems+1 {
			t.Fatalf("unbounded result %+v", res)
		}
	})
}
