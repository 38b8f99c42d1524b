package dnsname

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, raw := range []string{"example.com", "sp ace%.ex(am)ple;@$.com", "a\\b\"c", "\x00\x7f\xff\xef"} {
		if got := Unescape(Escape(raw)); got != raw {
			t.Errorf("name %q -> %q -> %q", raw, Escape(raw), got)
		}
		if got := Unescape(EscapeTXT(raw)); got != raw {
			t.Errorf("txt %q -> %q -> %q", raw, EscapeTXT(raw), got)
		}
	}
	if got := Escape("a b.c"); got != `a\ b.c` {
		t.Errorf("Escape: %q", got)
	}
	if got := EscapeTXT("\"\x01"); got != `\"\001` {
		t.Errorf("EscapeTXT: %q", got)
	}
	// \256 is no byte, \0x is no \DDD, a trailing backslash stays.
	if got := Unescape(`\256\0x\`); got != `2560x\` {
		t.Errorf("Unescape of odd escapes: %q", got)
	}
	if got := Key("ExAmPle.COM."); got != "example.com" {
		t.Errorf("Key: %q", got)
	}
}
