package main

import (
	"strings"
	"testing"
)

// lint prints the warnings of a valid policy, with their lines, and still
// calls it valid (exit 0).
func TestLintWarnsInternetInternal(t *testing.T) {
	code, out, _ := runCmd(t, "lint", "../../policy/testdata/warn/internet-internal.toml")
	if code != 0 || !strings.Contains(out, "internet-internal.toml:4: internal_networks: warning: 0.0.0.0/0 covers the internet") ||
		!strings.Contains(out, "warning: ::/0 covers the internet") || !strings.Contains(out, ": valid: ") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if _, out, _ := runCmd(t, "lint", "../../contrib/nzsecure-milter.toml"); strings.Contains(out, "warning") {
		t.Errorf("the default policy warns:\n%s", out)
	}
}
