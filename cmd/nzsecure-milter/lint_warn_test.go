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
	// The default policy warns only that no domains are set (a new
	// installation must set them), never about its internal networks.
	if _, out, _ := runCmd(t, "lint", "../../contrib/nzsecure-milter.toml"); strings.Count(out, "warning") != 1 || !strings.Contains(out, "domains: warning: no domains configured") {
		t.Errorf("the default policy's warnings:\n%s", out)
	}
}
