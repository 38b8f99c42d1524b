package policy

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/idna"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Adversarial cases for the S/MIME mail path (issue 14): recipient forms an
// attacker or a careless sender can write, which must never take a peer
// agency's recipient out of S/MIME scope (R62: "with no exceptions").

// formOf is the form rcpt gets in v: the main transaction's, a copy's, or
// "removed".
func formOf(v Verdict, env Envelope, rcpt string) []string {
	var got []string
	for _, r := range v.MainRcpts(env) {
		if r == rcpt {
			got = append(got, string(v.MainForm()))
		}
	}
	for _, c := range v.Copies {
		for _, r := range c.Rcpts {
			if r == rcpt {
				got = append(got, string(c.Form))
			}
		}
	}
	for _, r := range v.RemoveRcpts {
		if r == rcpt {
			got = append(got, "removed")
		}
	}
	return got
}

// A peer recipient written in upper case, with a trailing dot, with a
// quoted local part (even one holding an "@"), or with the peer's domain
// as a U-label (SMTPUTF8) is the peer's: S/MIME, never plain. The
// quoted "@" and the U-label were read by strings.Cut on the first "@"
// and compared as written, so they left in clear.
func TestAdvSMIMEOutRecipientForms(t *testing.T) {
	ulabel := "agencé.govt.nz"
	alabel, err := idna.Lookup.ToASCII(ulabel)
	if err != nil {
		t.Fatal(err)
	}
	p := smimePolicy(t, `outbound.seemail_domains=["agency-b.govt.nz", "`+alabel+`"]`)
	peerA := peerValid
	peerA.Domain = alabel
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid, alabel: peerA}}
	for _, rcpt := range []string{
		"BOB@AGENCY-B.GOVT.NZ", "bob@agency-b.govt.nz.", "bob@agency-b.govt.nz..", `"bob smith"@agency-b.govt.nz`,
		`"x@gmail.example"@agency-b.govt.nz`, "bob@" + ulabel, "bob@" + strings.ToUpper(alabel),
	} {
		tx := smimeOutTx(out, rcpt)
		v := p.AtEndOfMessage(tx)
		everyRcptOnce(t, v, tx.Envelope)
		if got := formOf(v, tx.Envelope, rcpt); len(got) != 1 || got[0] != string(FormSMIME) {
			t.Errorf("%s: form %v, want smime; reasons %q", rcpt, got, v.Reasons)
		}
	}
	// The same for a peer without a valid certificate: held, never plain.
	bad := SMIMEOutbound{On: true, Own: ownOK}
	for _, rcpt := range []string{`"x@gmail.example"@agency-b.govt.nz`, "bob@" + ulabel} {
		tx := smimeOutTx(bad, rcpt)
		v := p.AtEndOfMessage(tx)
		if got := formOf(v, tx.Envelope, rcpt); len(got) != 1 || got[0] != string(FormHeld) {
			t.Errorf("%s without certificate: form %v, want held; reasons %q", rcpt, got, v.Reasons)
		}
	}
}

// A subdomain of a peer: out of scope unless the list covers it
// ("*.agency-b.govt.nz"); covered but without a certificate of its own it
// is held (201), never sent in clear nor encrypted to the parent's
// certificate.
func TestAdvSMIMEOutSubdomain(t *testing.T) {
	p := smimePolicy(t, `outbound.seemail_domains=["agency-b.govt.nz", "*.agency-b.govt.nz"]`)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz", "eve@mail.agency-b.govt.nz")
	v := p.AtEndOfMessage(tx)
	everyRcptOnce(t, v, tx.Envelope)
	if got := formOf(v, tx.Envelope, "eve@mail.agency-b.govt.nz"); len(got) != 1 || got[0] != string(FormHeld) {
		t.Errorf("subdomain: form %v, want held; reasons %q", got, v.Reasons)
	}
	for _, c := range v.Copies {
		if c.Form == FormHeld && c.Code != "201" {
			t.Errorf("subdomain held with %s, want 201", c.Code)
		}
	}
}

// Every mix: a peer, the same peer in another case, a lookalike, a held
// one, an internet one and one of ours: each exactly once, the peer's
// never plain.
func TestAdvSMIMEOutMixedRecipients(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid,
		"agency-r.govt.nz": {Domain: "agency-r.govt.nz", HasCerts: true, State: smime.StateRevoked}}}
	rcpts := []string{"bob@agency-b.govt.nz", "Carol@Agency-B.govt.nz", "x@agency-b.govt.nz.evil.example", "rob@agency-r.govt.nz", "x@gmail.example", "colleague@agency.govt.nz"}
	tx := smimeOutTx(out, rcpts...)
	v := p.AtEndOfMessage(tx)
	everyRcptOnce(t, v, tx.Envelope)
	for _, r := range rcpts[:2] {
		if got := formOf(v, tx.Envelope, r); len(got) != 1 || got[0] != string(FormSMIME) {
			t.Errorf("%s: %v, want smime", r, got)
		}
	}
	if got := formOf(v, tx.Envelope, "rob@agency-r.govt.nz"); len(got) != 1 || got[0] != string(FormHeld) {
		t.Errorf("revoked peer: %v, want held", got)
	}
	// The two agency-b recipients are in one form, not one each.
	n := 0
	if v.MainForm() == FormSMIME {
		n++
	}
	for _, c := range v.Copies {
		if c.Form == FormSMIME {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d S/MIME forms, want 1 for agency-b; %s", n, v.FormsSummary(tx.Envelope))
	}
}

// A peer recipient given twice in RCPT TO (same spelling or another case)
// is placed once per envelope entry, in one S/MIME form: never once plain
// and once encrypted.
func TestAdvSMIMEOutDuplicateRecipient(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz", "x@gmail.example", "bob@agency-b.govt.nz", "BOB@agency-b.govt.nz")
	v := p.AtEndOfMessage(tx)
	for _, r := range []string{"bob@agency-b.govt.nz", "BOB@agency-b.govt.nz"} {
		for _, f := range formOf(v, tx.Envelope, r) {
			if f != string(FormSMIME) {
				t.Errorf("%s in form %s: %s", r, f, v.FormsSummary(tx.Envelope))
			}
		}
	}
	if m := v.MainRcpts(tx.Envelope); len(m) != 1 || m[0] != "x@gmail.example" {
		t.Errorf("main recipients %v, want the internet one only", m)
	}
}

// Classified mail to a peer: the routing rules decide first; what they
// hold for an administrator ([SECRET], [TOP SECRET] under seemail, R110)
// or refuse is never turned into an S/MIME copy that leaves at once. (A
// message released from the MTA's hold queue leaves as it is, unencrypted:
// README "Domain S/MIME"; not fixed here.)
func TestAdvSMIMEOutClassifiedToPeer(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	for _, subj := range []string{"[SECRET] plans", "[TOP SECRET] plans", "[IN-CONFIDENCE] plans", "[RESTRICTED] plans"} {
		tx := smimeOutTx(out, "bob@agency-b.govt.nz", "x@gmail.example")
		tx.Headers = hdrs("From", "alice@agency.govt.nz", "Subject", subj)
		tx.Classification = strings.Trim(strings.Fields(strings.TrimPrefix(subj, "["))[0], "[]")
		if strings.HasPrefix(subj, "[TOP") {
			tx.Classification = "TOP SECRET"
		}
		v := p.AtEndOfMessage(tx)
		adminHeld := v.Action == Discard && len(v.Copies) > 0
		for _, c := range v.Copies {
			adminHeld = adminHeld && c.Form == FormHeld && c.Hold == HoldClassified
		}
		if strings.Contains(subj, "SECRET") && v.Action != Quarantine && v.Action != Reject && !adminHeld {
			// R110 under seemail: held for the administrator, never sent
			// encrypted to the peer as if allowed.
			t.Errorf("%s: %s, want held for the administrator; %s", subj, v.Action, v.FormsSummary(tx.Envelope))
		}
		if v.Action != Accept && v.Action != Discard {
			for _, c := range v.Copies {
				if c.Form == FormSMIME || c.Form == FormPlain {
					t.Errorf("%s: %s with a copy that leaves now: %+v", subj, v.Action, c)
				}
			}
			continue
		}
		everyRcptOnce(t, v, tx.Envelope)
		for _, r := range formOf(v, tx.Envelope, "bob@agency-b.govt.nz") {
			if r == string(FormPlain) {
				t.Errorf("%s: the peer gets the plain form", subj)
			}
		}
		t.Logf("%s: %s %s", subj, v.Action, v.FormsSummary(tx.Envelope))
	}
}

// An administrator turning smime.mode on (or choosing seemail) without
// identities or trust anchors: valid, fail safe (everything to a peer is
// held), and lint says so with the key; with both set, no such warning.
func TestAdvSMIMELintWithoutIdentities(t *testing.T) {
	p := mustPolicy(t, `smime.mode="on"`)
	keys := map[string]bool{}
	for _, w := range p.Warnings {
		keys[w.Key] = true
	}
	if !keys["smime.identities"] || !keys["smime.trust_anchors"] {
		t.Errorf("warnings %v, want smime.identities and smime.trust_anchors", p.Warnings)
	}
	p = mustPolicy(t, `smime.mode="on"`, `domains=["agency-a.govt.nz"]`, `smime.identities=["agency-a.govt.nz:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-a-new.key"]`)
	for _, w := range p.Warnings {
		if w.Key == "smime.identities" {
			t.Errorf("warning with an identity set: %v", w)
		}
	}
	if p := mustPolicy(t, `smime.mode="off"`); len(p.Warnings) != 0 {
		t.Errorf("mode off: warnings %v", p.Warnings)
	}
}

// FuzzSMIMERcptDomain (and smimeRewrittenDomain): the S/MIME recipient domain is never written with
// an "@", upper case or a trailing dot (the peer store and the scope
// compare it as is), and a recipient local@domain with a plain ASCII
// domain always gets that domain, whatever its local part holds.
func FuzzSMIMERcptDomain(f *testing.F) {
	for _, s := range []string{"bob@agency-b.govt.nz", `"x@gmail.example"@agency-b.govt.nz`, "BOB@AGENCY-B.GOVT.NZ.", "bob@agencé.govt.nz", "<bob@agency-b.govt.nz>", "@", "", `"a\"@b"@c.d`, "localhost!agency-b.govt.nz!carol", "carol%agency-b.govt.nz@mx.agency.govt.nz", "50%off@shop.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			return
		}
		d := SMIMERcptDomain(s)
		if strings.Contains(d, "@") || strings.HasSuffix(d, ".") || d != strings.ToLower(d) {
			t.Fatalf("SMIMERcptDomain(%q) = %q", s, d)
		}
		// The domain a bang path or percent hack may be rewritten to is a
		// multi-label domain other than d, or none.
		if alt := smimeRewrittenDomain(s, d); alt != "" && (alt == d || !strings.Contains(alt, ".") || strings.Contains(alt, "@")) {
			t.Fatalf("smimeRewrittenDomain(%q) = %q (domain %q)", s, alt, d)
		}
		local, _, _ := strings.Cut(s, "\n")
		if local == "" || len(local) > 64 || strings.ContainsAny(local, "\"\\<>()[],;: \t\r@") {
			return
		}
		for _, c := range local {
			if c < 0x21 || c > 0x7e {
				return
			}
		}
		if got := SMIMERcptDomain(`"` + local + `@x"@Agency-B.govt.nz`); got != "agency-b.govt.nz" {
			t.Fatalf("quoted local part %q: domain %q, want agency-b.govt.nz", local, got)
		}
	})
}

// [SECRET] to a peer under seemail is held in the MTA's hold queue for the
// administrator (R110); released from there it leaves as it is, unsigned
// and unencrypted. The administrator's notice says so, naming the peer
// recipients; an internet-only hold gets no such caution.
func TestAdvSMIMEOutQuarantineCaution(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz", "colleague@agency.govt.nz")
	tx.Classification = "SECRET"
	v := p.AtEndOfMessage(tx)
	// R62: a hold with a peer recipient is kept by the gateway (released
	// through the chain with `held release`), never put in the MTA's hold
	// queue, from where it would leave unsigned and unencrypted.
	if v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Form != FormHeld || v.Copies[0].Hold != HoldClassified {
		t.Fatalf("action %s copies %+v, want discard with one held copy for the administrator (R110, R62)", v.Action, v.Copies)
	}
	found := false
	for _, n := range v.Notices {
		if n.Kind == NoticeHeld {
			found = true
			if !strings.Contains(n.Reason, "held release") || strings.Contains(n.Reason, "postsuper") {
				t.Errorf("held notice does not name `held release` (or names postsuper): %q", n.Reason)
			}
		}
	}
	if !found {
		t.Fatalf("no held notice: %+v", v.Notices)
	}
	tx = smimeOutTx(out, "colleague@agency.govt.nz")
	tx.Classification = "SECRET"
	for _, n := range p.AtEndOfMessage(tx).Notices {
		if strings.Contains(n.Reason, "CAUTION") {
			t.Errorf("caution without a peer recipient: %q", n.Reason)
		}
	}
}

// Recipient forms the MTA rewrites after the milter has judged them: a
// bang path (swap_bangpath) and a percent hack on a host local to the MTA
// (allow_percent_hack) both reached carol@agency-b.govt.nz in clear
// (tests/e2e/smime-adversarial.sh c). Under smime.mode on they are
// refused (an NDR tells the sender), the others go on; a source route is
// read for its final address and is the peer's (S/MIME).
func TestAdvSMIMEOutRewrittenRecipients(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	for _, rcpt := range []string{"agency-b.govt.nz!carol", "x!agency-b.govt.nz!carol", "localhost!agency-b.govt.nz!carol", "carol%agency-b.govt.nz%x@agency.govt.nz", "carol%agency-b.govt.nz@mx.agency.govt.nz", "carol%agency-b.govt.nz@gmail.example", "carol%agency-b.govt.nz@agency.govt.nz"} {
		tx := smimeOutTx(out, rcpt, "x@gmail.example")
		v := p.AtEndOfMessage(tx)
		everyRcptOnce(t, v, tx.Envelope)
		if got := formOf(v, tx.Envelope, rcpt); len(got) != 1 || got[0] != "removed" {
			t.Errorf("%s: %v, want removed; reasons %q", rcpt, got, v.Reasons)
		}
		if m := v.MainRcpts(tx.Envelope); len(m) != 1 || m[0] != "x@gmail.example" || v.Action != Accept {
			t.Errorf("%s: the other recipient: %s %v", rcpt, v.Action, m)
		}
		ndr := false
		for _, n := range v.Notices {
			ndr = ndr || n.Kind == NoticeNDR && slices.Contains(n.Rcpts, rcpt)
		}
		if !ndr {
			t.Errorf("%s: no NDR to the sender: %+v", rcpt, v.Notices)
		}
	}
	// Only such a recipient: nothing is left, the message is discarded
	// (the NDR says why), never accepted with no recipient.
	tx := smimeOutTx(out, "agency-b.govt.nz!carol")
	if v := p.AtEndOfMessage(tx); v.Action != Discard {
		t.Errorf("bang path alone: %s, want discard", v.Action)
	}
	// Not rewritten elsewhere: a "%" naming the same domain, one of ours,
	// or a plain local part; a source route is the final address's.
	for rcpt, want := range map[string]FormKind{"carol%agency-b.govt.nz@agency-b.govt.nz": FormSMIME, "carol%agency.govt.nz@agency.govt.nz": FormPlain,
		"@mx.agency.govt.nz:carol@agency-b.govt.nz": FormSMIME, "agency.govt.nz!carol": FormPlain,
		"50%off@gmail.example": FormPlain, "yahoo!bob@agency-b.govt.nz": FormSMIME} {
		tx := smimeOutTx(out, rcpt)
		v := p.AtEndOfMessage(tx)
		if got := formOf(v, tx.Envelope, rcpt); len(got) != 1 || got[0] != string(want) {
			t.Errorf("%s: %v, want %s; reasons %q", rcpt, got, want, v.Reasons)
		}
	}
}

// A notice (an NDR of a removed recipient) to a sender written with a
// percent hack on a host of ours is not sent: the MTA would rewrite it to
// a peer's address and send it in clear (R62). (A bang path without "@"
// is already dropped as having no valid recipient.)
func TestAdvSMIMENoticeToRewrittenAddress(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	tx := smimeOutTx(out, "agency-b.govt.nz!carol", "x@gmail.example")
	tx.Envelope.From = "alice%agency-b.govt.nz@mx.agency.govt.nz"
	v := p.AtEndOfMessage(tx)
	for _, n := range v.Notices {
		if n.To == tx.Envelope.From {
			t.Errorf("notice %s to %s kept", n.Kind, n.To)
		}
	}
}
