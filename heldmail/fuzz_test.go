package heldmail

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadMeta: whatever an ID.json holds (a crash, a disk error, a
// hand edit), reading it gives an entry or an error, never a panic, and
// an entry it accepts names the ID and a digest (a message is never sent
// without one to check it against).
func FuzzReadMeta(f *testing.F) {
	const id = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	f.Add([]byte(`{"id":"` + id + `","size":3,"sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","conn":{},"envelope":{"Rcpts":["a@b"]},"received":"2026-12-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"` + id + `"`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":"` + id + `","size":-1,"sha256":"x"}`))
	dir := f.TempDir()
	path := filepath.Join(dir, id+".json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		e, err := readMeta(path, id)
		if err != nil {
			return
		}
		if e.ID != id || len(e.SHA256) != 64 || e.Size < 0 {
			t.Fatalf("accepted %+v", e)
		}
	})
}
