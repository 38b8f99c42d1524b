package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFirstContactCommand(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fc")
	set := `outbound.first_contact_state="` + state + `"`
	code, out, errs := runCmd(t, "firstcontact", "approve", "Kiri@Partner.EXAMPLE", "b@bücher.example", "--set", set, "--set", `outbound.first_contact="hold"`)
	if code != 0 || !strings.Contains(out, "approved Kiri@partner.example") {
		t.Fatalf("approve: exit %d, out %q, err %q", code, out, errs)
	}
	code, out, _ = runCmd(t, "firstcontact", "list", "--set", set)
	if code != 0 || out != "Kiri@partner.example\nb@xn--bcher-kva.example\n" {
		t.Errorf("list: exit %d, out %q", code, out)
	}
	if code, _, errs := runCmd(t, "firstcontact", "approve", "not-an-address", "--set", set); code != 1 || !strings.Contains(errs, "not an address") {
		t.Errorf("approve of a non-address: exit %d, err %q", code, errs)
	}
	if code, _, _ := runCmd(t, "firstcontact", "approve", "--set", set); code != 2 {
		t.Errorf("approve without an address: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "firstcontact", "forget", "--set", set); code != 2 {
		t.Errorf("unknown action: exit %d, want 2", code)
	}
}

// `check` reads serve's first-contact state (read only), so it shows what
// serve would decide.
func TestCheckFirstContact(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "fc")
	msg := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(msg, []byte("From: alice@agency.govt.nz\r\nTo: kiri@partner.example\r\nSubject: [IN-CONFIDENCE] plan\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--auth", "alice", msg, "--set", `domains=["agency.govt.nz"]`, "--set", `outbound.secure_domains=["partner.example"]`,
		"--set", `outbound.first_contact="hold"`, "--set", `outbound.first_contact_state="` + state + `"`}
	action := func() string {
		t.Helper()
		code, out, errs := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("check: exit %d: %s", code, errs)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		return v["action"].(string)
	}
	if a := action(); a != "quarantine" {
		t.Errorf("new address: action %s, want quarantine", a)
	}
	if code, _, errs := runCmd(t, "firstcontact", "approve", "kiri@partner.example", "--set", `outbound.first_contact_state="`+state+`"`); code != 0 {
		t.Fatal(errs)
	}
	if a := action(); a != "accept" {
		t.Errorf("approved address: action %s, want accept", a)
	}
	before, _ := os.ReadFile(state)
	action()
	if after, _ := os.ReadFile(state); string(after) != string(before) {
		t.Error("check wrote the state file")
	}
}
