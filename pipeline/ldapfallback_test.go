package pipeline

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Issue 15, "directory down (timeout, fallback to the mail request)": a
// peer in S/MIME scope with no certificate, the only LDAP directory down:
// discovery is tried and fails, the recipient is held with 201 (Table 1)
// and a signed certificate request goes to domain-certificate-request@
// the peer (R44, R51) in the same verdict.
func TestLDAPDownFallsBackToMailRequest(t *testing.T) {
	f := newSMIMEState(t, nil,
		`outbound.seemail_domains=["agency-b.govt.nz", "agency-e.govt.nz", "agency-z.govt.nz"]`,
		`smime.ldap=["ldap://127.0.0.1:1"]`, `smime.ldap_timeout="1s"`)
	if f.st.SMIME.Discoverer == nil {
		t.Fatal("smime.ldap set but no discoverer")
	}
	tx, v := runOutbound(t, f.st, "minutes", "zed@agency-z.govt.nz")
	defer tx.Close()
	held := false
	for _, c := range v.Copies {
		if c.Form == policy.FormHeld && c.Code == "201" && len(c.Rcpts) == 1 && c.Rcpts[0] == "zed@agency-z.govt.nz" {
			held = true
		}
	}
	if !held {
		t.Fatalf("not held with 201: action %s copies %+v reasons %q", v.Action, v.Copies, v.Reasons)
	}
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "LDAP discovery") {
		t.Errorf("the reasons do not say discovery was tried: %q", v.Reasons)
	}
	requests := 0
	for _, n := range v.Notices {
		if n.Kind == policy.NoticeCertRequest {
			requests++
			if n.To != "domain-certificate-request@agency-z.govt.nz" {
				t.Errorf("request to %q", n.To)
			}
		}
	}
	if requests != 1 {
		t.Fatalf("%d certificate requests, want 1: %+v", requests, v.Notices)
	}
}
