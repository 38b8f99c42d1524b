package pipeline

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolSpillsToDisk(t *testing.T) {
	dir := t.TempDir()
	s := NewSpool(100, dir)
	var want bytes.Buffer
	for i := 0; i < 50; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 7)
		want.Write(chunk)
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if onDisk := want.Len() > 100; s.OnDisk() != onDisk {
			t.Fatalf("after %d bytes OnDisk = %v", want.Len(), s.OnDisk())
		}
	}
	got, err := io.ReadAll(s.Reader())
	if err != nil || !bytes.Equal(got, want.Bytes()) || s.Size() != int64(want.Len()) {
		t.Fatalf("read back %d bytes (err %v), want %d", len(got), err, want.Len())
	}
	// The temporary file is unlinked at once: nothing is left behind.
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left in the spool dir: %v", left)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSpoolInMemory(t *testing.T) {
	s := NewSpool(1<<20, "")
	s.Write([]byte("hello "))
	s.Write([]byte("world"))
	got, _ := io.ReadAll(s.Reader())
	if string(got) != "hello world" || s.OnDisk() {
		t.Fatalf("got %q on disk %v", got, s.OnDisk())
	}
}

func TestSpoolUnwritableDir(t *testing.T) {
	s := NewSpool(1, filepath.Join(t.TempDir(), "missing"))
	if _, err := s.Write([]byte("more than one byte")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
