package policy

import (
	"strings"
	"testing"
)

// R91: an exception list of domains that use S/MIME without being Secure
// Email members: by default outbound.exceptions are in scope; a set
// smime.encrypt_to is the whole list (a non-member on it gets S/MIME, a
// SEEMail member off it does not).
func TestSMIMEScopeExceptions(t *testing.T) {
	p := smimePolicy(t, `outbound.exceptions=["partner.example"]`)
	if in, why := p.SMIMEScope("partner.example", false); !in || !strings.Contains(why, "exception") {
		t.Errorf("exception domain: in %v (%s), want in scope as an exception", in, why)
	}
	if in, why := p.SMIMEScope("stranger.example", false); in {
		t.Errorf("unlisted domain without a certificate in scope: %s", why)
	}
	p = smimePolicy(t, `smime.encrypt_to=["nonmember.example", "*.partner.example"]`)
	for domain, want := range map[string]bool{"nonmember.example": true, "mx.partner.example": true, "agency-b.govt.nz": false} {
		if in, why := p.SMIMEScope(domain, domain == "agency-b.govt.nz"); in != want {
			t.Errorf("encrypt_to: %s in scope %v (%s), want %v", domain, in, why, want)
		}
	}
}
