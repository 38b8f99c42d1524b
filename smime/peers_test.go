package smime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestPeerStoreLearnsAndChooses(t *testing.T) {
	dir := t.TempDir()
	s, err := NewPeerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := &Validator{Anchors: anchors(t), Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }}
	if pv := s.Peer(context.Background(), v, "agency-a.govt.nz"); pv.Cert != nil || pv.State != StateUnknown {
		t.Fatalf("empty store: %+v", pv)
	}
	cur := loadCert(t, "agency-a-new")
	for _, c := range []struct {
		name string
		new  bool
	}{{"agency-a-old", true}, {"agency-a-new", true}, {"agency-a-new", false}} {
		added, err := s.Add("agency-a.govt.nz", loadCert(t, c.name))
		if err != nil || added != c.new {
			t.Fatalf("add %s: %v %v, want new=%v", c.name, added, err, c.new)
		}
	}
	pv := s.Peer(context.Background(), v, "Agency-A.govt.nz.")
	if pv.Cert == nil || !pv.Cert.Equal(cur) || pv.Cipher != CipherAES256 {
		t.Fatalf("R62-R64: want the newest certificate with AES-256, got %+v", pv)
	}
	// R84-R85: cached capabilities decide the cipher, across a restart.
	if err := s.SetCapabilities("agency-a.govt.nz", Capabilities{oidDESEDE3CBC, oidAES128CBC}); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewPeerStore(dir)
	if pv := s2.Peer(context.Background(), v, "agency-a.govt.nz"); pv.Cipher != CipherAES128 {
		t.Fatalf("capabilities after a restart: %v, want aes128-cbc", pv.Cipher)
	}
	// The old certificate ends 2046-01-01, the new one 2047-01-01.
	v.Now = func() time.Time { return time.Date(2046, 6, 1, 0, 0, 0, 0, time.UTC) }
	if pv := s.Peer(context.Background(), v, "agency-a.govt.nz"); pv.Cert == nil || !pv.Cert.Equal(cur) {
		t.Fatalf("2046: %+v", pv)
	}
	v.Now = func() time.Time { return time.Date(2048, 1, 1, 0, 0, 0, 0, time.UTC) }
	if pv := s.Peer(context.Background(), v, "agency-a.govt.nz"); pv.Cert != nil || pv.State != StateExpired || len(pv.Reasons) != 2 {
		t.Fatalf("all expired: %+v, want expired (Table 1) with both reasons", pv)
	}
}

func TestPeerStoreRevokedPeer(t *testing.T) {
	s, _ := NewPeerStore(t.TempDir())
	revoked := loadCert(t, "revoked")
	if _, err := s.Add("agency-r.govt.nz", revoked); err != nil {
		t.Fatal(err)
	}
	v := &Validator{Anchors: anchors(t), Revocation: fakeRevocation{revoked: map[string]bool{revoked.SerialNumber.String(): true}}}
	if pv := s.Peer(context.Background(), v, "agency-r.govt.nz"); pv.Cert != nil || pv.State != StateRevoked {
		t.Fatalf("revoked peer: %+v", pv)
	}
}

func TestPeerStoreRejectsBadDomains(t *testing.T) {
	s, _ := NewPeerStore(t.TempDir())
	for _, d := range []string{"", "../etc", "a/b", ".hidden"} {
		if _, err := s.Add(d, loadCert(t, "agency-b")); !errors.Is(err, ErrBadDomain) {
			t.Errorf("%q: %v, want ErrBadDomain", d, err)
		}
	}
}

// Two gateways sharing one store learn a certificate once, with concurrent
// writers, and never read a partial file.
func TestPeerStoreConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	c := loadCert(t, "agency-b")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := NewPeerStore(dir)
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < 20; j++ {
				if _, err := s.Add("agency-b.govt.nz", c); err != nil {
					t.Error(err)
				}
				if cs, err := s.Certificates("agency-b.govt.nz"); err != nil || len(cs) > 1 {
					t.Errorf("read %d certificates: %v", len(cs), err)
				}
			}
		}()
	}
	wg.Wait()
	files, _ := filepath.Glob(filepath.Join(dir, "agency-b.govt.nz", "*"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one certificate and no temporary files", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "agency-b.govt.nz", Fingerprint(c)+".pem")); err != nil {
		t.Fatal(err)
	}
}
