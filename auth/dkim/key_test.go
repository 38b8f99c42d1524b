package dkim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

func TestParseKey(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey.Signer.(*rsa.PrivateKey))})
	pkcs8RSA, _ := MarshalPrivateKey(rsaKey.Signer)
	pkcs8Ed, _ := MarshalPrivateKey(edKey.Signer)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakPEM, _ := MarshalPrivateKey(weak)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPEM, _ := MarshalPrivateKey(ec)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1, 2, 3}})

	cases := []struct {
		name    string
		data    []byte
		wantAlg string
		wantErr error
	}{
		{"PKCS#1 RSA", pkcs1, "rsa-sha256", nil},
		{"PKCS#8 RSA", pkcs8RSA, "rsa-sha256", nil},
		{"PKCS#8 Ed25519", pkcs8Ed, "ed25519-sha256", nil},
		{"text before the block", append([]byte("# key for agency.govt.nz\n"), pkcs8Ed...), "ed25519-sha256", nil},
		{"RSA 1024 refused (RFC 8301 section 3.2)", weakPEM, "", ErrWeakKey},
		{"ECDSA PKCS#8", ecPEM, "", ErrUnsupportedKey},
		{"EC PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "", ErrUnsupportedKey},
		{"encrypted", encrypted, "", ErrBadPEM},
		{"not PEM", []byte("hello"), "", ErrBadPEM},
		{"public key only", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "", ErrBadPEM},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "", ErrBadPEM},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseKey("sel", c.data)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != c.wantAlg || k.Selector != "sel" {
				t.Fatalf("%s %s", k.Selector, k.Algorithm())
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	_, edKey := testKeys(t)
	dir := t.TempDir()
	p := writeKeyFile(t, dir, "ed.key", edKey.Signer)
	k, err := LoadKey("ed", p)
	if err != nil || k.Algorithm() != "ed25519-sha256" {
		t.Fatalf("%v %v", k, err)
	}
	if _, err := LoadKey("ed", filepath.Join(dir, "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadKey("ed", bad); !errors.Is(err, ErrBadPEM) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	if _, err := GenerateKey("rsa", 1024); !errors.Is(err, ErrWeakKey) {
		t.Errorf("rsa 1024: %v", err)
	}
	if _, err := GenerateKey("dsa", 0); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("dsa: %v", err)
	}
	k, err := GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := KeyRecord(k.Public())
	if !regexp.MustCompile(`^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$`).MatchString(rec) {
		t.Errorf("record %q", rec)
	}
}

// The zone line published for a key (RFC 6376 section 3.6.2.2: strings
// of at most 255 bytes, concatenated) is what verifiers find.
func TestZoneLine(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	var zoneText strings.Builder
	for _, k := range []Key{rsaKey, edKey} {
		rec, err := KeyRecord(k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		line := ZoneLine(k.Selector, "agency.govt.nz.", rec)
		if !strings.HasPrefix(line, k.Selector+"._domainkey.agency.govt.nz. IN TXT \"v=DKIM1; k=") {
			t.Errorf("line %q", line)
		}
		for _, s := range regexp.MustCompile(`"[^"]*"`).FindAllString(line, -1) {
			if len(s)-2 > 255 {
				t.Errorf("string of %d bytes", len(s)-2)
			}
		}
		zoneText.WriteString(line + "\n")
	}
	zone, err := dnstest.ParseZone(zoneText.String())
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("agency.govt.nz", 10)
	values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := Verify(context.Background(), strings.NewReader(prepend(msg, values...)), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil || len(sigs) != 2 || sigs[0].Result != Pass || sigs[1].Result != Pass {
		t.Fatalf("%+v %v", sigs, err)
	}
}
