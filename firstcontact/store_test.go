package firstcontact

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreSurvivesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "first-contact")
	s, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The domain is normalised (case, IDNA); the local part is kept.
	s.Add("Bob@Partner.Example", "kiri@bücher.example", "not an address")
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	r, err := Open(path, 10)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	for _, a := range []string{"Bob@partner.example", "kiri@xn--bcher-kva.example"} {
		if !r.Known(a) {
			t.Errorf("%s not known after a reload", a)
		}
	}
	if r.Known("bob@partner.example") {
		t.Error("the local part's case was folded: bob@ is not Bob@")
	}
	if r.Len() != 2 {
		t.Errorf("Len %d after reload, want 2", r.Len())
	}
}

func TestStoreBoundedLRU(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fc")
	s, _ := Open(path, 3)
	s.Add("a@x.example", "b@x.example", "c@x.example")
	s.Known("a@x.example") // a used again: b is now the least recently used
	s.Add("d@x.example")
	if s.Len() != 3 {
		t.Fatalf("Len %d, want 3 (bounded)", s.Len())
	}
	if s.Known("b@x.example") {
		t.Error("b, the least recently used, not evicted")
	}
	for _, a := range []string{"a@x.example", "c@x.example", "d@x.example"} {
		if !s.Known(a) {
			t.Errorf("%s evicted", a)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// A file longer than the bound keeps its most recent lines: the
	// lookups above made the order a, c, d.
	r, err := Open(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.Known("a@x.example") || !r.Known("c@x.example") || !r.Known("d@x.example") {
		t.Errorf("reopened with max 2: Len %d, a known %v, c %v, d %v; want c and d, the two most recent", r.Len(), r.Known("a@x.example"), r.Known("c@x.example"), r.Known("d@x.example"))
	}
}

func TestStoreCorruptFileNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fc")
	data := "# comment\nok@x.example\n\x00\x01garbage\nno-at-sign\n" + strings.Repeat("y", 5000) + "\nfine@y.example\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, 10)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a corrupt file: error %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "3 line(s)") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q does not count the 3 bad lines from line 3", err)
	}
	if s == nil || !s.Known("ok@x.example") || !s.Known("fine@y.example") || s.Len() != 2 {
		t.Fatalf("the good lines were not kept")
	}
	// The next write drops the bad lines.
	s.Add("new@z.example")
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after a corrupt load: %v", err)
	}
	if _, err := Open(path, 10); err != nil {
		t.Errorf("rewritten file still corrupt: %v", err)
	}
}

func TestStoreUnreadableFileStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fc")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	s, err := Open(path, 10)
	if err == nil || s == nil {
		t.Fatalf("Open of a directory: store %v, error %v; want a usable store and an error", s, err)
	}
	if s.Len() != 0 || s.Known("a@b.example") {
		t.Error("unreadable state: not empty")
	}
}

func TestApproveReachesRunningStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fc")
	running, _ := Open(path, 10)
	running.Add("first@x.example")
	if err := running.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time
	if err := Approve(path, 10, "Approved@Partner.EXAMPLE"); err != nil {
		t.Fatal(err)
	}
	if running.Known("Approved@partner.example") {
		t.Fatal("known before the running store synced: the test proves nothing")
	}
	running.Add("second@x.example")
	if err := running.Sync(); err != nil {
		t.Fatal(err)
	}
	if !running.Known("Approved@partner.example") {
		t.Error("the approved address did not reach the running store")
	}
	after, _ := Open(path, 10)
	for _, a := range []string{"first@x.example", "second@x.example", "Approved@partner.example"} {
		if !after.Known(a) {
			t.Errorf("%s lost from the file (the running store wrote over the approval?)", a)
		}
	}
	if err := Approve(path, 10, "no address"); err == nil {
		t.Error("Approve of a non-address: no error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("# c\na@b.example\n\nbad\n"))
	f.Add([]byte(strings.Repeat("x", 3000)))
	f.Add([]byte("a@b\r\nc@d.example\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		addrs, err := parse(bytes.NewReader(data), 5)
		if len(addrs) > 5 {
			t.Fatalf("%d addresses kept, max 5", len(addrs))
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		for _, a := range addrs {
			if strings.ContainsAny(a, "\n\r ") || !strings.Contains(a, "@") {
				t.Fatalf("kept %q", a)
			}
		}
		_ = fmt.Sprint(addrs)
	})
}
