package message

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestReadHeaderBlock: values as the MTA passes them under
// OptHeaderLeadingSpace, folds joined by "\n", the body left in r, and the
// bound enforced while reading.
func TestReadHeaderBlock(t *testing.T) {
	in := "From alice Mon Jan 1 00:00:00 2024\r\nFrom: a@b\r\nSubject:  two\r\n\tlines\r\nX-E:\r\n\r\nbody\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	hs, err := ReadHeaderBlock(r, 1000)
	want := []Header{{"From", " a@b"}, {"Subject", "  two\n\tlines"}, {"X-E", ""}}
	if err != nil || !reflect.DeepEqual(hs, want) {
		t.Fatalf("got %q, %v; want %q", hs, err, want)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "body\r\n" {
		t.Errorf("body %q", rest)
	}
	for _, c := range []struct {
		in    string
		limit int64
		err   error
	}{
		{"From: a@b\r\n\r\n", 13, nil},
		{"From: a@b\r\n\r\n", 12, ErrHeaderBlockTooLarge},
		{"From: " + strings.Repeat("x", 100) + "\r\n\r\n", 50, ErrHeaderBlockTooLarge},
		{" first\r\n\r\n", 100, ErrMalformedHeader},
		{"No colon\r\n\r\n", 100, ErrMalformedHeader},
	} {
		_, err := ReadHeaderBlock(bufio.NewReaderSize(strings.NewReader(c.in), 16), c.limit)
		if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("%q limit %d: err %v, want %v", c.in, c.limit, err, c.err)
		}
	}
	// A first line "From : x" is the From: field with a blank before its
	// colon, not an mbox separator: read as one, the message had no From:
	// (check refused it where serve, through Postfix, warned it).
	for _, first := range []string{"From : ceo@agency.example", "From 	: ceo@agency.example"} {
		hs, err := ReadHeaderBlock(bufio.NewReader(strings.NewReader(first+"\r\nSubject: s\r\n\r\nbody\r\n")), 1000)
		if err != nil || len(hs) != 2 || hs[0].Name != "From" || hs[0].Value != " ceo@agency.example" {
			t.Errorf("%q: got %q, %v", first, hs, err)
		}
	}
	// Too large is also malformed: callers that only know the latter fail.
	_, err = ReadHeaderBlock(bufio.NewReader(strings.NewReader("From: a@b\r\n\r\n")), 5)
	if !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("too large: %v", err)
	}
	for name, want := range map[string]bool{"From": true, "X-A_b.c": true, "": false, "Bad Name": false, "a:b": false, "caf\xe9": false} {
		if ValidFieldName(name) != want {
			t.Errorf("ValidFieldName(%q) != %v", name, want)
		}
	}
}

// ScanHeaderBlock keeps where every field's bytes are, folds included, and
// reads by ReadHeaderBlock's rules.
func TestScanHeaderBlockPositions(t *testing.T) {
	msg := "Subject : hi\r\n there\r\nFrom: a@b.example\r\n\r\nbody\r\n"
	s, err := ScanHeaderBlock(bufio.NewReader(strings.NewReader(msg)), ScanOptions{Limit: 1 << 10, LenientNames: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.EOL != "\r\n" || !s.Blank || s.Size != int64(strings.Index(msg, "body")) || len(s.Fields) != 2 {
		t.Fatalf("scan %+v", s)
	}
	for i, want := range []struct{ name, value, raw string }{
		{"Subject", " hi\n there", "Subject : hi\r\n there\r\n"},
		{"From", " a@b.example", "From: a@b.example\r\n"},
	} {
		f := s.Fields[i]
		if f.Name != want.name || f.Value != want.value || msg[f.Start:f.End] != want.raw {
			t.Errorf("field %d: %q %q %q", i, f.Name, f.Value, msg[f.Start:f.End])
		}
	}
	// Without LenientNames "Subject :" is no field.
	if _, err := ScanHeaderBlock(bufio.NewReader(strings.NewReader(msg)), ScanOptions{Limit: 1 << 10}); !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("ScanHeaderBlock accepted a blank before the colon: %v", err)
	}
	// ReadHeaderBlock (check's reader) takes it as Postfix does: Postfix
	// hands the milter "Subject", the blank taken off (tests/e2e saw it
	// with a client-supplied "X-NZ-Secure-email :", which was removed).
	if hs, err := ReadHeaderBlock(bufio.NewReader(strings.NewReader(msg)), 1<<10); err != nil || len(hs) != 2 || hs[0].Name != "Subject" {
		t.Errorf("ReadHeaderBlock: %v %v", hs, err)
	}
	// A block that runs to the end of input has no blank line.
	s, err = ScanHeaderBlock(bufio.NewReader(strings.NewReader("A: 1\nB: 2")), ScanOptions{Limit: 100})
	if err != nil || s.Blank || s.EOL != "\n" || len(s.Fields) != 2 || s.Fields[1].End != 9 {
		t.Errorf("unterminated block: %+v %v", s, err)
	}
	if _, err := ScanHeaderBlock(bufio.NewReader(strings.NewReader("A: 1\n"+strings.Repeat("x", 200))), ScanOptions{Limit: 100}); !errors.Is(err, ErrHeaderBlockTooLarge) {
		t.Errorf("past the limit: %v", err)
	}
}
