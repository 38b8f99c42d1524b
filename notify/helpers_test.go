package notify

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/notify")

// testdata is the package's directory of test files.
var testdata = filepath.Join("..", "testdata", "notify")

// golden compares got with testdata/notify/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(testdata, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./notify -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n%s", name, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}

// testRand is a deterministic random source for boundaries and Message-IDs.
func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

// testNow is the fixed clock of the tests (New Zealand daylight time).
var testNow = time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("NZDT", 13*3600))

func readInput(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "in", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func inputNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(testdata, "in", "*.eml"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(p))
	}
	return out
}

// leaf is a non-multipart entity of a parsed message.
type leaf struct {
	path        string
	mediaType   string
	params      map[string]string
	cte         string
	disposition string
	body        []byte // decoded to UTF-8 by go-message (text/*)
}

// leaves parses a message with go-message and returns its leaves in order.
func leaves(t testing.TB, raw []byte) ([]leaf, error) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, err
	}
	var out []leaf
	var walk func(e *message.Entity, path string) error
	walk = func(e *message.Entity, path string) error {
		if mr := e.MultipartReader(); mr != nil {
			for i := 0; ; i++ {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
					return err
				}
				if err := walk(p, fmt.Sprintf("%s/%d", path, i+1)); err != nil {
					return err
				}
			}
		}
		mt, params, _ := e.Header.ContentType()
		disp, _, _ := e.Header.ContentDisposition()
		body, err := io.ReadAll(e.Body)
		if err != nil {
			return fmt.Errorf("%s: reading body: %w", path, err)
		}
		out = append(out, leaf{path: path, mediaType: mt, params: params,
			cte: strings.ToLower(e.Header.Get("Content-Transfer-Encoding")), disposition: disp, body: body})
		return nil
	}
	if err := walk(e, ""); err != nil {
		return out, err
	}
	return out, nil
}
