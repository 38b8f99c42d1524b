package policy

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// R62 with R110 (adminhold.go): a message held for an administrator with
// a recipient in S/MIME scope is held by the gateway, not in the MTA's
// hold queue, and a release re-runs it with Transaction.Released.

func secretTx(out SMIMEOutbound, rcpts ...string) Transaction {
	tx := smimeOutTx(out, rcpts...)
	tx.Headers = hdrs("From", "alice@agency.govt.nz", "Subject", "[SECRET] plans")
	tx.Classification = "SECRET"
	return tx
}

func heldNotice(v Verdict) *Notice {
	for i := range v.Notices {
		if v.Notices[i].Kind == NoticeHeld {
			return &v.Notices[i]
		}
	}
	return nil
}

func TestAdminHoldSecretToPeerGoesToStore(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := secretTx(out, "bob@agency-b.govt.nz", "colleague@agency.govt.nz")
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard {
		t.Fatalf("action %s, want discard (held by the gateway, not quarantined); reasons %q", v.Action, v.Reasons)
	}
	if len(v.Copies) != 1 || v.Copies[0].Form != FormHeld || v.Copies[0].Hold != HoldClassified {
		t.Fatalf("copies %+v, want one held copy for the administrator (classification)", v.Copies)
	}
	// The whole message: the colleague is released with it, once.
	if got := strings.Join(v.Copies[0].Rcpts, ","); got != "bob@agency-b.govt.nz,colleague@agency.govt.nz" {
		t.Errorf("held recipients %q", got)
	}
	everyRcptOnce(t, v, tx.Envelope)
	if len(v.Transforms) != 0 {
		t.Errorf("transforms %+v for a message not sent", v.Transforms)
	}
	n := heldNotice(v)
	if n == nil || n.To != p.Postmaster() {
		t.Fatalf("no held-mail notice to the postmaster: %+v", v.Notices)
	}
	if !strings.Contains(n.Reason, "nzsecure-milter held release Q1") || strings.Contains(n.Reason, "postsuper") {
		t.Errorf("held notice names %q, want `nzsecure-milter held release Q1` and no postsuper", n.Reason)
	}
	if !strings.Contains(v.Copies[0].Reason, "nzsecure-milter held release Q1") {
		t.Errorf("held copy reason %q", v.Copies[0].Reason)
	}
	if s := v.FormsSummary(tx.Envelope); !strings.Contains(s, "held for the administrator (classification)") {
		t.Errorf("forms summary %q", s)
	}
}

func TestAdminHoldReleasedGetsSMIME(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := secretTx(out, "bob@agency-b.govt.nz")
	tx.Released = []string{HoldClassified}
	v := p.AtEndOfMessage(tx)
	if v.Action != Accept {
		t.Fatalf("released: action %s, want accept; reasons %q", v.Action, v.Reasons)
	}
	if v.MainForm() != FormSMIME || len(v.Copies) != 0 {
		t.Fatalf("released: form %s copies %+v, want the S/MIME form", v.MainForm(), v.Copies)
	}
	if heldNotice(v) != nil {
		t.Errorf("released: a held-mail notice again: %+v", v.Notices)
	}
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "released by the administrator (classification hold)") {
		t.Errorf("reasons do not say it was released: %q", v.Reasons)
	}
	for _, d := range v.Recipients {
		if !d.Allowed {
			t.Errorf("recipient %s not allowed after the release: %s", d.Address, d.Reason)
		}
	}
	// Another release kind does not lift the R110 hold.
	tx.Released = []string{HoldUnreadable}
	if v := p.AtEndOfMessage(tx); v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Hold != HoldClassified {
		t.Errorf("released from unreadable only: action %s copies %+v", v.Action, v.Copies)
	}
}

// Released does not skip the certificate rules: a revoked peer is held
// for the ordinary retry (Table 1), not sent in clear.
func TestAdminHoldReleasedStillCertificateHold(t *testing.T) {
	p := smimePolicy(t)
	revoked := SMIMEPeer{Domain: "agency-r.govt.nz", HasCerts: true, State: smime.StateRevoked, Fingerprint: fpPeer, Cipher: "aes256-cbc"}
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-r.govt.nz": revoked}}
	tx := secretTx(out, "rita@agency-r.govt.nz")
	tx.Released = []string{HoldClassified}
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Form != FormHeld || v.Copies[0].Hold != "" || v.Copies[0].Code == "" {
		t.Fatalf("released to a revoked peer: action %s copies %+v, want a certificate hold", v.Action, v.Copies)
	}
}

// Out of S/MIME scope, or smime.mode off: the MTA's hold queue as before,
// named with postsuper.
func TestAdminHoldOutOfScopeStaysInMTA(t *testing.T) {
	out := SMIMEOutbound{On: true, Own: ownOK}
	for name, p := range map[string]*Policy{
		"out of scope": smimePolicy(t, `smime.encrypt_to=["agency-c.govt.nz"]`),
		"smime off":    smimePolicy(t, `smime.mode="off"`),
	} {
		tx := secretTx(out, "bob@agency-b.govt.nz")
		v := p.AtEndOfMessage(tx)
		if v.Action != Quarantine || len(v.Copies) != 0 {
			t.Errorf("%s: action %s copies %+v, want quarantine", name, v.Action, v.Copies)
			continue
		}
		if n := heldNotice(v); n == nil || !strings.Contains(n.Reason, "postsuper -H Q1") {
			t.Errorf("%s: held notice %+v, want postsuper -H Q1", name, n)
		}
	}
}

// The other administrator holds: unreadable content, a lookalike domain.
func TestAdminHoldOtherKinds(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz")
	tx.Unreadable = []string{"body/part 2: encrypted"}
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Hold != HoldUnreadable {
		t.Fatalf("unreadable: action %s copies %+v", v.Action, v.Copies)
	}
	tx.Released = []string{HoldUnreadable}
	v = p.AtEndOfMessage(tx)
	if v.Action != Accept || v.MainForm() != FormSMIME {
		t.Fatalf("unreadable released: action %s form %s reasons %q", v.Action, v.MainForm(), v.Reasons)
	}
	if len(HeaderValues(addedHeaders(v), SecureEmailHeader)) != 0 {
		t.Errorf("released unreadable content tagged %s", SecureEmailHeader)
	}
}

func addedHeaders(v Verdict) []Header {
	var hs []Header
	for _, e := range v.Edits {
		if e.Op == OpAdd {
			hs = append(hs, Header{Name: e.Name, Value: e.Value})
		}
	}
	return hs
}

// A lookalike hold (outbound.lookalike = "hold") of a message with a peer
// in scope goes to the store whole; released, each recipient gets its
// form: the peer S/MIME, the lookalike domain plain (the administrator
// judged it right).
func TestAdminHoldLookalikeReleased(t *testing.T) {
	p := smimePolicy(t, `outbound.lookalike="hold"`)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz", "eve@agency-c.gov.nz")
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Hold != HoldLookalike || len(v.Copies[0].Rcpts) != 2 {
		t.Fatalf("lookalike: action %s copies %+v reasons %q", v.Action, v.Copies, v.Reasons)
	}
	if n := heldNotice(v); n == nil || !strings.Contains(n.Reason, "held by this gateway") || !strings.Contains(n.Reason, "nzsecure-milter held release Q1") {
		t.Fatalf("lookalike notice %+v", n)
	}
	tx.Released = []string{HoldLookalike}
	v = p.AtEndOfMessage(tx)
	if v.Action != Accept {
		t.Fatalf("released: action %s reasons %q", v.Action, v.Reasons)
	}
	everyRcptOnce(t, v, tx.Envelope)
	if v.MainForm() != FormPlain || strings.Join(v.MainRcpts(tx.Envelope), ",") != "eve@agency-c.gov.nz" ||
		len(v.Copies) != 1 || v.Copies[0].Form != FormSMIME || strings.Join(v.Copies[0].Rcpts, ",") != "bob@agency-b.govt.nz" {
		t.Fatalf("released: main %s %v, copies %+v", v.MainForm(), v.MainRcpts(tx.Envelope), v.Copies)
	}
	if !strings.Contains(strings.Join(v.Breaches, "\n"), "released by the administrator") {
		t.Errorf("audit line does not say it was released: %q", v.Breaches)
	}
}

// A quoted local part holding an "@" is judged by the domain the MTA
// delivers to: the peer's, so the hold goes to the store.
func TestAdminHoldQuotedLocalPart(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := secretTx(out, `"x@gmail.example"@agency-b.govt.nz`)
	if v := p.AtEndOfMessage(tx); v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Hold != HoldClassified {
		t.Fatalf("action %s copies %+v, want held by the gateway", v.Action, v.Copies)
	}
}
