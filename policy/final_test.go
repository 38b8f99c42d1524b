package policy

import (
	"os"
	"strings"
	"testing"
)

// R108 through the one author parser (issue 12): a workspace domain's mail
// loses its 002/005 only when From: names exactly that one author; an
// ambiguous or impersonating From: keeps its warning. (Was milter's
// TestGradeWarningWorkspaceNeedsOneAuthor; the engine grades now.)
func TestGradeWarningWorkspaceNeedsOneAuthor(t *testing.T) {
	p := mustPolicy(t, `inbound.trusted_lists=["partner.example"]`)
	for _, c := range []struct {
		from []string
		mode WarningMode
	}{
		{[]string{"Smith, Ann <ann@Partner.example.>"}, ""},
		{[]string{`"ceo@agency.govt.nz" <ann@partner.example>`}, "wrap"},
		{[]string{"ann@partner.example, ceo@agency.govt.nz"}, "wrap"},
		{[]string{"ann@partner.example", "ann@partner.example"}, "wrap"},
		{[]string{`"Ann <ann@partner.example>`}, "wrap"},
	} {
		var hs []Header
		for _, f := range c.from {
			hs = append(hs, Header{Name: "From", Value: f})
		}
		v := Verdict{WarningCode: "005", WarningMode: "wrap", Action: Accept}
		p.gradeWarning(&v, hs)
		if v.WarningMode != c.mode {
			t.Errorf("From %q: mode %q, want %q", c.from, v.WarningMode, c.mode)
		}
	}
}

// The verdict AtEndOfMessage returns is final (issue 13 point 2): a spoof
// of a participating agency is graded and its warning step listed; list
// mail gets the header-only step (R199); outbound signed mail lists
// dkim-sign last.
func TestEndOfMessageVerdictIsFinal(t *testing.T) {
	p := mustPolicy(t, `outbound.secure_domains=["partner.govt.nz"]`)
	in := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "x@spoof.example", Rcpts: []string{"bob@agency.govt.nz"}},
		Headers: hdrs("From", "ceo@partner.govt.nz", "Subject", "hi")}
	v := p.AtEndOfMessage(in)
	if v.WarningCode == "" || v.WarningSeverity != SeverityHard || len(v.Transforms) != 1 || v.Transforms[0].Kind != TransformWarnWrap {
		t.Fatalf("spoof: code %q severity %q transforms %v, want a hard warn-wrap", v.WarningCode, v.WarningSeverity, v.Transforms)
	}
	in.Headers = append(in.Headers, Header{Name: "List-Id", Value: "<l.example>"})
	v = p.AtEndOfMessage(in)
	if v.WarningSeverity != SeveritySoft || v.WarningMode != "header" || len(v.Transforms) != 1 || v.Transforms[0].Kind != TransformWarnHeader {
		t.Fatalf("list spoof: severity %q mode %q transforms %v, want a soft warn-header", v.WarningSeverity, v.WarningMode, v.Transforms)
	}

	key := t.TempDir() + "/k.pem"
	if err := os.WriteFile(key, []byte("not read by the engine"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = mustPolicy(t, `dkim.keys=["agency.govt.nz:s1:`+key+`"]`)
	out := Transaction{Envelope: Envelope{From: "ann@agency.govt.nz", AuthUser: "ann@agency.govt.nz", Rcpts: []string{"bob@agency.govt.nz"}},
		Headers: hdrs("From", "ann@agency.govt.nz", "Subject", "hi")}
	v = p.AtEndOfMessage(out)
	if v.Action != Accept || len(v.Transforms) != 1 || v.Transforms[0] != (Transform{Kind: TransformDKIMSign, Domain: "agency.govt.nz"}) {
		t.Fatalf("outbound: action %s transforms %v, want accept with dkim-sign(agency.govt.nz)", v.Action, v.Transforms)
	}
}

// The loop rules (R93) are applied by the engine: an [RSVPDR] receipt to
// postmaster is not in the verdict, and the reason says why.
func TestEndOfMessageFiltersNotices(t *testing.T) {
	p := mustPolicy(t)
	tx := Transaction{Envelope: Envelope{From: "postmaster@agency.govt.nz", AuthUser: "postmaster@agency.govt.nz", Rcpts: []string{"bob@agency.govt.nz"}},
		Headers: hdrs("From", "postmaster@agency.govt.nz", "Subject", "[RSVPDR] hi"), RSVPDR: true}
	v := p.AtEndOfMessage(tx)
	if len(v.Notices) != 0 {
		t.Fatalf("notices %v, want none (R93: no answer to postmaster)", v.Notices)
	}
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "receipt notice to <postmaster@agency.govt.nz> not sent") {
		t.Errorf("reasons %q do not say the receipt was suppressed", v.Reasons)
	}
	tx.Envelope.From, tx.Envelope.AuthUser, tx.Headers[0].Value = "ann@agency.govt.nz", "ann@agency.govt.nz", "ann@agency.govt.nz"
	if v := p.AtEndOfMessage(tx); len(v.Notices) != 1 || v.Notices[0].Kind != NoticeReceipt {
		t.Fatalf("notices %v, want one receipt", v.Notices)
	}
}
