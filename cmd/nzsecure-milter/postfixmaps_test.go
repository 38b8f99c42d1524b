package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// fakePostconf answers `postconf -x -h` with the values given, in
// postconfParams order.
func fakePostconf(t *testing.T, vals map[string]string, err error) {
	t.Helper()
	prev := postconfRun
	t.Cleanup(func() { postconfRun = prev })
	postconfRun = func(args ...string) (string, error) {
		if err != nil {
			return "", err
		}
		if strings.Join(args, " ") != "-x -h "+strings.Join(postconfParams, " ") {
			t.Errorf("postconf %q", args)
		}
		var b strings.Builder
		for _, k := range postconfParams {
			b.WriteString(vals[k] + "\n")
		}
		return b.String(), nil
	}
}

// Address mappings on an S/MIME gateway: each configured one is a
// warning, and a virtual alias to a peer agency is named with its line;
// no_address_mappings, S/MIME off or no Postfix give none.
func TestPostfixMappingWarnings(t *testing.T) {
	dir := t.TempDir()
	aliases := filepath.Join(dir, "virtual")
	if err := os.WriteFile(aliases, []byte("# team aliases\nteam@agency-a.govt.nz  alice@agency-a.govt.nz, carol@agency-b.govt.nz\nsales@agency-a.govt.nz friend@gmail.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load("", []string{`domains=["agency-a.govt.nz"]`, `smime.mode="on"`, `outbound.seemail_domains=["agency-b.govt.nz"]`,
		`smime.peers="` + filepath.Join(dir, "peers") + `"`})
	if err != nil {
		t.Fatal(err)
	}
	fakePostconf(t, map[string]string{"virtual_alias_maps": "hash:" + aliases, "always_bcc": "archive@agency-a.govt.nz"}, nil)
	w := strings.Join(postfixMappingWarnings(p), "\n")
	for _, want := range []string{
		"always_bcc = archive@agency-a.govt.nz: Postfix applies it after the milter",
		"virtual_alias_maps = hash:" + aliases,
		aliases + " (line 2): team@agency-a.govt.nz -> carol@agency-b.govt.nz: the alias leads to a domain that gets S/MIME (on the SEEMail list",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("no %q in\n%s", want, w)
		}
	}
	if strings.Contains(w, "gmail.example") || strings.Contains(w, "-> alice@") {
		t.Errorf("an alias outside S/MIME scope is named:\n%s", w)
	}
	fakePostconf(t, map[string]string{"receive_override_options": "no_address_mappings", "virtual_alias_maps": "hash:" + aliases}, nil)
	if w := postfixMappingWarnings(p); len(w) != 0 {
		t.Errorf("no_address_mappings: %q", w)
	}
	fakePostconf(t, nil, errors.New("postconf: not found"))
	if w := postfixMappingWarnings(p); len(w) != 0 {
		t.Errorf("no postfix: %q", w)
	}
	fakePostconf(t, map[string]string{"always_bcc": "x@y"}, nil)
	off, _ := policy.Load("", []string{`domains=["agency-a.govt.nz"]`, `smime.mode="off"`})
	if w := postfixMappingWarnings(off); len(w) != 0 {
		t.Errorf("S/MIME off: %q", w)
	}
}
