package policy

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadHeaders(t *testing.T) {
	cases := []struct {
		name, in string
		want     []Header
		body     string
		err      error
	}{
		{"CRLF", "From: a@b\r\nSubject:  hi\r\n\r\nbody\r\n", hdrs("From", "a@b", "Subject", "hi"), "body\r\n", nil},
		{"bare LF", "From: a@b\nTo: c@d\n\nbody\n", hdrs("From", "a@b", "To", "c@d"), "body\n", nil},
		{"folded", "Subject: one\r\n two\r\n\tthree\r\n\r\n", hdrs("Subject", "one\n two\n\tthree"), "", nil},
		{"no body", "From: a@b\n", hdrs("From", "a@b"), "", nil},
		{"mbox separator", "From alice@b Mon Jan 1 00:00:00 2024\nFrom: a@b\n\nx", hdrs("From", "a@b"), "x", nil},
		{"empty value", "X-Empty:\n\n", hdrs("X-Empty", ""), "", nil},
		{"continuation first", " oops\n", nil, "", ErrMalformedHeader},
		{"not a header", "From: a@b\nthis is not a header\n\n", hdrs("From", "a@b"), "", ErrMalformedHeader},
		{"space in name", "Bad Name: x\n", nil, "", ErrMalformedHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(c.in))
			got, err := ReadHeaders(r)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("headers = %q, want %q", got, c.want)
			}
			if c.err == nil {
				rest, _ := io.ReadAll(r)
				if string(rest) != c.body {
					t.Errorf("body = %q, want %q", rest, c.body)
				}
			}
		})
	}
	t.Run("oversized block", func(t *testing.T) {
		big := strings.Repeat("X-Pad: "+strings.Repeat("a", 990)+"\n", 1100)
		_, err := ReadHeaders(bufio.NewReader(strings.NewReader(big)))
		if !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("err = %v", err)
		}
	})
}

// FuzzReadHeaders: no input panics, and names never hold a colon or blanks.
func FuzzReadHeaders(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: x\r\n y\r\n\r\nbody"))
	f.Add([]byte("From a Mon\nX: 1\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, _ := ReadHeaders(bufio.NewReader(strings.NewReader(string(data))))
		for _, h := range hs {
			if h.Name == "" || strings.ContainsAny(h.Name, ": \t\r\n") {
				t.Fatalf("bad header name %q", h.Name)
			}
		}
	})
}
