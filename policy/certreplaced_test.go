package policy

import (
	"slices"
	"strings"
	"testing"
)

// Table 1, sending, "Untrusted / Unknown CA": "Auto-discover valid public
// key certificate (LDAP). Success: Send message. Notify Recipient's
// Postmaster": the message goes S/MIME to the discovered certificate and
// one notice goes to postmaster@ the peer domain, naming the untrusted
// certificate and the new one, itself signed and encrypted to it (R62).
func TestSMIMECertReplacedNotice(t *testing.T) {
	p := smimePolicy(t)
	const fpBad = "00cc000000000000000000000000000000000000000000000000000000000000"
	peer := peerValid
	peer.ReplacedUntrusted = []string{fpBad}
	out := SMIMEOutbound{On: true, Own: ownOK, NoticeOwn: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peer}}
	v := p.AtEndOfMessage(smimeOutTx(out, "bob@agency-b.govt.nz", "carol@agency-b.govt.nz"))
	if v.Action != Accept || v.MainForm() != FormSMIME {
		t.Fatalf("action %s form %s, reasons %q", v.Action, v.MainForm(), v.Reasons)
	}
	ns := noticesOf(v, NoticeCertReplaced)
	if len(ns) != 1 {
		t.Fatalf("%d cert-replaced notices, want 1: %+v", len(ns), v.Notices)
	}
	n := ns[0]
	if n.To != "postmaster@agency-b.govt.nz" || !slices.Equal(n.Rcpts, []string{"bob@agency-b.govt.nz", "carol@agency-b.govt.nz"}) {
		t.Errorf("notice to %s about %v", n.To, n.Rcpts)
	}
	if !strings.Contains(n.Reason, fpBad) || !strings.Contains(n.Reason, fpPeer) {
		t.Errorf("reason does not name both fingerprints: %q", n.Reason)
	}
	if len(n.Transforms) != 1 || n.Transforms[0].Kind != TransformSMIMESignEncrypt || n.Transforms[0].Cert != fpPeer {
		t.Errorf("notice to the peer not signed and encrypted to its new certificate (R62): %+v", n.Transforms)
	}
	if len(v.Notices) != 1 {
		t.Errorf("other notices listed: %+v", v.Notices)
	}

	// Nothing replaced: no notice.
	v = p.AtEndOfMessage(smimeOutTx(SMIMEOutbound{On: true, Own: ownOK, NoticeOwn: ownOK, Peers: map[string]SMIMEPeer{"agency-b.govt.nz": peerValid}}, "bob@agency-b.govt.nz"))
	if len(noticesOf(v, NoticeCertReplaced)) != 0 {
		t.Errorf("notice without a replaced certificate: %+v", v.Notices)
	}

	// R93: no notice for a message from the null sender.
	tx := smimeOutTx(out, "bob@agency-b.govt.nz")
	tx.Envelope.From = ""
	v = p.AtEndOfMessage(tx)
	if len(noticesOf(v, NoticeCertReplaced)) != 0 {
		t.Errorf("notice for a null-sender message: %+v, reasons %q", v.Notices, v.Reasons)
	}
}
