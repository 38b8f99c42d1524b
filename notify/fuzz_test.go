package notify

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-message"
)

// FuzzApply feeds arbitrary messages to the MIME rewriting of wrap and
// prepend mode: it must never panic; it fails only with the package's
// errors; wrap output always parses as multipart/mixed with the warning and
// the original byte for byte; prepend output parses whenever the original
// does.
func FuzzApply(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(testdata, "in", "*.eml"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b, uint8(0))
			f.Add(b, uint8(1))
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\nContent-Type: text/html\r\n\r\n<body\r\n--a--"), uint8(1))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"), uint8(1))
	f.Add([]byte("Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//4=\r\n"), uint8(1))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=4=ZZ==\r\n"), uint8(1))
	f.Add([]byte("\r\n"), uint8(0))
	f.Add([]byte(""), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		mode := ModeWrap
		if sel%2 == 1 {
			mode = ModePrepend
		}
		opts := Options{Mode: mode, Code: "002", Gateway: "mx.agency.govt.nz", Rand: testRand(sel), MaxTextPart: 1 << 16,
			Text: TextParams{Link: "https://www.agency.govt.nz/w?c=002&x=<y>"}}
		r, err := Apply(opts, bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrAlreadyWarned) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := r.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		origParses := parses(t, data)
		if r.Mode == ModeWrap {
			e, err := message.Read(bytes.NewReader(out.Bytes()))
			if err != nil {
				if origParses {
					t.Fatalf("wrap output does not parse: %v\n%q", err, out.Bytes())
				}
				return // the original's own header block is beyond go-message
			}
			mt, _, _ := e.Header.ContentType()
			mr := e.MultipartReader()
			if mt != "multipart/mixed" || mr == nil {
				t.Fatalf("wrap output is %s", mt)
			}
			p1, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part 1: %v", err)
			}
			if b, err := io.ReadAll(p1.Body); err != nil || !bytes.Contains(b, []byte("[Code: 002]")) {
				t.Fatalf("part 1: %q %v", b, err)
			}
			p2, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part 2: %v", err)
			}
			inner, err := io.ReadAll(p2.Body)
			if err != nil || !bytes.Equal(inner, stripMbox(data)) {
				t.Fatalf("part 2 is not the original (%v)", err)
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Fatalf("a third part: %v", err)
			}
			return
		}
		if origParses && !parses(t, out.Bytes()) {
			t.Fatalf("prepend output does not parse:\n%q\nfrom\n%q", out.Bytes(), data)
		}
	})
}

func stripMbox(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		head := b
		if len(head) > 4096 {
			head = head[:4096]
		}
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			return b[i+1:]
		}
	}
	return b
}

// parses reports whether go-message reads the whole tree and every body.
func parses(t *testing.T, raw []byte) bool {
	_, err := leaves(t, raw)
	return err == nil
}
