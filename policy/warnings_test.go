package policy

import (
	"strings"
	"testing"
	"time"
)

// R76, R79 and Table 3: one warning per inbound message, in rule order.
func TestInboundWarnings(t *testing.T) {
	pass := &AuthCheck{Result: ResultPass, Scope: "mfrom"}
	cases := []struct {
		name, from, mailFrom, class string
		spf                         *AuthCheck
		extra                       []Header
		sets                        []string
		code, mode                  string
		action                      Action
	}{
		{name: "005 our own domain from outside", from: "ceo@agency.govt.nz", mailFrom: "ceo@agency.govt.nz", code: "005", mode: "wrap", action: Accept},
		{name: "005 wins over 004 (R79: first rule only)", from: "ceo@agency.govt.nz", mailFrom: "x@gmail.example", class: "SECRET", code: "005", mode: "wrap", action: Accept},
		{name: "002 participating agency unverified", from: "minister@mfat.govt.nz", mailFrom: "minister@mfat.govt.nz", code: "002", mode: "wrap", action: Accept},
		{name: "002 not given when SPF passes for the From domain", from: "minister@mfat.govt.nz", mailFrom: "bounce@mail.mfat.govt.nz", spf: pass, action: Accept},
		{name: "002 given when SPF passes for another domain", from: "minister@mfat.govt.nz", mailFrom: "x@gmail.example", spf: pass, code: "002", mode: "wrap", action: Accept},
		{name: "004 classified from a non-participating agency", from: "a@gmail.example", mailFrom: "a@gmail.example", class: "IN-CONFIDENCE", code: "004", mode: "wrap", action: Accept},
		{name: "R76 X-NZ-Secure-email unverified is warned", from: "a@gmail.example", mailFrom: "a@gmail.example", extra: hdrs("X-NZ-Secure-email", "compliant"), code: "002", mode: "wrap", action: Accept},
		{name: "plain internet mail gets nothing", from: "a@gmail.example", mailFrom: "a@gmail.example", action: Accept},
		{name: "prepend mode", from: "ceo@agency.govt.nz", mailFrom: "ceo@agency.govt.nz", sets: []string{"inbound.warning_mode=prepend"}, code: "005", mode: "prepend", action: Accept},
		{name: "R76 delete unverified", from: "ceo@agency.govt.nz", mailFrom: "ceo@agency.govt.nz", sets: []string{"inbound.unverified=delete"}, code: "005", action: Discard},
		{name: "R76 never deletes a message with X-NZ-Secure-email", from: "ceo@agency.govt.nz", mailFrom: "ceo@agency.govt.nz", extra: hdrs("X-NZ-Secure-email", "x"),
			sets: []string{"inbound.unverified=delete"}, code: "005", mode: "wrap", action: Accept},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, append([]string{`outbound.secure_domains=["*.govt.nz"]`}, c.sets...)...)
			hs := append(hdrs("From", c.from, "Subject", "s"), c.extra...)
			tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: c.mailFrom, Rcpts: []string{"bob@agency.govt.nz"}},
				Headers: hs, Classification: c.class, Mail: MailChecks{SPF: c.spf}}
			v := p.AtEndOfMessage(tx)
			if r := v.Report(); r.WarningCode != c.code || r.WarningMode != c.mode {
				t.Errorf("report shows warning %q mode %q", r.WarningCode, r.WarningMode)
			}
			if v.WarningCode != c.code || string(v.WarningMode) != c.mode || v.Action != c.action {
				t.Errorf("got warning %q mode %q action %s, want %q %q %s (reasons %q)", v.WarningCode, v.WarningMode, v.Action, c.code, c.mode, c.action, v.Reasons)
			}
		})
	}
}

// R73-R74, Table 4: receipts for [RSVPDR] from authenticated senders; a
// report naming removed recipients.
func TestReceipts(t *testing.T) {
	p := mustPolicy(t, `outbound.secure_domains=["*.govt.nz"]`)
	out := Transaction{Envelope: Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: []string{"x@mfat.govt.nz"}},
		Headers: hdrs("From", "alice@agency.govt.nz"), RSVPDR: true}
	v := p.AtEndOfMessage(out)
	if len(v.Notices) != 1 || v.Notices[0].Kind != NoticeReceipt || v.Notices[0].To != "alice@agency.govt.nz" || v.Notices[0].Rcpts[0] != "x@mfat.govt.nz" {
		t.Errorf("R73 receipt: %+v", v.Notices)
	}
	// Refused by a rule: NON DELIVERY REPORT with the reason.
	refused := out
	refused.Classification = "SENSITIVE"
	v = p.AtEndOfMessage(refused)
	if v.Action != Reject || len(v.Notices) != 1 || v.Notices[0].Kind != NoticeNDR || !strings.Contains(v.Notices[0].Reason, "[SENSITIVE]") {
		t.Errorf("R74 report: %s %+v", v.Action, v.Notices)
	}
	// Without RSVPDR nothing, unless recipients were removed.
	out.RSVPDR = false
	if v := p.AtEndOfMessage(out); len(v.Notices) != 0 {
		t.Errorf("no RSVPDR: %+v", v.Notices)
	}
	split := out
	split.Classification = "IN-CONFIDENCE"
	split.Envelope.Rcpts = []string{"x@mfat.govt.nz", "y@gmail.example"}
	v = p.AtEndOfMessage(split)
	if len(v.Notices) != 1 || v.Notices[0].Kind != NoticeNDR || len(v.Notices[0].Rcpts) != 1 || v.Notices[0].Rcpts[0] != "y@gmail.example" {
		t.Errorf("split report: %+v", v.Notices)
	}
	// Unauthenticated inbound [RSVPDR]: no receipt (R75 is optional).
	in := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "a@gmail.example", Rcpts: []string{"bob@agency.govt.nz"}},
		Headers: hdrs("From", "a@gmail.example"), RSVPDR: true}
	if v := p.AtEndOfMessage(in); len(v.Notices) != 0 {
		t.Errorf("unauthenticated: %+v", v.Notices)
	}
	// Never to the null sender (R93).
	in.Envelope.From = ""
	in.Mail.SPF = &AuthCheck{Result: ResultPass}
	if v := p.AtEndOfMessage(in); len(v.Notices) != 0 {
		t.Errorf("null sender: %+v", v.Notices)
	}
}

// R96-R99: the ping address is answered before any rule and consumed.
func TestPing(t *testing.T) {
	p := mustPolicy(t)
	tx := Transaction{Conn: Conn{ClientIP: internetIP}, Envelope: Envelope{From: "someone@gmail.example", Rcpts: []string{"PING@agency.govt.nz"}},
		Headers: hdrs("From", "ceo@agency.govt.nz")} // would get 005 if it were processed
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard || len(v.Notices) != 1 || v.Notices[0].Kind != NoticePing || v.WarningCode != "" {
		t.Fatalf("ping: %s %+v warning %q", v.Action, v.Notices, v.WarningCode)
	}
	tx.Envelope.Rcpts = append(tx.Envelope.Rcpts, "bob@agency.govt.nz")
	v = p.AtEndOfMessage(tx)
	if v.Action != Accept || len(v.RemoveRcpts) != 1 || v.Notices[0].Kind != NoticePing {
		t.Errorf("ping among others: %s %q %+v", v.Action, v.RemoveRcpts, v.Notices)
	}
	if p := mustPolicy(t, "notify.ping_address=off"); p.PingAddress() != "" {
		t.Error("ping not turned off")
	}
}

// R110, R56: a held message tells the administrator how to release it.
func TestHeldNotice(t *testing.T) {
	p := mustPolicy(t, `notify.admin="mailadmin@agency.govt.nz"`)
	v := p.AtEndOfMessage(Transaction{Envelope: Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: []string{"x@gmail.example"}, QueueID: "4XYZ"},
		Headers: hdrs("From", "alice@agency.govt.nz"), Classification: "TOP SECRET"})
	if v.Action != Quarantine || len(v.Notices) != 1 || v.Notices[0].Kind != NoticeHeld || v.Notices[0].To != "mailadmin@agency.govt.nz" || v.Notices[0].Code != "001" ||
		!strings.Contains(v.Notices[0].Reason, "postsuper -H 4XYZ") {
		t.Errorf("held: %s %+v", v.Action, v.Notices)
	}
	if r := v.Report(); len(r.Notices) != 1 || r.Notices[0].Kind != NoticeHeld {
		t.Errorf("report notices: %+v", r.Notices)
	}
}

// R100: the time the gateway received the message is recorded in a header.
func TestReceivedTimeRecorded(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "a@gmail.example"}, Headers: hdrs("From", "a@gmail.example"), Received: at}
	r := mustPolicy(t).AtEndOfMessage(tx).Report()
	want := "X-NZ-Secure-Gateway: received=Mon, 23 Nov 2026 10:00:00 +0000; gateway=mx.agency.govt.nz"
	if len(r.HeadersAdded) == 0 || r.HeadersAdded[len(r.HeadersAdded)-1] != want && r.HeadersAdded[0] != want {
		t.Errorf("headers added %q, want %q", r.HeadersAdded, want)
	}
	if r := mustPolicy(t, "record_times=false").AtEndOfMessage(tx).Report(); strings.Contains(strings.Join(r.HeadersAdded, "\n"), "X-NZ-Secure-Gateway") {
		t.Errorf("record_times=false still adds it: %q", r.HeadersAdded)
	}
}
