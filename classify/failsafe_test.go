package classify

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseMedia covers the lenient MIME parameter parser (RFC 2045
// section 5.1, RFC 2231; issue 11 point 5).
func TestParseMedia(t *testing.T) {
	for _, c := range []struct {
		in     string
		typ    string
		params map[string]string
		dups   []string
	}{
		{"", "", nil, nil},
		{"Text/Plain", "text/plain", map[string]string{}, nil},
		{`text/plain; charset="utf-8"; format=flowed`, "text/plain", map[string]string{"charset": "utf-8", "format": "flowed"}, nil},
		{`multipart/mixed; BOUNDARY="a;b\"c"`, "multipart/mixed", map[string]string{"boundary": `a;b"c`}, nil},
		{`multipart/mixed; boundary="unterminated`, "multipart/mixed", map[string]string{"boundary": "unterminated"}, nil},
		{`multipart/mixed; boundary*0="ab"; boundary*1=cd; boundary*2*=%65%66`, "multipart/mixed", map[string]string{"boundary": "abcdef"}, nil},
		{`multipart/mixed; boundary*1=cd; boundary*0=ab`, "multipart/mixed", map[string]string{"boundary": "abcd"}, nil},
		{`multipart/mixed; boundary*0=ab; boundary*2=ef`, "multipart/mixed", map[string]string{"boundary": "ab"}, nil},
		{`multipart/mixed; boundary*0*=iso-2022-jp'ja'%1B%24B; boundary*1*=%1B%28B`, "multipart/mixed", map[string]string{"boundary": "\x1b$B\x1b(B"}, nil},
		{`multipart/mixed; boundary*=x-unknown''caf%E9`, "multipart/mixed", map[string]string{"boundary": "caf\xe9"}, nil},
		{`attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt`, "attachment", map[string]string{"filename": "résumé.txt"}, nil},
		{`attachment; filename*=%ZZ`, "attachment", map[string]string{"filename": "%ZZ"}, nil},
		{`multipart/mixed; boundary=a; boundary=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`multipart/mixed; boundary=a; boundary="a"`, "multipart/mixed", map[string]string{"boundary": "a"}, nil},
		{`multipart/mixed; boundary=a; boundary*0=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`multipart/mixed; boundary*0=a; boundary*0=b`, "multipart/mixed", map[string]string{"boundary": "a"}, []string{"boundary"}},
		{`text/plain; ; =x; novalue; charset = us-ascii `, "text/plain", map[string]string{"charset": "us-ascii"}, nil},
	} {
		m := parseMedia(c.in)
		if m.typ != c.typ || !reflect.DeepEqual(m.params, c.params) && !(len(m.params) == 0 && len(c.params) == 0) || !slices.Equal(m.dups, c.dups) {
			t.Errorf("%q: %q %q dups %q, want %q %q %q", c.in, m.typ, m.params, m.dups, c.typ, c.params, c.dups)
		}
	}
}

// TestParamCharset: a name in an RFC 2231 charset is shown in UTF-8.
func TestParamCharset(t *testing.T) {
	for in, want := range map[string]string{
		`attachment; filename*=iso-8859-1'fr'r%E9sum%E9.txt`:               "résumé.txt",
		`attachment; filename*0*=windows-1252''%93q%94; filename*1=".txt"`: "“q”.txt",
		`attachment; filename*=utf-8''%E2%82%AC.txt`:                       "€.txt",
		`attachment; filename*=x-bogus''%E9.txt`:                           "\xe9.txt",
		`attachment; filename="plain.txt"`:                                 "plain.txt",
	} {
		if got := parseMedia(in).text("filename"); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func FuzzMediaType(f *testing.F) {
	for _, s := range []string{`multipart/mixed; boundary*0="ab"; boundary*1*=%65`, `a; b="\"`, `x; y*=a'b'%`, `t; n*999=1; n*0*=''%41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := parseMedia(s)
		for k, v := range m.params {
			if k == "" || len(v) > len(s) {
				t.Fatalf("%q: parameter %q=%q", s, k, v)
			}
		}
	})
}

// budgetMsg is a message with a Subject marking and a body marking
// after some filler, for the budget tests.
func budgetMsg() []byte {
	return []byte(crlf(head("budget") + "Subject: [IN-CONFIDENCE] budget\nContent-Type: text/plain\n\n" +
		strings.Repeat("filler line\n", 1000) + "[SECRET]\n"))
}

// TestMaxBytes: past Options.MaxBytes nothing more is scanned, what was
// found stays, and the result is unreadable; a message within the budget
// is read as usual.
func TestMaxBytes(t *testing.T) {
	msg := budgetMsg()
	for _, c := range []struct {
		max        int64
		want       string
		unreadable bool
	}{
		{0, "SECRET", false},
		{int64(len(msg)), "SECRET", false},
		{int64(len(msg)) - 3, "IN-CONFIDENCE", true},
		{200, "IN-CONFIDENCE", true},
		{1, Unclassified, true},
	} {
		for _, chunk := range []int{1, 7, 4096, len(msg)} {
			s, _ := NewScanner(Options{MaxBytes: c.max})
			for rest := msg; len(rest) > 0; {
				n := min(chunk, len(rest))
				if k, err := s.Write(rest[:n]); err != nil || k != n {
					t.Fatalf("write: %d %v", k, err)
				}
				rest = rest[n:]
			}
			res, err := s.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.Classification != c.want || res.Readable() == c.unreadable {
				t.Errorf("MaxBytes %d, chunks of %d: %s unreadable %q; want %s %v", c.max, chunk, res.Classification, res.Unreadable, c.want, c.unreadable)
			}
			if c.unreadable && !strings.Contains(strings.Join(res.Unreadable, ";"), "size budget") {
				t.Errorf("MaxBytes %d: unreadable %q", c.max, res.Unreadable)
			}
		}
	}
}

// TestDeadline: a Write after Options.Deadline scans nothing more and the
// result is unreadable; what came before is kept.
func TestDeadline(t *testing.T) {
	msg := budgetMsg()
	i := bytes.Index(msg, []byte("filler"))
	s, _ := NewScanner(Options{Deadline: time.Now().Add(time.Hour)})
	s.Write(msg[:i])
	s.ctx.opts.Deadline = time.Now().Add(-time.Second) // the hour has passed
	if n, err := s.Write(msg[i:]); err != nil || n != len(msg)-i {
		t.Fatalf("write: %d %v", n, err)
	}
	res, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Classification != "IN-CONFIDENCE" || !strings.Contains(strings.Join(res.Unreadable, ";"), "time budget") {
		t.Errorf("%s, unreadable %q", res.Classification, res.Unreadable)
	}
	res, err = Classify(bytes.NewReader(msg), Options{Deadline: time.Now().Add(time.Minute)})
	if err != nil || res.Classification != "SECRET" || !res.Readable() {
		t.Errorf("within the deadline: %+v %v", res, err)
	}
	res, _ = Classify(bytes.NewReader(msg), Options{Deadline: time.Now().Add(-time.Minute)})
	if res.Classification != Unclassified || res.Readable() {
		t.Errorf("past the deadline: %+v", res)
	}
}

// TestPKCS7Deadline: an S/MIME object is not parsed once the time budget
// is spent.
func TestPKCS7Deadline(t *testing.T) {
	ctx := testCtx(t)
	ctx.opts.Deadline = time.Now().Add(-time.Second)
	s := newPKCS7Stage(ctx, "body", newEntity(ctx, 1, "", false, false, ""))
	feed(s, signedData([]byte("[SECRET]")), 100)
	if res := ctx.col.result(); res.Classification != Unclassified || !strings.Contains(strings.Join(res.Unreadable, ";"), "time budget") {
		t.Errorf("%+v", res)
	}
}

// TestPGPDetectChunks: the armor line is found however it is split.
func TestPGPDetectChunks(t *testing.T) {
	in := []byte("text before\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n")
	for n := 1; n <= len(in); n++ {
		ctx := testCtx(t)
		var out collect
		feed(newPGPDetect(ctx, "body", &out), in, n)
		if out.b.String() != string(in) || ctx.col.result().Readable() {
			t.Fatalf("chunks of %d: %q %q", n, out.b.String(), ctx.col.result().Unreadable)
		}
	}
	ctx := testCtx(t)
	feed(newPGPDetect(ctx, "body", &collect{}), []byte("-----BEGIN PGP SIGNED MESSAGE-----\r\n-----BEGIN PGP SIGNATURE-----"), 5)
	if !ctx.col.result().Readable() {
		t.Errorf("clear-signed: %q", ctx.col.result().Unreadable)
	}
}
