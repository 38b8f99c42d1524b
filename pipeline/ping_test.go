package pipeline

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Signed ping through the pipeline (R96-R99, policy/ping.go): the S/MIME
// facts are there when the engine decides the ping, the signer is learned
// from a verified ping, and the answer's transform names the certificate
// just learned.

func pingAnswer(t *testing.T, v policy.Verdict) policy.Notice {
	t.Helper()
	if v.Action != policy.Discard || len(v.Notices) != 1 || v.Notices[0].Kind != policy.NoticePing {
		t.Fatalf("verdict %s notices %+v, want the ping consumed and answered; reasons %q", v.Action, v.Notices, v.Reasons)
	}
	return v.Notices[0]
}

func TestSignedPingPipeline(t *testing.T) {
	// agency-b is outside smime.encrypt_to: only R98 makes the pipeline
	// look its certificate up for the answer.
	st, _ := smimeState(t, `smime.encrypt_to=["agency-c.govt.nz"]`)
	b := fxID(t, "agency-b.govt.nz", "agency-b")
	msg := outerMessage("ping@agency-b.govt.nz", signEncrypt(t, innerText, b, false, certOf(t, "agency-a-new")))
	_, v := runTo(t, st, "ping@agency-b.govt.nz", "ping@agency-a.govt.nz", msg)
	n := pingAnswer(t, v)
	if len(n.Transforms) != 1 {
		t.Fatalf("answer transforms %+v, want smime-sign-encrypt; reasons %q", n.Transforms, v.Reasons)
	}
	tr := n.Transforms[0]
	if tr.Kind != policy.TransformSMIMESignEncrypt || tr.Domain != "agency-b.govt.nz" || tr.Cert != smime.Fingerprint(certOf(t, "agency-b")) ||
		tr.Signer != smime.Fingerprint(certOf(t, "agency-a-new")) {
		t.Errorf("answer transform %+v, want signed by agency-a-new, encrypted to agency-b", tr)
	}
	if certs, _ := st.SMIME.Store.Certificates("agency-b.govt.nz"); len(certs) != 1 || !strings.Contains(strings.Join(v.Reasons, "\n"), "learned the ping signer's certificate") {
		t.Errorf("the ping's signer was not learned (R50) or not logged: %d certificates, reasons %q", len(certs), v.Reasons)
	}
	if v.WarningCode != "" || strings.Contains(strings.Join(v.Reasons, "\n"), "UNVERIFIED") {
		t.Errorf("other rules ran on the ping (R97): warning %q reasons %q", v.WarningCode, v.Reasons)
	}
	// The transform runs: the notifier's SignEncryptMessage opens with
	// agency-b's key.
	out, err := st.SMIME.SignEncryptMessage([]byte("From: postmaster@agency-a.govt.nz\r\nTo: ping@agency-b.govt.nz\r\nSubject: PING REPLY\r\nContent-Type: text/plain\r\n\r\nGateway software: x\r\n"), tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, signed := openSMIME(t, out, b); !strings.Contains(string(signed.Content), "Gateway software: x") {
		t.Errorf("signed content %q", signed.Content)
	}
}

// A ping signed by a revoked certificate (the CRL lists it): answered as
// an unsigned ping, in clear (agency-r outside S/MIME scope here), saying
// 101; the certificate is not learned.
func TestRevokedPingPipeline(t *testing.T) {
	st, _ := smimeState(t, `outbound.seemail_domains=["agency-c.govt.nz"]`)
	r := fxID(t, "agency-r.govt.nz", "revoked")
	msg := outerMessage("ping@agency-r.govt.nz", signEncrypt(t, innerText, r, false, certOf(t, "agency-a-new")))
	_, v := runTo(t, st, "ping@agency-r.govt.nz", "ping@agency-a.govt.nz", msg)
	n := pingAnswer(t, v)
	if len(n.Transforms) != 0 || !strings.Contains(n.Reason, "not verified") || !strings.Contains(n.Reason, "101") {
		t.Errorf("revoked ping's answer %+v", n)
	}
	if certs, _ := st.SMIME.Store.Certificates("agency-r.govt.nz"); len(certs) != 0 {
		t.Error("a revoked certificate was learned from a ping")
	}
}
