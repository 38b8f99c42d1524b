package statefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOwnLikeDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := OwnLikeDir(f, dir); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner %d:%d, want the directory's 65534:65534", st.Uid, st.Gid)
	}
	// A root-owned directory: the file stays root's.
	g, _ := os.Create(filepath.Join(t.TempDir(), "x"))
	defer g.Close()
	if err := OwnLikeDir(g, "/"); err != nil {
		t.Error(err)
	}
}
