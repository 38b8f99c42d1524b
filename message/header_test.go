package message

import (
	"reflect"
	"strings"
	"testing"
)

// TestApplyEdits checks the milter protocol's counting: per-name, 1-based,
// without regard to case, over the list as the earlier edits left it;
// inserts by absolute position, clamped; edits of absent headers ignored.
func TestApplyEdits(t *testing.T) {
	hs := []Header{{"Received", "a"}, {"Subject", "s"}, {"received", "b"}, {"To", "t"}}
	edits := []HeaderEdit{
		{Op: OpDelete, Name: "RECEIVED", Index: 2}, // the lower-case one
		{Op: OpChange, Name: "subject", Index: 1, Value: "new"},
		{Op: OpChange, Name: "Subject", Index: 2, Value: "absent"},
		{Op: OpDelete, Name: "Cc", Index: 1},
		{Op: OpAdd, Name: "X-A", Value: "1"},
		{Op: OpInsert, Name: "DKIM-Signature", Index: 0, Value: "sig"},
		{Op: OpInsert, Name: "X-End", Index: 99, Value: "e"},
		{Op: OpInsert, Name: "X-Top", Index: -3, Value: "top"},
	}
	want := []Header{{"X-Top", "top"}, {"DKIM-Signature", "sig"}, {"Received", "a"}, {"Subject", "new"}, {"To", "t"}, {"X-A", "1"}, {"X-End", "e"}}
	got := ApplyEdits(hs, edits)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ApplyEdits:\n got %v\nwant %v", got, want)
	}
	if hs[2].Name != "received" || hs[1].Value != "s" {
		t.Fatalf("input modified: %v", hs)
	}
}

func TestNthHeader(t *testing.T) {
	names := []string{"A", "b", "B", "a", "c"}
	id := func(s string) string { return s }
	for _, c := range []struct {
		name string
		nth  int
		want int
	}{{"a", 1, 0}, {"A", 2, 3}, {"b", 2, 2}, {"a", 3, -1}, {"c", 0, -1}, {"d", 1, -1}} {
		if got := NthHeader(names, id, c.name, c.nth); got != c.want {
			t.Errorf("NthHeader(%q, %d) = %d, want %d", c.name, c.nth, got, c.want)
		}
	}
}

// TestHeaderBlock: the space after the colon is added only where the
// value does not bring its own, folds take the requested line end, and the
// block ends with an empty line.
func TestHeaderBlock(t *testing.T) {
	hs := []Header{{"Subject", "a\n b"}, {"X-Empty", ""}, {"X-Tab", "\tv"}, {"Received", "from x\r\n\tby y"}}
	want := "Subject: a\r\n b\r\nX-Empty:\r\nX-Tab:\tv\r\nReceived: from x\r\n\tby y\r\n\r\n"
	if got := HeaderBlock(hs, "\r\n"); got != want {
		t.Errorf("CRLF:\n got %q\nwant %q", got, want)
	}
	want = "Subject: a\n b\nX-Empty:\nX-Tab:\tv\nReceived: from x\n\tby y\n\n"
	if got := HeaderBlock(hs, "\n"); got != want {
		t.Errorf("LF:\n got %q\nwant %q", got, want)
	}
	var b strings.Builder
	if err := WriteHeaderBlock(&b, hs[:1], "\r\n"); err != nil || b.String() != "Subject: a\r\n b\r\n\r\n" {
		t.Errorf("WriteHeaderBlock = %q, %v", b.String(), err)
	}
	if got := HeaderField("Content-Type", "text/plain", "\n"); got != "Content-Type: text/plain\n" {
		t.Errorf("HeaderField = %q", got)
	}
}
