package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every policy in testdata/warn is valid and gives exactly the warnings
// in its .golden file, each with its line (issue 12 point 10: lint warns
// on internal_networks covering the internet). The good policies and the
// default give none.
func TestLintWarnings(t *testing.T) {
	files, _ := filepath.Glob("testdata/warn/*.toml")
	if len(files) == 0 {
		t.Fatal("no policies in testdata/warn")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(filepath.Base(f), data, nil)
			if err != nil {
				t.Fatalf("want a valid policy: %v", err)
			}
			if len(p.Warnings) == 0 {
				t.Fatal("no warnings")
			}
			got := p.Warnings.Error() + "\n"
			golden := strings.TrimSuffix(f, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("warnings differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
	good, _ := filepath.Glob("testdata/good/*.toml")
	for _, f := range append(good, "") {
		p, err := Load(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Only the reminder that no domains are set (these set none).
		for _, w := range p.Warnings {
			if w.Key != "domains" || len(p.Domains) > 0 {
				t.Errorf("%q: unexpected warning %v", f, w)
			}
		}
		if len(p.Domains) == 0 && len(p.Warnings) != 1 {
			t.Errorf("%q: no domains but warnings %v", f, p.Warnings)
		}
	}
	// The threshold: /8 and longer do not warn, shorter does.
	for cidr, warn := range map[string]bool{"11.0.0.0/8": false, "10.0.0.0/7": true, "2001:db8::/32": false, "2001::/16": false, "2000::/15": true} {
		p := mustPolicy(t, `internal_networks=["`+cidr+`"]`)
		if (len(p.Warnings) > 0) != warn {
			t.Errorf("%s: warnings %v, want warning %v", cidr, p.Warnings, warn)
		}
	}
}
