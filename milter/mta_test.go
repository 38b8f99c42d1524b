package milter

import (
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// heldSecret sends an outbound [SECRET] message (held for an administrator,
// R110, with a TLS-Required header whose removal is another reason of the
// verdict) through an MTA announcing version v and host name j, and returns
// the quarantine reason and the header edits.
func heldSecret(t *testing.T, p *policy.Policy, v, j string) (string, []gomilter.ModifyAction) {
	t.Helper()
	addr, _, _ := startServer(t, p)
	m := dial(t, addr)
	m.macros.Set(gomilter.MacroMTAVersion, v)
	m.macros.Set(gomilter.MacroMTAFQDN, j)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	r := m.send(message{auth: "alice", from: "alice@agency.govt.nz", rcpts: []string{"someone@gmail.example"},
		headers: [][2]string{{"From", " alice@agency.govt.nz"}, {"Subject", " Budget [SECRET]"}, {"TLS-Required", " No"}}})
	if r.act.Type != gomilter.ActionAccept {
		t.Fatalf("got %s %v", r.stage, r.act)
	}
	for _, mod := range r.mods {
		if mod.Type == gomilter.ActionQuarantine {
			return mod.Reason, r.mods
		}
	}
	t.Fatalf("[SECRET] to an external recipient not held: %v", r.mods)
	return "", nil
}

// The quarantine reason is the hold's reason alone, naming the release
// command of the MTA in use (issue 16): Sendmail's "sendmail -qQ -qI<ID>
// -Q" when its "v" macro is a bare version, Postfix's "postsuper -H <ID>"
// for Postfix and when the MTA is unknown.
func TestQuarantineReasonNamesTheMTAsReleaseCommand(t *testing.T) {
	cases := []struct{ v, want string }{
		{"8.17.1.9", "classification SECRET is held for an administrator (R110); release with: sendmail -qQ -qI4ABC123 -Q"},
		{"Postfix 3.7.11", "classification SECRET is held for an administrator (R110); release with: postsuper -H 4ABC123"},
		{"", "classification SECRET is held for an administrator (R110); release with: postsuper -H 4ABC123"},
	}
	for _, c := range cases {
		reason, _ := heldSecret(t, testPolicy(t), c.v, "mx.agency.govt.nz")
		if reason != c.want {
			t.Errorf("v=%q: quarantine reason %q, want %q", c.v, reason, c.want)
		}
	}
}

// authserv_id unset: the headers name the MTA's host (macro j), not the
// milter's; set, the policy's name wins; a j that is not a host name is
// ignored.
func TestAuthservIDDefaultsToTheMTAName(t *testing.T) {
	unset, err := policy.Load("", []string{`domains=["agency.govt.nz"]`, "record_times=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !unset.AuthservIDDefault {
		t.Fatal("AuthservIDDefault not set for a policy without authserv_id")
	}
	gateway := func(mods []gomilter.ModifyAction) string {
		for _, mod := range mods {
			if mod.Type == gomilter.ActionAddHeader && mod.HeaderName == policy.TimesHeader {
				_, g, _ := strings.Cut(mod.HeaderValue, "gateway=")
				return g
			}
		}
		return "(no " + policy.TimesHeader + ")"
	}
	if _, mods := heldSecret(t, unset, "8.17.1.9", "mail.sendmail.example"); gateway(mods) != "mail.sendmail.example" {
		t.Errorf("authserv_id unset: gateway=%q, want the MTA's j macro", gateway(mods))
	}
	if _, mods := heldSecret(t, unset, "8.17.1.9", "bad name;x"); gateway(mods) != unset.AuthservID {
		t.Errorf("j not a host name: gateway=%q, want the default %q", gateway(mods), unset.AuthservID)
	}
	set := testPolicy(t, "record_times=true")
	if _, mods := heldSecret(t, set, "8.17.1.9", "mail.sendmail.example"); gateway(mods) != "mx.agency.govt.nz" {
		t.Errorf("authserv_id set: gateway=%q, want the policy's", gateway(mods))
	}
}
