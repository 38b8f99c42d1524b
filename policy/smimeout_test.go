package policy

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Outbound S/MIME (issue 14 point 3, R62-R72, Table 1 sending column).

const (
	fpOwn  = "00aa000000000000000000000000000000000000000000000000000000000000"
	fpPeer = "00bb000000000000000000000000000000000000000000000000000000000000"
)

func smimePolicy(t *testing.T, sets ...string) *Policy {
	t.Helper()
	// smime.request_by_mail off: these tests count the Table 1 notices;
	// the certificate request is certrequest_test.go's.
	return mustPolicy(t, append([]string{`profile="seemail"`, `outbound.seemail_domains=["agency-b.govt.nz", "agency-r.govt.nz", "agency-c.govt.nz"]`, `smime.request_by_mail=false`}, sets...)...)
}

var (
	ownOK     = SMIMEOwn{Domain: "agency.govt.nz", Fingerprint: fpOwn}
	peerValid = SMIMEPeer{Domain: "agency-b.govt.nz", HasCerts: true, State: smime.StateValid, Fingerprint: fpPeer, Cipher: "aes256-cbc"}
)

func smimeOutTx(out SMIMEOutbound, rcpts ...string) Transaction {
	return Transaction{
		Envelope: Envelope{From: "alice@agency.govt.nz", AuthUser: "alice", Rcpts: rcpts, QueueID: "Q1"},
		Headers:  hdrs("From", "alice@agency.govt.nz", "Subject", "hello"),
		SMIMEOut: out,
	}
}

// everyRcptOnce fails unless each envelope recipient is in exactly one of
// the main transaction, RemoveRcpts and the copies.
func everyRcptOnce(t *testing.T, v Verdict, env Envelope) {
	t.Helper()
	var got []string
	got = append(got, v.MainRcpts(env)...)
	got = append(got, v.RemoveRcpts...)
	for _, c := range v.Copies {
		got = append(got, c.Rcpts...)
	}
	if v.Action == Discard && len(v.MainRcpts(env)) > 0 {
		t.Errorf("discarded with main recipients %v", v.MainRcpts(env))
	}
	want := append([]string(nil), env.Rcpts...)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("recipients placed %v, want each of %v exactly once", got, want)
	}
}

// R72/R91: only the domains in scope get S/MIME; the others and our own
// stay plain.
func TestSMIMEScopeOutbound(t *testing.T) {
	p := smimePolicy(t)
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	v := p.AtEndOfMessage(smimeOutTx(out, "bob@agency-b.govt.nz"))
	if v.Action != Accept || v.MainForm() != FormSMIME || len(v.Copies) != 0 {
		t.Fatalf("peer only: action %s form %s copies %+v, reasons %q", v.Action, v.MainForm(), v.Copies, v.Reasons)
	}
	tr := v.Transforms[0]
	if tr.Kind != TransformSMIMESignEncrypt || tr.Domain != "agency-b.govt.nz" || tr.Signer != fpOwn || tr.Cert != fpPeer || tr.Cipher != "aes256-cbc" {
		t.Errorf("transform %+v", tr)
	}
	for _, rcpt := range []string{"x@gmail.example", "colleague@agency.govt.nz"} {
		v := p.AtEndOfMessage(smimeOutTx(out, rcpt))
		if v.Action != Accept || v.MainForm() != FormPlain || len(v.Copies) != 0 {
			t.Errorf("%s: action %s form %s copies %+v", rcpt, v.Action, v.MainForm(), v.Copies)
		}
	}
	// A domain with a peer certificate is in scope though on no list (R72).
	listed := SMIMEPeer{Domain: "other.example", HasCerts: true, State: smime.StateValid, Fingerprint: fpPeer, Cipher: "aes128-cbc"}
	v = p.AtEndOfMessage(smimeOutTx(SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"other.example": listed}}, "x@other.example"))
	if v.MainForm() != FormSMIME || v.Transforms[0].Cipher != "aes128-cbc" {
		t.Errorf("peer-store domain: form %s transforms %+v", v.MainForm(), v.Transforms)
	}
	// smime.encrypt_to set: only its domains.
	p2 := smimePolicy(t, `smime.encrypt_to=["agency-c.govt.nz"]`)
	v = p2.AtEndOfMessage(smimeOutTx(out, "bob@agency-b.govt.nz"))
	if v.MainForm() != FormPlain || len(v.Copies) != 0 {
		t.Errorf("encrypt_to excludes agency-b: form %s copies %+v", v.MainForm(), v.Copies)
	}
	// smime.mode off: nothing changes.
	p3 := smimePolicy(t, `smime.mode="off"`)
	v = p3.AtEndOfMessage(smimeOutTx(out, "bob@agency-b.govt.nz"))
	if v.MainForm() != FormPlain || len(v.Copies) != 0 || v.Action != Accept {
		t.Errorf("mode off: form %s copies %+v", v.MainForm(), v.Copies)
	}
}

// Table 1, sending column: each row and its Table 3 code.
func TestSMIMESendingColumn(t *testing.T) {
	p := smimePolicy(t)
	peer := func(st smime.State) SMIMEPeer {
		return SMIMEPeer{Domain: "agency-b.govt.nz", HasCerts: true, State: st, Reasons: []string{"x: " + string(st)}}
	}
	cases := []struct {
		name string
		out  SMIMEOutbound
		code string
	}{
		{"valid", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}, ""},
		{"revoked", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peer(smime.StateRevoked)}}, "201"},
		{"untrusted", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peer(smime.StateUntrusted)}}, "201"},
		{"expired", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peer(smime.StateExpired)}}, "201"},
		{"unknown status", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peer(smime.StateUnknown)}}, "202"},
		{"no certificate", SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": {Domain: "agency-b.govt.nz", State: smime.StateUnknown}}}, "201"},
		{"not looked up", SMIMEOutbound{On: true, Own: ownOK}, "201"},
		{"pipeline did not look up", SMIMEOutbound{Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}, Own: ownOK}, "201"},
		{"no own certificate", SMIMEOutbound{On: true, Own: SMIMEOwn{Domain: "agency.govt.nz", Problem: "none"}, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}, "211"},
		{"own unknown status", SMIMEOutbound{On: true, Own: SMIMEOwn{Domain: "agency.govt.nz", Problem: "crl", UnknownStatus: true}, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}, "212"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := smimeOutTx(c.out, "bob@agency-b.govt.nz")
			v := p.AtEndOfMessage(tx)
			everyRcptOnce(t, v, tx.Envelope)
			if c.code == "" {
				if v.Action != Accept || v.MainForm() != FormSMIME || len(v.Notices) != 0 {
					t.Fatalf("action %s form %s notices %+v", v.Action, v.MainForm(), v.Notices)
				}
				return
			}
			if v.Action != Discard || len(v.Copies) != 1 || v.Copies[0].Form != FormHeld || v.Copies[0].Code != c.code {
				t.Fatalf("action %s copies %+v, want held %s; reasons %q", v.Action, v.Copies, c.code, v.Reasons)
			}
			wantDomain := "agency-b.govt.nz"
			if c.code == "211" || c.code == "212" {
				wantDomain = "agency.govt.nz"
			}
			if v.Copies[0].Domain != wantDomain {
				t.Errorf("held domain %s, want %s", v.Copies[0].Domain, wantDomain)
			}
			// SECURE DELIVERY DELAYED to the sender and the sender's postmaster.
			var to []string
			for _, n := range v.Notices {
				if n.Kind != NoticeDelayed || n.Code != c.code || !slices.Equal(n.Rcpts, []string{"bob@agency-b.govt.nz"}) {
					t.Errorf("notice %+v", n)
				}
				to = append(to, n.To)
			}
			if !slices.Equal(to, []string{"alice@agency.govt.nz", "postmaster@agency.govt.nz"}) {
				t.Errorf("notices to %v", to)
			}
			if len(v.Transforms) != 0 {
				t.Errorf("a discarded message has transforms %+v", v.Transforms)
			}
		})
	}
}

// A message to our own domain, a peer, a revoked peer, a second peer and
// the internet: the plain form keeps our colleague and the internet
// address, each peer domain gets its own S/MIME copy, the revoked one is
// held; every recipient exactly once.
func TestSMIMEMixedRecipients(t *testing.T) {
	p := smimePolicy(t)
	peerC := SMIMEPeer{Domain: "agency-c.govt.nz", HasCerts: true, State: smime.StateValid, Fingerprint: "cc", Cipher: "3des-cbc"}
	revoked := SMIMEPeer{Domain: "agency-r.govt.nz", HasCerts: true, State: smime.StateRevoked}
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{
		"agency-b.govt.nz": peerValid, "agency-c.govt.nz": peerC, "agency-r.govt.nz": revoked}}
	tx := smimeOutTx(out, "colleague@agency.govt.nz", "bob@agency-b.govt.nz", "rita@agency-r.govt.nz",
		"carl@AGENCY-C.govt.nz", "x@gmail.example", "bill@agency-b.govt.nz")
	v := p.AtEndOfMessage(tx)
	everyRcptOnce(t, v, tx.Envelope)
	if v.Action != Accept || v.MainForm() != FormPlain {
		t.Fatalf("action %s form %s", v.Action, v.MainForm())
	}
	if got := v.MainRcpts(tx.Envelope); !slices.Equal(got, []string{"colleague@agency.govt.nz", "x@gmail.example"}) {
		t.Errorf("main recipients %v", got)
	}
	if len(v.Copies) != 3 {
		t.Fatalf("copies %+v", v.Copies)
	}
	b, c, r := v.Copies[0], v.Copies[1], v.Copies[2]
	if b.Form != FormSMIME || b.Domain != "agency-b.govt.nz" || !slices.Equal(b.Rcpts, []string{"bob@agency-b.govt.nz", "bill@agency-b.govt.nz"}) ||
		len(b.Transforms) != 1 || b.Transforms[0].Kind != TransformSMIMESignEncrypt || b.Transforms[0].Cert != fpPeer {
		t.Errorf("agency-b copy %+v", b)
	}
	if c.Form != FormSMIME || c.Domain != "agency-c.govt.nz" || c.Transforms[0].Cipher != "3des-cbc" {
		t.Errorf("agency-c copy %+v", c)
	}
	if r.Form != FormHeld || r.Code != "201" || !slices.Equal(r.Rcpts, []string{"rita@agency-r.govt.nz"}) {
		t.Errorf("held copy %+v", r)
	}
	if !strings.Contains(v.FormsSummary(tx.Envelope), "held 201 (agency-r.govt.nz): rita@agency-r.govt.nz") {
		t.Errorf("summary %q", v.FormsSummary(tx.Envelope))
	}
	// Two peer domains and nothing plain: the first is the main form,
	// the second a copy.
	tx = smimeOutTx(out, "carl@agency-c.govt.nz", "bob@agency-b.govt.nz")
	v = p.AtEndOfMessage(tx)
	everyRcptOnce(t, v, tx.Envelope)
	if v.MainForm() != FormSMIME || v.Transforms[0].Domain != "agency-b.govt.nz" || len(v.Copies) != 1 || v.Copies[0].Domain != "agency-c.govt.nz" {
		t.Errorf("main %+v copies %+v", v.Transforms, v.Copies)
	}
}

// Recipients the routing rules removed are not split again, and an
// [RSVPDR] receipt does not list held recipients as delivered.
func TestSMIMEAfterRouting(t *testing.T) {
	p := smimePolicy(t)
	revoked := SMIMEPeer{Domain: "agency-r.govt.nz", HasCerts: true, State: smime.StateRevoked}
	out := SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid, "agency-r.govt.nz": revoked}}
	tx := smimeOutTx(out, "bob@agency-b.govt.nz", "x@gmail.example", "rita@agency-r.govt.nz")
	tx.Classification, tx.RSVPDR = "SENSITIVE", true // R112: not to gmail
	v := p.AtEndOfMessage(tx)
	everyRcptOnce(t, v, tx.Envelope)
	if !slices.Equal(v.RemoveRcpts, []string{"x@gmail.example"}) {
		t.Fatalf("removed %v", v.RemoveRcpts)
	}
	if v.MainForm() != FormSMIME || !slices.Equal(v.MainRcpts(tx.Envelope), []string{"bob@agency-b.govt.nz"}) {
		t.Errorf("main %s %v", v.MainForm(), v.MainRcpts(tx.Envelope))
	}
	for _, n := range v.Notices {
		if n.Kind == NoticeReceipt && slices.Contains(n.Rcpts, "rita@agency-r.govt.nz") {
			t.Errorf("receipt lists a held recipient: %+v", n)
		}
	}
}

// R62: a DELIVERY RECEIPT to a peer agency's sender is signed and
// encrypted (Notice.Transforms); with the peer's certificate revoked it
// is not sent in clear but dropped, with the reason.
func TestSMIMENoticeToPeer(t *testing.T) {
	p := smimePolicy(t)
	in := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13},
		Envelope: Envelope{From: "bob@agency-b.govt.nz", Rcpts: []string{"colleague@agency.govt.nz"}},
		Headers:  hdrs("From", "bob@agency-b.govt.nz", "Subject", "[RSVPDR] minutes"), RSVPDR: true,
		Mail:     MailChecks{SPF: &AuthCheck{Result: ResultPass}},
		SMIMEOut: SMIMEOutbound{On: true, NoticeOwn: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}}
	v := p.AtEndOfMessage(in)
	if len(v.Notices) != 1 || v.Notices[0].Kind != NoticeReceipt || len(v.Notices[0].Transforms) != 1 {
		t.Fatalf("notices %+v, reasons %q", v.Notices, v.Reasons)
	}
	if tr := v.Notices[0].Transforms[0]; tr.Kind != TransformSMIMESignEncrypt || tr.Domain != "agency-b.govt.nz" || tr.Signer != fpOwn || tr.Cert != fpPeer {
		t.Errorf("notice transform %+v", tr)
	}
	in.SMIMEOut.Peers["agency-b.govt.nz"] = SMIMEPeer{Domain: "agency-b.govt.nz", HasCerts: true, State: smime.StateRevoked}
	v = p.AtEndOfMessage(in)
	if len(v.Notices) != 0 {
		t.Errorf("a receipt to a revoked peer is sent: %+v", v.Notices)
	}
	found := false
	for _, r := range v.Reasons {
		found = found || strings.Contains(r, "receipt notice to <bob@agency-b.govt.nz> not sent") && strings.Contains(r, "201")
	}
	if !found {
		t.Errorf("no reason for the dropped receipt: %q", v.Reasons)
	}
	// Out of scope: sent as before, without transforms.
	in.Envelope.From, in.Headers = "a@gmail.example", hdrs("From", "a@gmail.example", "Subject", "[RSVPDR] x")
	if v := p.AtEndOfMessage(in); len(v.Notices) != 1 || len(v.Notices[0].Transforms) != 0 {
		t.Errorf("out of scope: %+v", v.Notices)
	}
}

// A held message with the null sender: no notice to the (null) sender,
// but our own postmaster is still told SECURE DELIVERY DELAYED.
func TestSMIMEHeldNullSender(t *testing.T) {
	p := smimePolicy(t)
	tx := smimeOutTx(SMIMEOutbound{On: true, Own: ownOK}, "bob@agency-b.govt.nz")
	tx.Envelope.From = ""
	v := p.AtEndOfMessage(tx)
	if len(v.Notices) != 1 || v.Notices[0].Kind != NoticeDelayed || v.Notices[0].To != "postmaster@agency.govt.nz" {
		t.Errorf("notices %+v, reasons %q", v.Notices, v.Reasons)
	}
}
