package pipeline

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/certmail"
)

// answerMsg is an answer from domain's DCA address carrying certs as our
// gateway sends them (.cer and .p7c), unsigned.
func answerMsg(t *testing.T, from string, certs ...*x509.Certificate) []byte {
	t.Helper()
	a := certmail.AnswerMsg{OurDomain: "x", To: "domain-confidentiality-authority@agency-a.govt.nz", Target: "t", Certs: certs}
	content, err := a.Content()
	if err != nil {
		t.Fatal(err)
	}
	return []byte("From: " + from + "\r\nTo: domain-confidentiality-authority@agency-a.govt.nz\r\nSubject: Certificate\r\nMIME-Version: 1.0\r\n" + string(content))
}

const dcaA = "domain-confidentiality-authority@agency-a.govt.nz"

// learned records PeerLearned calls for one test.
func learned(t *testing.T) func() []string {
	var mu sync.Mutex
	var got []string
	PeerLearned = func(d string) { mu.Lock(); got = append(got, d); mu.Unlock() }
	t.Cleanup(func() { PeerLearned = nil })
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// R44, R51: a valid certificate in an answer is stored in the peer store,
// the answer consumed and the held mail of the domain woken; a second
// answer finds it known.
func TestCertAnswerStored(t *testing.T) {
	st, _ := smimeState(t)
	got := learned(t)
	b := certOf(t, "agency-b")
	_, v := runTo(t, st, "", dcaA, answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", b))
	if v.Action != policy.Discard {
		t.Fatalf("action %s, want discard (consumed); reasons %q", v.Action, v.Reasons)
	}
	certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz")
	if len(certs) != 1 || !certs[0].Equal(b) {
		t.Fatalf("peer store %d certificates", len(certs))
	}
	if g := got(); len(g) != 1 || g[0] != "agency-b.govt.nz" {
		t.Errorf("PeerLearned %v", g)
	}
	if pv := st.SMIME.Peer(t.Context(), "agency-b.govt.nz"); pv.State != smime.StateValid {
		t.Errorf("peer now %s", pv.State)
	}
	_, v = runTo(t, st, "", dcaA, answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", b))
	if !strings.Contains(strings.Join(v.Reasons, ";"), "already known [") || len(got()) != 2 {
		t.Errorf("second answer: %q, learned %v", v.Reasons, got())
	}
}

// Not used: a certificate of another domain (R45-R47 naming for the From:
// domain), one under an untrusted CA, an expired one, a revoked one; the
// answer is still consumed (logged), nothing stored, nothing woken.
func TestCertAnswerRejected(t *testing.T) {
	cases := []struct {
		name, from, cert, why string
	}{
		{"wrong domain", "domain-confidentiality-authority@agency-c.govt.nz", "agency-b", "misnamed"},
		{"untrusted", "domain-confidentiality-authority@agency-u.govt.nz", "untrusted", "untrusted: no chain to an accredited CA"},
		{"expired", "domain-confidentiality-authority@agency-e.govt.nz", "expired", "expired: expired"},
		{"revoked", "domain-confidentiality-authority@agency-r.govt.nz", "revoked", "revoked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _ := smimeState(t, `outbound.seemail_domains=["agency-b.govt.nz","agency-c.govt.nz","agency-r.govt.nz","agency-u.govt.nz","agency-e.govt.nz"]`)
			got := learned(t)
			_, v := runTo(t, st, "", dcaA, answerMsg(t, c.from, certOf(t, c.cert)))
			if v.Action != policy.Discard {
				t.Fatalf("action %s; reasons %q", v.Action, v.Reasons)
			}
			_, d, _ := strings.Cut(c.from, "@")
			if certs, _ := st.SMIME.Store.Certificates(d); len(certs) != 0 {
				t.Errorf("stored %d", len(certs))
			}
			r := strings.Join(v.Reasons, ";")
			if !strings.Contains(r, "stored []") || strings.Contains(r, "not used []") || !strings.Contains(r, c.why) {
				t.Errorf("reasons %q", r)
			}
			if len(got()) != 0 {
				t.Errorf("PeerLearned %v", got())
			}
		})
	}
}

// smime.discovery = "approve" (R54): a valid certificate waits in
// smime.pending, nothing is stored or woken.
func TestCertAnswerApprove(t *testing.T) {
	pending := t.TempDir()
	st, _ := smimeState(t, `smime.discovery="approve"`, `smime.pending="`+pending+`"`)
	got := learned(t)
	b := certOf(t, "agency-b")
	_, v := runTo(t, st, "", dcaA, answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", b))
	if v.Action != policy.Discard {
		t.Fatalf("action %s", v.Action)
	}
	if certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz"); len(certs) != 0 {
		t.Errorf("stored without approval")
	}
	if _, err := os.Stat(filepath.Join(pending, "agency-b.govt.nz", smime.Fingerprint(b)+".pem")); err != nil {
		t.Errorf("not pending: %v", err)
	}
	if len(got()) != 0 {
		t.Errorf("PeerLearned %v", got())
	}
}

// Not an answer: no certificate attachment, From: one of our domains or a
// domain out of S/MIME scope, smime.request_by_mail off, another
// recipient: the message is ordinary mail (never consumed unread).
func TestCertAnswerNotAnAnswer(t *testing.T) {
	st, _ := smimeState(t)
	plain := []byte("From: domain-confidentiality-authority@agency-b.govt.nz\r\nSubject: hello\r\n\r\nno certificate here\r\n")
	if _, v := runTo(t, st, "x@agency-b.govt.nz", dcaA, plain); v.Action == policy.Discard {
		t.Errorf("no attachment: consumed (%q)", v.Reasons)
	}
	b := certOf(t, "agency-b")
	if _, v := runTo(t, st, "", "user@agency-a.govt.nz", answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", b)); v.Action == policy.Discard {
		t.Errorf("to another address: consumed")
	}
	tx, v := runTo(t, st, "", dcaA, answerMsg(t, "domain-confidentiality-authority@internet.example", b))
	if tx.Policy().IsOurDomain("internet.example") || !strings.Contains(strings.Join(v.Reasons, ";"), "not in S/MIME scope") {
		t.Errorf("out of scope: %q", v.Reasons)
	}
	if certs, _ := st.SMIME.Store.Certificates("internet.example"); len(certs) != 0 {
		t.Errorf("stored for a domain out of scope")
	}
	off, _ := smimeState(t, "smime.request_by_mail=false")
	if _, v := runTo(t, off, "", dcaA, answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", b)); v.Action == policy.Discard {
		t.Errorf("request_by_mail off: consumed")
	}
	if certs, _ := off.SMIME.Store.Certificates("agency-b.govt.nz"); len(certs) != 0 {
		t.Errorf("request_by_mail off: stored")
	}
}

// A signed and encrypted answer (the form our notifier sends to a peer
// whose certificate it holds, R62) is read after the inbound S/MIME
// layers are removed.
func TestCertAnswerSignedEncrypted(t *testing.T) {
	st, _ := smimeState(t)
	got := learned(t)
	bID := fxID(t, "agency-b.govt.nz", "agency-b")
	msg := answerMsg(t, "domain-confidentiality-authority@agency-b.govt.nz", bID.Cert)
	_, inner, _ := strings.Cut(string(msg), "MIME-Version: 1.0\r\n")
	entity := signEncrypt(t, inner, bID, false, certOf(t, "agency-a-new"))
	_, v := runTo(t, st, "", dcaA, outerMessageTo("domain-confidentiality-authority@agency-b.govt.nz", dcaA, entity))
	if v.Action != policy.Discard {
		t.Fatalf("action %s; reasons %q", v.Action, v.Reasons)
	}
	if certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz"); len(certs) != 1 {
		t.Errorf("store %d", len(certs))
	}
	if len(got()) != 1 {
		t.Errorf("PeerLearned %v", got())
	}
}

func outerMessageTo(from, to string, entity []byte) []byte {
	return append([]byte("From: "+from+"\r\nTo: "+to+"\r\nSubject: Certificate\r\nMessage-ID: <1@test>\r\nMIME-Version: 1.0\r\n"), entity...)
}
