package spf

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestParseCached: the memoised parse gives what ParseRecord gives, the
// same Record for the same text, errors included; long texts are not kept
// and the cache stays bounded.
func TestParseCached(t *testing.T) {
	texts := []string{"v=spf1 ip4:192.0.2.0/24 -all", "v=spf1 include:%{d}.example ~all", "v=spf1 bogus:x -all",
		"spf2.0/pra ip4:192.0.2.1 -all", "v=spf1 redirect=_spf.example", "not a record"}
	for _, txt := range texts {
		want, wantErr := ParseRecord(txt)
		got, err := parseCached(txt)
		again, err2 := parseCached(txt)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) || (err2 == nil) != (err == nil) {
			t.Fatalf("%q: error %v, ParseRecord %v", txt, err, wantErr)
		}
		if err == nil && (!reflect.DeepEqual(got, want) || got != again) {
			t.Fatalf("%q: %+v, ParseRecord %+v (shared: %v)", txt, got, want, got == again)
		}
	}
	long := "v=spf1 " + strings.Repeat("ip4:192.0.2.1 ", 40) + "-all"
	if a, _ := parseCached(long); a == nil {
		t.Fatal("long record not parsed")
	} else if b, _ := parseCached(long); a == b {
		t.Error("a record longer than maxCachedRecordText was kept")
	}
	for i := range maxCachedRecords + 10 {
		parseCached(fmt.Sprintf("v=spf1 ip4:10.%d.%d.0/24 -all", i/256, i%256))
	}
	recordCache.RLock()
	n := len(recordCache.m)
	recordCache.RUnlock()
	if n > maxCachedRecords {
		t.Errorf("%d records kept, bound %d", n, maxCachedRecords)
	}
}
