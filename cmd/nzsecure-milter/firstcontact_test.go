package main

import (
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
