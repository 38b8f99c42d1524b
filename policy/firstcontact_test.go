package policy

import (
	"slices"
	"strings"
	"testing"
)

// knownSet is a plain-value KnownRecipients (the pipeline's is a store).
type knownSet map[string]bool

func (k knownSet) Known(a string) bool { return k[a] }

// Issue 17 point 1: outbound.first_contact.
func TestFirstContact(t *testing.T) {
	lists := `outbound.secure_domains=["*.govt.nz", "partner.example"]`
	cases := []struct {
		name   string
		mode   string
		class  string
		rcpts  []string
		known  knownSet
		action Action
		learn  []string
		text   string // in the hold reason or a reason
		audit  int
	}{
		{"off: nothing learned", "off", "IN-CONFIDENCE", []string{"new@partner.example"}, nil, Accept, nil, "", 0},
		{"log: sent and learned", "log", "IN-CONFIDENCE", []string{"New@Partner.EXAMPLE"}, nil, Accept,
			[]string{"New@partner.example"}, "first classified mail (IN-CONFIDENCE) to New@partner.example: sent", 1},
		{"hold: held", "hold", "IN-CONFIDENCE", []string{"new@partner.example"}, nil, Quarantine, nil,
			"held for confirmation (outbound.first_contact = hold); confirm with: nzsecure-milter firstcontact approve new@partner.example; then release with: postsuper -H Q1", 1},
		{"hold: known address sent", "hold", "IN-CONFIDENCE", []string{"old@partner.example"}, knownSet{"old@partner.example": true}, Accept,
			[]string{"old@partner.example"}, "", 0},
		{"hold: known in another case of domain", "hold", "IN-CONFIDENCE", []string{"old@PARTNER.example"}, knownSet{"old@partner.example": true}, Accept,
			[]string{"old@partner.example"}, "", 0},
		{"hold: one new of two holds", "hold", "IN-CONFIDENCE", []string{"old@partner.example", "new@x.govt.nz"}, knownSet{"old@partner.example": true}, Quarantine, nil,
			"approve new@x.govt.nz;", 1},
		{"hold: unclassified never held", "hold", Unclassified, []string{"new@partner.example"}, nil, Accept, nil, "", 0},
		{"log: unclassified not learned", "log", Unclassified, []string{"new@partner.example"}, nil, Accept, nil, "", 0},
		{"hold: internal recipients not checked", "hold", "IN-CONFIDENCE", []string{"colleague@agency.govt.nz"}, nil, Accept, nil, "", 0},
		{"hold: IDNA form known", "hold", "IN-CONFIDENCE", []string{"a@bücher.govt.nz"}, knownSet{"a@xn--bcher-kva.govt.nz": true}, Accept,
			[]string{"a@xn--bcher-kva.govt.nz"}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, lists, `outbound.first_contact="`+c.mode+`"`)
			var known KnownRecipients
			if c.known != nil {
				known = c.known
			}
			v := p.AtEndOfMessage(Transaction{
				Envelope:       Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: c.rcpts, QueueID: "Q1"},
				Headers:        hdrs("From", "alice@agency.govt.nz"),
				Classification: c.class,
				Known:          known,
			})
			if v.Action != c.action {
				t.Fatalf("action %s, want %s (reasons %q)", v.Action, c.action, v.Reasons)
			}
			if !slices.Equal(v.Learn, c.learn) {
				t.Errorf("Learn %q, want %q", v.Learn, c.learn)
			}
			if c.text != "" && !strings.Contains(v.HoldReason+strings.Join(v.Reasons, "\n"), c.text) {
				t.Errorf("reasons %q (hold %q) lack %q", v.Reasons, v.HoldReason, c.text)
			}
			n := 0
			for _, b := range v.Breaches {
				if strings.Contains(b, "first classified mail") {
					n++
				}
			}
			if n != c.audit {
				t.Errorf("%d first-contact audit lines, want %d: %q", n, c.audit, v.Breaches)
			}
			if c.action == Quarantine {
				// The administrator and the sender are both told how to
				// confirm and release.
				var admin, sender bool
				for _, nt := range v.Notices {
					ok := nt.Kind == NoticeHeld && strings.Contains(nt.Reason, "nzsecure-milter firstcontact approve") && strings.Contains(nt.Reason, "postsuper -H Q1")
					admin = admin || ok && nt.To == p.Postmaster()
					sender = sender || ok && nt.To == "alice@agency.govt.nz"
				}
				if !admin || !sender {
					t.Errorf("held notices %+v: admin told %v, sender told %v", v.Notices, admin, sender)
				}
			}
		})
	}
}

func TestFirstContactSendmailRelease(t *testing.T) {
	p := mustPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="hold"`)
	v := p.AtEndOfMessage(Transaction{
		Conn:           Conn{MTA: MTASendmail},
		Envelope:       Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: []string{"n@partner.example"}, QueueID: "Q2"},
		Headers:        hdrs("From", "alice@agency.govt.nz"),
		Classification: "IN-CONFIDENCE",
	})
	if v.Action != Quarantine || !strings.Contains(v.HoldReason, "sendmail -qQ -qIQ2 -Q") {
		t.Errorf("action %s, hold reason %q: want the Sendmail release command", v.Action, v.HoldReason)
	}
}

// An unranked marking counts as classified (fail safe); a routing hold
// (SECRET, R110) comes first and learns nothing.
func TestFirstContactUnrankedAndRoutingHold(t *testing.T) {
	p := mustPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="log"`,
		`outbound.by_class.UNCLASSIFIED="best-effort"`)
	v := p.AtEndOfMessage(Transaction{
		Envelope:       Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: []string{"n@partner.example"}, QueueID: "Q3"},
		Headers:        hdrs("From", "alice@agency.govt.nz"),
		Classification: "SECRET",
	})
	if v.Action != Quarantine || len(v.Learn) != 0 {
		t.Errorf("SECRET: action %s, learn %q; want the R110 hold and nothing learned", v.Action, v.Learn)
	}
	if !p.firstContactClassified("NOT-A-LEVEL") || p.firstContactClassified(Unclassified) {
		t.Error("an unranked marking must count as classified, UNCLASSIFIED must not")
	}
}

func TestFirstContactDefaultOffEveryProfile(t *testing.T) {
	for _, prof := range []string{ProfileSGE, ProfileSecureMail, ProfileSEEMail} {
		p := mustPolicy(t, `profile="`+prof+`"`)
		if p.Outbound.FirstContact != FirstContactOff || p.Outbound.FirstContactState != DefaultFirstContactState || p.Outbound.FirstContactMax != DefaultFirstContactMax {
			t.Errorf("%s: first_contact %q state %q max %d", prof, p.Outbound.FirstContact, p.Outbound.FirstContactState, p.Outbound.FirstContactMax)
		}
	}
	if _, err := Parse("t", []byte(`outbound.first_contact_state = "relative"`), nil); err == nil {
		t.Error("a relative state path accepted")
	}
	if _, err := Parse("t", []byte(`[outbound]`+"\n"+`first_contact = "maybe"`), nil); err == nil {
		t.Error("first_contact = maybe accepted")
	}
}

func TestNormalizeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"Bob@Example.ORG":    "Bob@example.org",
		"<a@bücher.example>": "a@xn--bcher-kva.example",
		"a@b.example.":       "a@b.example",
		"no-at":              "",
		"@x.example":         "",
		"a b@x.example":      "",
		"a@[127.0.0.1]":      "",
	} {
		got, ok := NormalizeAddress(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// The sender's notice goes only to a sender in our domains (it names the
// recipient).
func TestFirstContactSenderNoticeOnlyInternal(t *testing.T) {
	p := mustPolicy(t, `outbound.secure_domains=["partner.example"]`, `outbound.first_contact="hold"`)
	v := p.AtEndOfMessage(Transaction{
		Envelope:       Envelope{AuthUser: "alice", From: "bounce@elsewhere.example", Rcpts: []string{"n@partner.example"}, QueueID: "Q4"},
		Headers:        hdrs("From", "alice@agency.govt.nz"),
		Classification: "IN-CONFIDENCE",
	})
	if v.Action != Quarantine {
		t.Fatalf("action %s", v.Action)
	}
	for _, n := range v.Notices {
		if n.To == "bounce@elsewhere.example" {
			t.Errorf("notice to the external envelope sender: %+v", n)
		}
	}
}
