package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// classify prints why content could not be read (issue 11 point 1): an
// S/MIME encrypted message lists an "unreadable" reason; an opaque-signed
// one is read (its signed content decides) and lists none.
func TestClassifyUnreadable(t *testing.T) {
	type result struct {
		Classification string   `json:"classification"`
		Unreadable     []string `json:"unreadable"`
	}
	for _, c := range []struct {
		file, want, reason string
	}{
		{"../../testdata/classify/failsafe-smime-enveloped.eml", "IN-CONFIDENCE", "enveloped-data"},
		{"../../testdata/classify/failsafe-smime-signed.eml", "SECRET", ""},
	} {
		code, out, errs := runCmd(t, "classify", c.file)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.file, code, errs)
		}
		var res result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := strings.Join(res.Unreadable, "; ")
		if res.Classification != c.want || (c.reason == "") != (got == "") || !strings.Contains(got, c.reason) {
			t.Errorf("%s: %s, unreadable %q; want %s and %q", c.file, res.Classification, got, c.want, c.reason)
		}
		if has := strings.Contains(out, `"unreadable"`); has != (c.reason != "") {
			t.Errorf("%s: \"unreadable\" in the JSON %v:\n%s", c.file, has, out)
		}
	}
}
