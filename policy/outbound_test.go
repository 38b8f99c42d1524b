package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Recipient kinds for the routing table.
var rcptOf = map[string]string{
	"internal":   "colleague@agency.govt.nz",
	"secure":     "officer@mfat.govt.nz",       // secure_domains *.govt.nz
	"seemail":    "analyst@seemail.example",    // seemail_domains
	"securemail": "clerk@securemail.example",   // securemail_domains
	"exception":  "contractor@partner.example", // exceptions
	"other":      "someone@gmail.example",
}

var routingLists = []string{
	`outbound.secure_domains=["*.govt.nz"]`,
	`outbound.seemail_domains=["seemail.example"]`,
	`outbound.securemail_domains=["securemail.example"]`,
	`outbound.exceptions=["partner.example"]`,
}

// M-OUT, R110-R112, R115, G-DLP: every classification x recipient kind x
// profile. Each cell is the action for a message to that one recipient:
// A accept, R reject, Q quarantine (held).
func TestOutboundRoutingMatrix(t *testing.T) {
	kinds := []string{"internal", "secure", "seemail", "securemail", "exception", "other"}
	// Columns in the order of kinds.
	matrix := map[string]map[string]string{
		ProfileSGE: {
			"UNCLASSIFIED":  "AAAAAA", // M-OUT: best effort
			"IN-CONFIDENCE": "AAAAAR", // R115 / G-TLS: secure lists only
			"SENSITIVE":     "ARRRAR", // G-DLP: blocked unless an exception
			"RESTRICTED":    "ARRRAR", // G-DLP
			"CONFIDENTIAL":  "AQQQQQ", // R110: held
			"SECRET":        "AQQQQQ", // R110
			"TOP SECRET":    "AQQQQQ", // R110, M-OUT
		},
		ProfileSecureMail: {
			"UNCLASSIFIED":  "AAAAAA",
			"IN-CONFIDENCE": "AAAAAR", // R115
			"SENSITIVE":     "ARARAR", // R112: SEEMail or exception
			"RESTRICTED":    "ARARAR", // R112
			"CONFIDENTIAL":  "AQQQQQ",
			"SECRET":        "AQQQQQ",
			"TOP SECRET":    "AQQQQQ",
		},
		ProfileSEEMail: {
			"UNCLASSIFIED":  "AAAAAA",
			"IN-CONFIDENCE": "AAAAAR", // R115
			"SENSITIVE":     "ARARAR", // R112
			"RESTRICTED":    "ARARAR", // R112
			"CONFIDENTIAL":  "AQQQQQ", // R110
			"SECRET":        "AQQQQQ",
			"TOP SECRET":    "AQQQQQ",
		},
	}
	actionOf := map[byte]Action{'A': Accept, 'R': Reject, 'Q': Quarantine}
	for profile, rows := range matrix {
		// smime.mode off: this matrix is the routing (M-OUT); under
		// seemail, S/MIME (on by default) would hold the SEEMail and
		// exception cells for want of our certificate (211), which
		// smimeout_test.go covers.
		p := mustPolicy(t, append([]string{"profile=" + profile, `smime.mode="off"`}, routingLists...)...)
		for class, row := range rows {
			for i, kind := range kinds {
				name := fmt.Sprintf("%s/%s/%s", profile, class, kind)
				t.Run(name, func(t *testing.T) {
					rcpt := rcptOf[kind]
					v := p.AtEndOfMessage(Transaction{
						Envelope:       Envelope{AuthUser: "alice", Rcpts: []string{rcpt}, QueueID: "Q1"},
						Headers:        hdrs("From", "alice@agency.govt.nz"),
						Classification: class,
					})
					want := actionOf[row[i]]
					if v.Action != want {
						t.Fatalf("action %s, want %s (reasons %q)", v.Action, want, v.Reasons)
					}
					if len(v.Recipients) != 1 || v.Recipients[0].Address != rcpt {
						t.Fatalf("recipients %+v", v.Recipients)
					}
					switch want {
					case Reject:
						if v.Reply.Code != 550 || v.Reply.Status != "5.7.1" || !strings.Contains(v.Reply.Text, "["+class+"]") || !strings.Contains(v.Reply.Text, rcpt) {
							t.Errorf("reply %v does not name the class and recipient", v.Reply)
						}
						if len(v.Breaches) != 1 { // R113
							t.Errorf("breaches %q", v.Breaches)
						}
					case Quarantine:
						if !strings.Contains(strings.Join(v.Reasons, " "), "postsuper -H Q1") || len(v.Breaches) != 1 {
							t.Errorf("held without release instructions or audit: %q %q", v.Reasons, v.Breaches)
						}
					case Accept:
						if len(v.Breaches) != 0 {
							t.Errorf("breaches on an accepted message: %q", v.Breaches)
						}
					}
				})
			}
		}
	}
}

// Mixed recipients: split (default) removes the refused ones; refuse refuses all.
func TestOutboundMixedRecipients(t *testing.T) {
	tx := Transaction{
		Envelope:       Envelope{AuthUser: "alice", Rcpts: []string{rcptOf["secure"], rcptOf["other"], rcptOf["internal"]}},
		Headers:        hdrs("From", "alice@agency.govt.nz"),
		Classification: "IN-CONFIDENCE",
	}
	p := mustPolicy(t, routingLists...)
	v := p.AtEndOfMessage(tx)
	if v.Action != Accept || len(v.RemoveRcpts) != 1 || v.RemoveRcpts[0] != rcptOf["other"] || len(v.Breaches) != 1 {
		t.Fatalf("split: %s removed %q breaches %q", v.Action, v.RemoveRcpts, v.Breaches)
	}
	if r := v.Report(); len(r.RecipientsRemoved) != 1 || len(r.Recipients) != 3 {
		t.Errorf("report: %+v", r)
	}
	p = mustPolicy(t, append(routingLists, `outbound.partial="refuse"`)...)
	v = p.AtEndOfMessage(tx)
	if v.Action != Reject || !strings.Contains(v.Reply.Text, rcptOf["other"]) || len(v.RemoveRcpts) != 0 {
		t.Fatalf("refuse: %s %v", v.Action, v.Reply)
	}
	// Held classes: internal recipients alone are not held.
	tx.Classification = "SECRET"
	tx.Envelope.Rcpts = []string{rcptOf["internal"]}
	if v := mustPolicy(t).AtEndOfMessage(tx); v.Action != Accept {
		t.Errorf("SECRET to internal only: %s", v.Action)
	}
}

func TestOutboundClassifiedHeaders(t *testing.T) {
	tx := Transaction{
		Envelope:       Envelope{AuthUser: "alice", Rcpts: []string{rcptOf["secure"]}},
		Headers:        hdrs("From", "alice@agency.govt.nz", "TLS-Required", "No"),
		Classification: "IN-CONFIDENCE",
	}
	p := mustPolicy(t, append(routingLists, "outbound.route_header=true", `outbound.seemail_version="2.0"`)...)
	r := p.AtEndOfMessage(tx).Report()
	want := []string{"TLS-Required: No"}
	if fmt.Sprint(r.HeadersRemoved) != fmt.Sprint(want) {
		t.Errorf("RFC 8689: removed %q, want %q", r.HeadersRemoved, want)
	}
	added := strings.Join(r.HeadersAdded, "\n")
	for _, h := range []string{"X-NZ-Secure-Route: tls", `X-NZ-Secure-email: compliant; classification="IN-CONFIDENCE"`, "X-SEEMail-Version: 2.0"} {
		if !strings.Contains(added, h) {
			t.Errorf("R60/R61/route header %q missing from %q", h, added)
		}
	}
	// Unclassified mail keeps TLS-Required: No and gets no route header.
	tx.Classification = ""
	r = p.AtEndOfMessage(tx).Report()
	if len(r.HeadersRemoved) != 0 || strings.Contains(strings.Join(r.HeadersAdded, " "), "Route") {
		t.Errorf("unclassified: %+v", r)
	}
}

// A classification the policy has no rule for is held: when in doubt, hold.
func TestOutboundUnknownClassHeld(t *testing.T) {
	v := mustPolicy(t).AtEndOfMessage(Transaction{
		Envelope: Envelope{AuthUser: "alice", Rcpts: []string{rcptOf["other"]}}, Headers: hdrs("From", "alice@agency.govt.nz"), Classification: "PERSONAL",
	})
	if v.Action != Quarantine {
		t.Errorf("unknown class: %s", v.Action)
	}
}

func TestDomainSet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secure.txt")
	os.WriteFile(file, []byte("# SEEMail list\nmfat.govt.nz\n*.health.govt.nz  # wildcard\n\n"), 0o644)
	p := mustPolicy(t, fmt.Sprintf(`outbound.seemail_domains=["file:%s", "dia.govt.nz"]`, file))
	set := p.Outbound.SEEMailDomains
	for d, want := range map[string]bool{
		"mfat.govt.nz": true, "MFAT.govt.nz.": true, "dia.govt.nz": true, "a.health.govt.nz": true,
		"health.govt.nz": false, "govt.nz": false, "xmfat.govt.nz": false, "": false,
	} {
		if got := set.Match(d); got != want {
			t.Errorf("Match(%q) = %v, want %v", d, got, want)
		}
	}
	os.WriteFile(file, []byte("ok.govt.nz\nbad_domain\n"), 0o644)
	_, err := Load("", []string{fmt.Sprintf(`outbound.exceptions=["file:%s", "file:relative.txt", "file:%s/missing"]`, file, dir)})
	for _, want := range []string{file + ":2:", "must be absolute", "no such file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	_, err = Load("", []string{`outbound.by_class.PERSONAL="hold"`, `outbound.by_class.SECRET="send"`})
	if err == nil || !strings.Contains(err.Error(), `"PERSONAL" is not a classification`) || !strings.Contains(err.Error(), `got "send"`) {
		t.Errorf("by_class errors: %v", err)
	}
}

// Issue 11, fail safe: outbound mail whose content could not be read in
// full is decided by classification.unreadable (hold by default in every
// profile), is an audit line (R113), and is never tagged compliant.
func TestOutboundUnreadable(t *testing.T) {
	unread := []string{"body/part 2 (application/pkcs7-mime): S/MIME enveloped (encrypted) content cannot be read"}
	cases := []struct {
		name    string
		set     []string
		class   string
		rcpts   []string
		want    Action
		breach  bool
		notice  bool
		noTag   bool
		unreadN int // len(t.Unreadable); 0 means unread
	}{
		{name: "sge default holds", set: []string{"profile=sge"}, rcpts: []string{rcptOf["other"]}, want: Quarantine, breach: true, notice: true, noTag: true},
		{name: "securemail default holds", set: []string{"profile=securemail"}, rcpts: []string{rcptOf["secure"]}, want: Quarantine, breach: true, notice: true, noTag: true},
		// smime.mode is on under seemail and the SEEMail domain is in
		// S/MIME scope: held by the gateway, not the MTA (R62, adminhold.go).
		{name: "seemail default holds", set: []string{"profile=seemail"}, rcpts: []string{rcptOf["seemail"]}, want: Discard, breach: true, notice: true, noTag: true},
		{name: "refuse", set: []string{`classification.unreadable="refuse"`}, rcpts: []string{rcptOf["other"]}, want: Reject, breach: true, noTag: true},
		{name: "accept routes on what was read, untagged", set: []string{`classification.unreadable="accept"`}, rcpts: []string{rcptOf["other"]}, want: Accept, breach: true, noTag: true},
		{name: "accept still applies a marking found", set: []string{`classification.unreadable="accept"`}, class: "SECRET", rcpts: []string{rcptOf["other"]}, want: Quarantine, breach: true, notice: true, noTag: true},
		{name: "marking found elsewhere still decides", class: "SENSITIVE", rcpts: []string{rcptOf["other"]}, want: Reject, breach: true, noTag: true},
		{name: "internal recipients only: delivered, untagged", rcpts: []string{rcptOf["internal"]}, want: Accept, noTag: true},
		{name: "mixed internal and external: held", rcpts: []string{rcptOf["internal"], rcptOf["other"]}, want: Quarantine, breach: true, notice: true, noTag: true},
		{name: "readable is tagged", rcpts: []string{rcptOf["other"]}, want: Accept, unreadN: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, append(c.set, routingLists...)...)
			tx := Transaction{
				Envelope:       Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: c.rcpts, QueueID: "Q7"},
				Headers:        hdrs("From", "alice@agency.govt.nz"),
				Classification: c.class,
				Unreadable:     unread,
			}
			if c.unreadN < 0 {
				tx.Unreadable = nil
			}
			v := p.AtEndOfMessage(tx)
			if v.Action != c.want {
				t.Fatalf("action %s, want %s (reasons %q)", v.Action, c.want, v.Reasons)
			}
			if got := len(v.Breaches) > 0; got != c.breach {
				t.Errorf("breach recorded %v, want %v: %q", got, c.breach, v.Breaches)
			}
			if c.breach && tx.Unreadable != nil && c.class == "" && !strings.Contains(strings.Join(v.Breaches, "\n"), "unreadable content") {
				t.Errorf("breach does not name the unreadable content: %q", v.Breaches)
			}
			held := false
			for _, n := range v.Notices {
				if n.Kind == NoticeHeld {
					held = true
					if c.class == "" && !strings.Contains(n.Reason, "enveloped") {
						t.Errorf("held notice does not give the unreadable reason: %q", n.Reason)
					}
				}
			}
			if held != c.notice {
				t.Errorf("held notice %v, want %v", held, c.notice)
			}
			tagged := false
			for _, e := range v.Edits {
				if e.Op == OpAdd && e.Name == SecureEmailHeader {
					tagged = true
				}
			}
			if v.Action == Accept && tagged == c.noTag {
				t.Errorf("tagged %v, want %v (edits %+v)", tagged, !c.noTag, v.Edits)
			}
			if tx.Unreadable != nil && len(v.Report().Unreadable) != 1 {
				t.Errorf("report unreadable %q", v.Report().Unreadable)
			}
		})
	}
}

// Issue 11: inbound, unreadable content is recorded, not acted on.
func TestInboundUnreadableRecorded(t *testing.T) {
	p := mustPolicy(t, `inbound.dmarc="off"`)
	v := p.AtEndOfMessage(Transaction{
		Conn:       Conn{TLS: TLSInfo{Version: "TLSv1.3"}},
		Envelope:   Envelope{From: "a@example.org", Rcpts: []string{"colleague@agency.govt.nz"}},
		Headers:    hdrs("From", "a@example.org"),
		Unreadable: []string{"body: nested deeper than 32 levels"},
	})
	if v.Action != Accept || len(v.Breaches) > 0 {
		t.Fatalf("inbound unreadable: action %s, breaches %q", v.Action, v.Breaches)
	}
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "recorded only inbound") || len(v.Unreadable) != 1 {
		t.Fatalf("inbound unreadable not recorded: reasons %q unreadable %q", v.Reasons, v.Unreadable)
	}
}
