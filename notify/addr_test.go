package notify

import "testing"

// Issue 12 point 1: notices read addresses with the one parser
// (message.Mailboxes), so the loop rules (R93, R95) and the list rule
// (R199) see the author a client shows.
func TestSplitAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"alice@Example.ORG.":                          {"alice", "example.org"},
		"<alice@example.org>":                         {"alice", "example.org"},
		"Smith, Alice <alice@example.org>":            {"alice", "example.org"},
		"alice@example.org (Alice)\n (Smith)":         {"alice", "example.org"},
		"=?x-unknown?q?Al=EFce?= <alice@example.org>": {"alice", "example.org"},
		"<@relay.example:alice@example.org>":          {"alice", "example.org"},
		"Mail <MAILER-DAEMON@ｍｘ.example.org>":         {"MAILER-DAEMON", "mx.example.org"},
		`"postmaster"@example.org`:                    {"postmaster", "example.org"},
		"postmaster":                                  {"postmaster", ""},
		"postmaster@[192.0.2.1]":                      {"postmaster", "[192.0.2.1]"},
		"<>":                                          {"", ""},
		"":                                            {"", ""},
	} {
		if l, d := splitAddress(in); l != want[0] || d != want[1] {
			t.Errorf("splitAddress(%q) = %q %q, want %q", in, l, d, want)
		}
	}
}

// R93 through the one parser: a system sender behind an unquoted comma or
// an address literal is still a system sender.
func TestShouldNotifyMalformedFrom(t *testing.T) {
	for _, from := range []string{"Delivery, Mail <MAILER-DAEMON@example.org>", "postmaster@[192.0.2.1]", "Mail System <postmaster@example.org",
		"alice@example.org, Postmaster <postmaster@example.org>"} {
		if ok, reason := ShouldNotify(from, "x@example.org", NotifyContext{To: "postmaster@agency.govt.nz", Inbound: true}); ok || reason != ReasonFromSystem {
			t.Errorf("%q: ShouldNotify = %v %q", from, ok, reason)
		}
	}
}

// R95 for every author of a From: with several mailboxes.
func TestShouldNotifySeveralAuthors(t *testing.T) {
	ctx := NotifyContext{To: "postmaster@other.govt.nz", Inbound: true}
	if ok, reason := ShouldNotify("alice@example.org, bob@mail.other.govt.nz", "bounce@esp.example", ctx); ok || reason != ReasonSenderPM {
		t.Errorf("second author's postmaster: %v %q", ok, reason)
	}
	ctx.Headers = hs("List-Id", "<staff.lists.example.org>")
	ctx.To = "staff@lists.example.org"
	if ok, reason := ShouldNotify("alice@example.org, Staff <staff@lists.example.org>", "bounce@esp.example", ctx); ok || reason != ReasonListSender {
		t.Errorf("list sender as second author: %v %q", ok, reason)
	}
	if ok, _ := ShouldNotify("alice@example.org, bob@example.org", "bounce@esp.example", NotifyContext{To: "carol@example.net", Inbound: true}); !ok {
		t.Error("ordinary authors suppressed")
	}
}
