package notify

import (
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func hs(kv ...string) []policy.Header {
	var out []policy.Header
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, policy.Header{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestIsListMail: R199's list of listserve headers, item by item.
func TestIsListMail(t *testing.T) {
	base := []string{"From", "alice@example.org", "Subject", "hi"}
	cases := []struct {
		name, value string
		want, r199  bool
	}{
		{"Errors-To", "owner@lists.example.org", true, true},
		{"List-Archive", "<https://lists.example.org/archive>", true, true},
		{"List-Help", "<mailto:help@lists.example.org>", true, true},
		{"List-Id", "Agency staff <staff.lists.example.org>", true, true},
		{"list-id", "x", true, true},
		{"List-Name", "staff", true, true},
		{"List-Post", "<mailto:staff@lists.example.org>", true, true},
		{"List-Subscribe", "<mailto:sub@lists.example.org>", true, true},
		{"List-Unsubscribe", "<mailto:unsub@lists.example.org>", true, true},
		{"Mailing-List", "contact staff-help@lists.example.org; run by ezmlm", true, true},
		{"Precedence", "bulk", true, true},
		{"Precedence", " BULK (mass mailing)", true, true},
		{"X-BeenThere", "staff@lists.example.org", true, true},
		{"X-Mailman-Version", "2.1.39", true, true},
		{"X-Mailman-Approved-At", "Mon, 01 Jan 2024", true, true},
		{"List-Owner", "<mailto:owner@lists.example.org>", true, false},
		{"Precedence", "list", true, false},
		{"Precedence", "junk", true, false},
		{"Precedence", "first-class", false, false},
		{"X-Mailer", "Mailman-lookalike", false, false},
		{"Listing", "x", false, false},
	}
	for _, c := range cases {
		h := hs(append(append([]string{}, base...), c.name, c.value)...)
		if got := IsListMail(h); got != c.want {
			t.Errorf("%s: %q: IsListMail = %v, want %v", c.name, c.value, got, c.want)
		}
		if _, r199, ok := ListMarker(h); ok && r199 != c.r199 {
			t.Errorf("%s: %q: from R199 = %v, want %v", c.name, c.value, r199, c.r199)
		}
	}
	if IsListMail(hs(base...)) || IsListMail(nil) {
		t.Error("a plain message is list mail")
	}
}

func TestWorkspace(t *testing.T) {
	w, err := NewWorkspace([]string{"*@lists.govt.nz", "@Forum.Example.org.", "workspace.govt.nz"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 3 {
		t.Errorf("Len %d", w.Len())
	}
	for addr, want := range map[string]bool{
		"staff@lists.govt.nz":                  true,
		"<staff@LISTS.govt.nz>":                true,
		"Staff List <staff@forum.example.org>": true,
		"x@workspace.govt.nz.":                 true,
		"staff@sub.lists.govt.nz":              false,
		"staff@govt.nz":                        false,
		"lists.govt.nz":                        false,
		"":                                     false,
		"\"lists.govt.nz\" <evil@attacker.example>": false,
	} {
		if got := w.Contains(addr); got != want {
			t.Errorf("Contains(%q) = %v", addr, got)
		}
	}
	var nilW *Workspace
	if nilW.Contains("a@lists.govt.nz") || nilW.Len() != 0 {
		t.Error("nil workspace not empty")
	}
	for _, bad := range []string{"alice@lists.govt.nz", "", "*@", "a b.govt.nz"} {
		if _, err := NewWorkspace([]string{bad}); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}
