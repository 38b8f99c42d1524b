package policy

import "testing"

func TestMTAFromVersion(t *testing.T) {
	for v, want := range map[string]string{
		"Postfix 3.7.11": MTAPostfix, "postfix": MTAPostfix, "8.17.1.9": MTASendmail, "8.14": MTASendmail,
		"Sendmail 8.18.1": MTASendmail, "": "", "8.17.1.9 beta": "", "Exim 4.96": "", "  Postfix 3.8.0 ": MTAPostfix,
	} {
		if got := MTAFromVersion(v); got != want {
			t.Errorf("MTAFromVersion(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestReleaseCommand(t *testing.T) {
	cases := []struct{ mta, id, want string }{
		{MTASendmail, "4ABC", "sendmail -qQ -qI4ABC -Q"},
		{MTAPostfix, "4ABC", "postsuper -H 4ABC"},
		{"", "4ABC", "postsuper -H 4ABC"},
		{MTASendmail, "", "sendmail -qQ -qI<queue id> -Q"},
	}
	for _, c := range cases {
		if got := ReleaseCommand(c.mta, c.id); got != c.want {
			t.Errorf("ReleaseCommand(%q, %q) = %q, want %q", c.mta, c.id, got, c.want)
		}
	}
}

func FuzzMTAFromVersion(f *testing.F) {
	f.Add("Postfix 3.7.11")
	f.Add("8.17.1.9")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		switch got := MTAFromVersion(v); got {
		case "", MTAPostfix, MTASendmail:
		default:
			t.Fatalf("MTAFromVersion(%q) = %q", v, got)
		}
	})
}
