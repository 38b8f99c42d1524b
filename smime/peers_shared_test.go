package smime

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

var sharedCerts = []string{"agency-a-old", "agency-a-new", "agency-b"}

// addAll adds every shared certificate n times from n goroutines on store
// and returns how many Adds reported the certificate new.
func addAll(t testing.TB, store *PeerStore, certs []*x509.Certificate, n int) int64 {
	var news atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, c := range certs {
			wg.Add(1)
			go func(c *x509.Certificate) {
				defer wg.Done()
				isNew, err := store.Add(CertDomains(c)[0], c)
				if err != nil {
					t.Error(err)
				}
				if isNew {
					news.Add(1)
				}
			}(c)
		}
	}
	wg.Wait()
	return news.Load()
}

func sharedFixtureCerts(t testing.TB) []*x509.Certificate {
	var out []*x509.Certificate
	for _, n := range sharedCerts {
		out = append(out, loadCert(t, n))
	}
	return out
}

// checkSharedDir: one file per certificate, no temporary file left, each
// file the certificate.
func checkSharedDir(t *testing.T, dir string, certs []*x509.Certificate) {
	t.Helper()
	var files []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(certs) {
		t.Fatalf("files in the store: %v, want %d", files, len(certs))
	}
	s, _ := NewPeerStore(dir)
	for _, c := range certs {
		got, err := s.Certificates(CertDomains(c)[0])
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range got {
			found = found || g.Equal(c)
		}
		if !found {
			t.Fatalf("%s not readable from the store", Fingerprint(c)[:16])
		}
	}
}

// Issue 15 point 5: two gateways (two PeerStores) on one directory, many
// concurrent writers: each certificate is learned once (one Add reports
// it new), one file each, no temporary file left behind.
func TestSharedPeerStoreGoroutines(t *testing.T) {
	dir := t.TempDir()
	a, err := NewPeerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPeerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	certs := sharedFixtureCerts(t)
	var na, nb int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); na = addAll(t, a, certs, 16) }()
	go func() { defer wg.Done(); nb = addAll(t, b, certs, 16) }()
	wg.Wait()
	if na+nb != int64(len(certs)) {
		t.Fatalf("learned %d+%d times, want %d (once each)", na, nb, len(certs))
	}
	checkSharedDir(t, dir, certs)
}

// The same with two processes (two milters on one host or on shared
// storage): this test binary run twice as a child.
func TestSharedPeerStoreProcesses(t *testing.T) {
	dir := t.TempDir()
	certs := sharedFixtureCerts(t)
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedPeerStoreChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "NZSM_SHARED_STORE_DIR="+dir)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	var total int64
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
		var n int64
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if v, ok := strings.CutPrefix(line, "learned="); ok {
				n, _ = strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	if total != int64(len(certs)) {
		t.Fatalf("two processes learned %d times, want %d\n%s\n%s", total, len(certs), outs[0], outs[1])
	}
	checkSharedDir(t, dir, certs)
}

// TestSharedPeerStoreChild is the child of TestSharedPeerStoreProcesses;
// alone it is skipped.
func TestSharedPeerStoreChild(t *testing.T) {
	dir := os.Getenv("NZSM_SHARED_STORE_DIR")
	if dir == "" {
		t.Skip("the child of TestSharedPeerStoreProcesses")
	}
	s, err := NewPeerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("learned=%d\n", addAll(t, s, sharedFixtureCerts(t), 32))
}
