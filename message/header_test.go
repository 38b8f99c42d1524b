package message

import (
	"reflect"
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
