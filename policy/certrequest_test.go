package policy

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Certificate requests by mail (R44, R51), the engine's part.

func reqPolicy(t *testing.T, sets ...string) *Policy {
	t.Helper()
	return smimePolicy(t, append([]string{`domains=["agency.govt.nz"]`, "smime.mode=on", "smime.request_by_mail=true"}, sets...)...)
}

func noticesOf(v Verdict, k NoticeKind) []Notice {
	var out []Notice
	for _, n := range v.Notices {
		if n.Kind == k {
			out = append(out, n)
		}
	}
	return out
}

// A recipient held with 201 (no valid certificate; LDAP found none) gets
// one signed request to domain-certificate-request@PEER, Subject the
// peer's DCA address, from our sending domain; 202, 211, 212 do not (the
// peer's certificate would not help); smime.request_by_mail = false none.
func TestCertRequestNotice(t *testing.T) {
	p := reqPolicy(t)
	noCert := SMIMEPeer{Domain: "agency-b.govt.nz", State: smime.StateUnknown}
	v := p.AtEndOfMessage(smimeOutTx(SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": noCert}},
		"bob@agency-b.govt.nz", "carol@agency-b.govt.nz"))
	reqs := noticesOf(v, NoticeCertRequest)
	if len(reqs) != 1 {
		t.Fatalf("requests %+v; reasons %q", v.Notices, v.Reasons)
	}
	r := reqs[0]
	if r.To != "domain-certificate-request@agency-b.govt.nz" || r.From != "agency.govt.nz" ||
		r.Reason != "domain-confidentiality-authority@agency-b.govt.nz" || len(r.Transforms) != 0 {
		t.Errorf("request %+v", r)
	}
	if len(noticesOf(v, NoticeDelayed)) != 2 {
		t.Errorf("the DELAYED notices are still there: %+v", v.Notices)
	}

	revoked := SMIMEPeer{Domain: "agency-b.govt.nz", HasCerts: true, State: smime.StateRevoked}
	v = p.AtEndOfMessage(smimeOutTx(SMIMEOutbound{On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": revoked}}, "bob@agency-b.govt.nz"))
	if len(noticesOf(v, NoticeCertRequest)) != 1 {
		t.Errorf("revoked (201): no request: %+v", v.Notices)
	}

	unknown := SMIMEPeer{Domain: "agency-b.govt.nz", HasCerts: true, State: smime.StateUnknown}
	cases := map[string]SMIMEOutbound{
		"202 unknown status": {On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": unknown}},
		"211 no own":         {On: true, Own: SMIMEOwn{Domain: "agency.govt.nz", Problem: "none"}, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": noCert}},
		"valid":              {On: true, Own: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}},
	}
	for name, out := range cases {
		if v := p.AtEndOfMessage(smimeOutTx(out, "bob@agency-b.govt.nz")); len(noticesOf(v, NoticeCertRequest)) != 0 {
			t.Errorf("%s: request %+v", name, v.Notices)
		}
	}
	off := reqPolicy(t, "smime.request_by_mail=false")
	if v := off.AtEndOfMessage(smimeOutTx(SMIMEOutbound{On: true, Own: ownOK}, "bob@agency-b.govt.nz")); len(noticesOf(v, NoticeCertRequest)) != 0 || len(v.Copies) != 1 {
		t.Errorf("request_by_mail off: %+v", v.Notices)
	}
	// The null sender's held mail still gets its request: the request is
	// not an answer to the sender (R93 is about answers).
	tx := smimeOutTx(SMIMEOutbound{On: true, Own: ownOK}, "bob@agency-b.govt.nz")
	tx.Envelope.From = ""
	if v := p.AtEndOfMessage(tx); len(noticesOf(v, NoticeCertRequest)) != 1 {
		t.Errorf("null sender: %+v", v.Notices)
	}
}

func requestTx(from, subject string, extra ...string) Transaction {
	return Transaction{
		Envelope: Envelope{From: from, Rcpts: []string{"domain-certificate-request@agency.govt.nz"}},
		Headers:  hdrs(append([]string{"From", from, "To", "domain-certificate-request@agency.govt.nz", "Subject", subject}, extra...)...),
	}
}

// R44 converse: a request to our request address is consumed and, with
// the DCA address of one of our domains as Subject, answered to its
// sender; signed (the notifier) and encrypted when we hold the
// requester's certificate (R62), signed only otherwise.
func TestCertRequestAnswered(t *testing.T) {
	p := reqPolicy(t)
	v := p.AtEndOfMessage(requestTx("domain-confidentiality-authority@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz"))
	if v.Action != Discard {
		t.Fatalf("action %s, want discard (consumed); reasons %q", v.Action, v.Reasons)
	}
	ans := noticesOf(v, NoticeCertAnswer)
	if len(ans) != 1 || ans[0].To != "domain-confidentiality-authority@agency-b.govt.nz" || ans[0].From != "agency.govt.nz" {
		t.Fatalf("answer %+v; reasons %q", v.Notices, v.Reasons)
	}
	if len(ans[0].Transforms) != 0 {
		t.Errorf("no certificate of the requester, yet transforms %+v", ans[0].Transforms)
	}
	if !strings.Contains(strings.Join(v.Reasons, ";"), "signed only") {
		t.Errorf("reasons %q", v.Reasons)
	}
	// With the requester's certificate: signed and encrypted (R62).
	tx := requestTx("domain-confidentiality-authority@agency-b.govt.nz", "<Domain-Confidentiality-Authority@agency.govt.nz>")
	tx.SMIMEOut = SMIMEOutbound{On: true, NoticeOwn: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}
	v = p.AtEndOfMessage(tx)
	if ans := noticesOf(v, NoticeCertAnswer); len(ans) != 1 || len(ans[0].Transforms) != 1 || ans[0].Transforms[0].Kind != TransformSMIMESignEncrypt {
		t.Errorf("answer to a peer with a certificate: %+v", v.Notices)
	}
	// Auto-Submitted on the request does not stop the answer (a peer may
	// mark its request so); the answer is consumed at the other end.
	v = p.AtEndOfMessage(requestTx("dca@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz", "Auto-Submitted", "auto-generated"))
	if len(noticesOf(v, NoticeCertAnswer)) != 1 {
		t.Errorf("auto-generated request not answered: %q", v.Reasons)
	}
}

// Consumed but not answered: a Subject that is not our DCA address, a
// DCA address of another domain, the null sender, postmaster or
// MAILER-DAEMON (R93), a report, the sending agency's postmaster (R95).
func TestCertRequestNotAnswered(t *testing.T) {
	p := reqPolicy(t)
	cases := []struct {
		name string
		tx   Transaction
		why  string
	}{
		{"other subject", requestTx("dca@agency-b.govt.nz", "please send your certificate"), "is not the DCA address"},
		{"other domain", requestTx("dca@agency-b.govt.nz", "domain-confidentiality-authority@agency-b.govt.nz"), "is not the DCA address"},
		{"address among words", requestTx("dca@agency-b.govt.nz", "cert for domain-confidentiality-authority@agency.govt.nz please"), "is not the DCA address"},
		{"null sender", requestTx("", "domain-confidentiality-authority@agency.govt.nz"), "null envelope sender"},
		{"postmaster", requestTx("postmaster@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz"), "postmaster or MAILER-DAEMON"},
		{"mailer-daemon", requestTx("MAILER-DAEMON@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz"), "postmaster or MAILER-DAEMON"},
		{"report", requestTx("dca@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz", "Content-Type", "multipart/report; report-type=delivery-status"), "report"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.AtEndOfMessage(c.tx)
			if v.Action != Discard {
				t.Errorf("action %s, want discard (consumed)", v.Action)
			}
			if len(noticesOf(v, NoticeCertAnswer)) != 0 {
				t.Errorf("answered: %+v", v.Notices)
			}
			if !strings.Contains(strings.Join(v.Reasons, ";"), c.why) {
				t.Errorf("reasons %q, want %q", v.Reasons, c.why)
			}
		})
	}
	// Off: the request address is an ordinary recipient.
	off := reqPolicy(t, "smime.request_by_mail=false")
	if v := off.AtEndOfMessage(requestTx("dca@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz")); v.Action == Discard || len(v.Notices) != 0 {
		t.Errorf("off: %s %+v", v.Action, v.Notices)
	}
}

// An answer to our DCA address is consumed once the pipeline found
// certificates in it (CertAnswer); without them the message is ordinary
// mail. Other recipients of either still get the message.
func TestCertAnswerConsumed(t *testing.T) {
	p := reqPolicy(t)
	tx := Transaction{
		Envelope: Envelope{Rcpts: []string{"domain-confidentiality-authority@agency.govt.nz"}},
		Headers:  hdrs("From", "domain-confidentiality-authority@agency-b.govt.nz", "Subject", "Certificate"),
	}
	if v := p.AtEndOfMessage(tx); v.Action == Discard {
		t.Errorf("no certificates found, yet consumed: %q", v.Reasons)
	}
	tx.CertAnswer = &CertAnswerFacts{Domain: "agency-b.govt.nz", Certs: 1, Stored: []string{"8c3035270422785c"}}
	v := p.AtEndOfMessage(tx)
	if v.Action != Discard || len(v.Notices) != 0 || !strings.Contains(strings.Join(v.Reasons, ";"), "certificate answer from agency-b.govt.nz consumed") {
		t.Errorf("answer: %s %+v %q", v.Action, v.Notices, v.Reasons)
	}
	tx.Envelope.Rcpts = append(tx.Envelope.Rcpts, "alice@agency.govt.nz")
	v = p.AtEndOfMessage(tx)
	if v.Action != Accept || len(v.RemoveRcpts) != 1 || v.RemoveRcpts[0] != "domain-confidentiality-authority@agency.govt.nz" {
		t.Errorf("with another recipient: %s remove %v", v.Action, v.RemoveRcpts)
	}
	req := requestTx("dca@agency-b.govt.nz", "domain-confidentiality-authority@agency.govt.nz")
	req.Envelope.Rcpts = append(req.Envelope.Rcpts, "alice@agency.govt.nz")
	v = p.AtEndOfMessage(req)
	if v.Action != Accept || len(v.RemoveRcpts) != 1 || len(noticesOf(v, NoticeCertAnswer)) != 1 {
		t.Errorf("request with another recipient: %s remove %v notices %+v", v.Action, v.RemoveRcpts, v.Notices)
	}
	if !p.IsCertAnswerAddress("Domain-Confidentiality-Authority@Agency.govt.nz") || p.IsCertAnswerAddress("domain-confidentiality-authority@agency-b.govt.nz") {
		t.Error("IsCertAnswerAddress")
	}
}
