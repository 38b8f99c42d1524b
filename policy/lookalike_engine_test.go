package policy

import (
	"strings"
	"testing"
)

// Issue 17: outbound.lookalike in the engine. The lists name exact
// domains (lookalikes of wildcards cannot be judged).
var lookalikeLists = []string{
	`outbound.secure_domains=["*.govt.nz", "justice.govt.nz"]`,
	`outbound.seemail_domains=["seemail.example"]`,
	`outbound.exceptions=["partner.example"]`,
}

func TestOutboundLookalike(t *testing.T) {
	cases := []struct {
		name   string
		sets   []string
		class  string
		rcpts  []string
		action Action
		remove []string
		text   string // in the reply, hold reason or NDR
		audit  int    // misdirected-mail audit lines
	}{
		{"refuse unclassified", nil, Unclassified, []string{"bob@agency.gov.nz"}, Reject, nil,
			"recipient domain agency.gov.nz looks like agency.govt.nz: not sent (misdirected mail)", 1},
		{"refuse classified to secure lookalike", nil, "IN-CONFIDENCE", []string{"judge@justise.govt.nz"}, Reject, nil,
			"recipient domain justise.govt.nz looks like justice.govt.nz", 1},
		{"refuse homoglyph", nil, Unclassified, []string{"x@p\u0430rtner.example"}, Reject, nil,
			"looks like partner.example", 1},
		{"split innocent", nil, Unclassified, []string{"friend@gmail.com", "bob@agency.gov.nz"}, Accept, []string{"bob@agency.gov.nz"},
			"Not sent (misdirected mail): recipient domain agency.gov.nz looks like agency.govt.nz", 1},
		{"split internal", nil, "IN-CONFIDENCE", []string{"colleague@agency.govt.nz", "x@justise.govt.nz"}, Accept, []string{"x@justise.govt.nz"},
			"looks like justice.govt.nz", 1},
		// Removed by the routing rule first (audited there): the NDR still
		// names the intended domain.
		{"routing removed first", nil, "IN-CONFIDENCE", []string{"colleague@agency.govt.nz", "x@seemai1.example"}, Accept, []string{"x@seemai1.example"},
			"Not sent (misdirected mail): recipient domain seemai1.example looks like seemail.example", 0},
		{"partial refuse", []string{`outbound.partial="refuse"`}, Unclassified, []string{"friend@gmail.com", "bob@agency.gov.nz"}, Reject, nil,
			"looks like agency.govt.nz", 1},
		{"hold", []string{`outbound.lookalike="hold"`}, Unclassified, []string{"friend@gmail.com", "bob@agency.gov.nz"}, Quarantine, nil,
			"held as possibly misdirected mail; release with: postsuper -H Q1", 1},
		{"off", []string{`outbound.lookalike="off"`}, Unclassified, []string{"bob@agency.gov.nz"}, Accept, nil, "", 0},
		// A real correspondent close to a known name, allowed by the
		// administrator; the others are still refused.
		{"allowed", []string{`outbound.lookalike_allow=["agency.gov.nz"]`}, Unclassified, []string{"bob@agency.gov.nz"}, Accept, nil, "", 0},
		{"allowed by wildcard, others refused", []string{`outbound.lookalike_allow=["*.agency.gov.nz"]`}, Unclassified, []string{"bob@mail.agency.gov.nz", "x@justise.govt.nz"}, Accept, []string{"x@justise.govt.nz"},
			"looks like justice.govt.nz", 1},
		{"unclassified to gmail untouched", nil, Unclassified, []string{"friend@gmail.com", "a@example.com"}, Accept, nil, "", 0},
		{"subdomain of ours untouched", nil, Unclassified, []string{"a@sub.agency.govt.nz", "b@mail.justice.govt.nz"}, Accept, nil, "", 0},
		{"short distinct agency untouched", nil, "IN-CONFIDENCE", []string{"a@ird.govt.nz"}, Accept, nil, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, append(append([]string{}, lookalikeLists...), c.sets...)...)
			v := p.AtEndOfMessage(Transaction{
				Envelope:       Envelope{AuthUser: "alice", From: "alice@agency.govt.nz", Rcpts: c.rcpts, QueueID: "Q1"},
				Headers:        hdrs("From", "alice@agency.govt.nz"),
				Classification: c.class,
			})
			if v.Action != c.action {
				t.Fatalf("action %s, want %s (reasons %q)", v.Action, c.action, v.Reasons)
			}
			if strings.Join(v.RemoveRcpts, ",") != strings.Join(c.remove, ",") {
				t.Fatalf("removed %q, want %q", v.RemoveRcpts, c.remove)
			}
			var all []string
			switch c.action {
			case Reject:
				if v.Reply == nil || v.Reply.Code != 550 || v.Reply.Status != "5.7.1" {
					t.Fatalf("reply %+v", v.Reply)
				}
				all = append(all, v.Reply.Text)
			case Quarantine:
				all = append(all, v.HoldReason)
			}
			for _, n := range v.Notices {
				all = append(all, n.Reason)
			}
			if c.text != "" && !strings.Contains(strings.Join(all, "\n"), c.text) {
				t.Errorf("no %q in %q", c.text, all)
			}
			misdirected := 0
			for _, b := range v.Breaches {
				if strings.Contains(b, "misdirected mail") {
					misdirected++
				}
			}
			if misdirected != c.audit {
				t.Errorf("audit lines %q, want %d misdirected-mail line(s)", v.Breaches, c.audit)
			}
		})
	}
}

func TestLookalikeDefaultEveryProfile(t *testing.T) {
	for _, profile := range []string{ProfileSGE, ProfileSecureMail, ProfileSEEMail} {
		if p := mustPolicy(t, "profile="+profile); p.Outbound.Lookalike != LookalikeRefuse {
			t.Errorf("%s: outbound.lookalike = %q, want refuse", profile, p.Outbound.Lookalike)
		}
	}
	if _, err := Load("", []string{`outbound.lookalike="maybe"`}); err == nil {
		t.Error("outbound.lookalike = maybe accepted")
	}
}

// A peer agency we hold a DCA certificate for is a real gateway however
// close its name is to ours (agency-b.govt.nz is one edit from
// agency-a.govt.nz): not refused. Without the certificate it is.
func TestOutboundLookalikeKnownPeer(t *testing.T) {
	p := mustPolicy(t, `domains=["agency-a.govt.nz"]`)
	tx := Transaction{
		Envelope:       Envelope{AuthUser: "alice", From: "alice@agency-a.govt.nz", Rcpts: []string{"bob@agency-b.govt.nz"}, QueueID: "Q1"},
		Headers:        hdrs("From", "alice@agency-a.govt.nz"),
		Classification: Unclassified,
	}
	if v := p.AtEndOfMessage(tx); v.Action != Reject || !strings.Contains(v.Reply.Text, "looks like agency-a.govt.nz") {
		t.Fatalf("no certificate: %s %+v", v.Action, v.Reply)
	}
	tx.SMIMEOut = SMIMEOutbound{Peers: map[string]SMIMEPeer{"agency-b.govt.nz": {Domain: "agency-b.govt.nz", HasCerts: true}}}
	if v := p.AtEndOfMessage(tx); v.Action != Accept || len(v.RemoveRcpts) != 0 {
		t.Fatalf("known peer: %s removed %q reasons %q", v.Action, v.RemoveRcpts, v.Reasons)
	}
	// In scope but with no certificate (looked up, none): still a lookalike.
	tx.SMIMEOut.Peers["agency-b.govt.nz"] = SMIMEPeer{Domain: "agency-b.govt.nz"}
	if v := p.AtEndOfMessage(tx); v.Action != Reject {
		t.Fatalf("peer without certificate: %s", v.Action)
	}
}
