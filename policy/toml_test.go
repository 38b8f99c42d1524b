package policy

import "testing"

// keyLines places the keys of inline tables on their line, also nested
// ones and ones after values holding commas, braces and brackets; plain
// keys and multi-line arrays keep working (issue 13 point 5).
func TestKeyLinesInlineTables(t *testing.T) {
	data := []byte(`domains = ["a.example"]
inbound = { spf = "tag", warning_link = "x, } { y = 1", dmarc = 'a,}' }
[outbound]
by_class = { "TOP SECRET" = "hold", nested = { x = 1, y = [1, { z = 2 }] }, after = "z" }
secure_domains = [
  "b.example",
]
limits = {}
[notify]
admin = "postmaster@a.example"
`)
	want := map[string]int{
		"domains":                      1,
		"inbound":                      2,
		"inbound.spf":                  2,
		"inbound.warning_link":         2,
		"inbound.dmarc":                2,
		"outbound.by_class":            4,
		"outbound.by_class.TOP SECRET": 4,
		"outbound.by_class.nested":     4,
		"outbound.by_class.nested.x":   4,
		"outbound.by_class.nested.y":   4,
		"outbound.by_class.after":      4,
		"outbound.secure_domains":      5,
		"outbound.limits":              8,
		"notify.admin":                 10,
	}
	got := keyLines(data)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: line %d, want %d", k, got[k], n)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q (line %d)", k, got[k])
		}
	}
	// Every key the decoder finds has a line.
	flat, err := flattenTOML(data)
	if err != nil {
		t.Fatal(err)
	}
	for k := range flat {
		if got[k] == 0 {
			t.Errorf("decoded key %q has no line", k)
		}
	}
}

// A --set override with an inline table still works, and a bad value in
// it is reported as the override's.
func TestOverrideInlineTable(t *testing.T) {
	p, err := Parse("t", nil, []string{`inbound={spf="off", dmarc="tag"}`})
	if err != nil {
		t.Fatal(err)
	}
	if p.Inbound.SPF != ModeOff || p.Inbound.DMARC != ModeTag {
		t.Errorf("spf %q dmarc %q", p.Inbound.SPF, p.Inbound.DMARC)
	}
	_, err = Parse("t", nil, []string{"log.level=debug", `inbound={spf="strict"}`})
	want := `--set:2: inbound.spf: must be one of ["off" "tag" "enforce"], got "strict"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
