package smime

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"testing"
)

// Benchmarks for bench/smime-vs-openssl.sh (issue 14): one operation is
// sign+encrypt (outbound) or decrypt+verify (inbound) of a message of the
// given size, as the gateway does it between agency gateways.

func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	for b.Len() < size {
		b.WriteString("The committee met on Tuesday to discuss the budget and agreed on items 1-4.\r\n")
	}
	return b.Bytes()[:size]
}

func BenchmarkSignEncrypt(b *testing.B) {
	a := loadID(b, "agency-a.govt.nz", "agency-a-new")
	peer := loadCert(b, "agency-b")
	for _, size := range []int{10 << 10, 1 << 20} {
		msg := benchMessage(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				sig, err := Sign(msg, a, false)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Encrypt(SignedEntity(sig), []*x509.Certificate{peer}, CipherAES256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecryptVerify(b *testing.B) {
	a := loadID(b, "agency-a.govt.nz", "agency-a-new")
	bID := loadID(b, "agency-b.govt.nz", "agency-b")
	for _, size := range []int{10 << 10, 1 << 20} {
		msg := benchMessage(size)
		sig, err := Sign(msg, a, false)
		if err != nil {
			b.Fatal(err)
		}
		env, err := Encrypt(sig, []*x509.Certificate{bID.Cert}, CipherAES256)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				d, err := Decrypt(env, []*Identity{bID})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Verify(d.Content, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
