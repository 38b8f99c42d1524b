package smime

import (
	"crypto/x509"
	"os"
	"testing"
)

// The PKCS#7 and certificate input paths must never panic, whatever the
// bytes (issue 14): every error is an error value.

func seedsDER(f *testing.F) {
	a := loadID(f, "agency-a.govt.nz", "agency-a-new")
	if der, err := Encrypt([]byte(entityText), []*x509.Certificate{a.Cert}, CipherAES256); err == nil {
		f.Add(der)
	}
	if der, err := Sign([]byte(entityText), a, false); err == nil {
		f.Add(der)
		f.Add(der[:len(der)/3])
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x30, 0x80})
	f.Add([]byte{})
}

func FuzzDecrypt(f *testing.F) {
	seedsDER(f)
	a := loadID(f, "agency-a.govt.nz", "agency-a-new")
	f.Fuzz(func(t *testing.T, der []byte) {
		d, err := Decrypt(der, []*Identity{a})
		if err == nil && d == nil {
			t.Fatal("nil result without an error")
		}
	})
}

func FuzzVerify(f *testing.F) {
	seedsDER(f)
	f.Fuzz(func(t *testing.T, der []byte) {
		s, err := Verify(der, nil, nil)
		if err == nil && (s == nil || s.Signer == nil) {
			t.Fatal("a verified signature without a signer")
		}
		_, _ = Verify(der, []byte(entityText), nil)
	})
}

func FuzzParseCapabilities(f *testing.F) {
	if der, err := OurCapabilities.Marshal(); err == nil {
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		caps, err := ParseCapabilities(der)
		if err == nil {
			_ = caps.Strongest()
			_ = caps.String()
		}
	})
}

func FuzzParseCertificatesPEM(f *testing.F) {
	if data, err := os.ReadFile(fixture("agency-a-new.crt")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificatesPEM(data)
		if err == nil {
			for _, c := range certs {
				_ = CheckNaming(c, "agency-a.govt.nz")
				_ = CertDomains(c)
			}
		}
	})
}
