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
