package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
)

// R46 (RFC 3183 section 4.1): lint refuses as our identity a certificate
// from the accredited CA whose common name is right but whose rfc822Name
// alice@agency-b.govt.nz does not have domain-confidentiality-authority as
// its local part; the same certificate with the DCA address is accepted.
func TestSMIMEIdentityLocalPart(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		email string
		ok    bool
	}{{"alice@agency-b.govt.nz", false}, {"domain-confidentiality-authority@agency-b.govt.nz", true}} {
		name, _, _ := strings.Cut(c.email, "@")
		crt, key := testpki.DomainCert(t, "../testdata/smime/ca.crt", "../testdata/smime/ca.key", dir, name, "domain-confidentiality-authority", c.email)
		_, err := Load("", []string{`domains=["agency-b.govt.nz"]`, `smime.identities=["agency-b.govt.nz:` + crt + `:` + key + `"]`})
		if c.ok {
			if err != nil {
				t.Errorf("%s: refused: %v", c.email, err)
			}
			continue
		}
		var probs Problems
		if !errors.As(err, &probs) || len(probs) != 1 || probs[0].Key != "smime.identities" || !strings.Contains(err.Error(), "local part") {
			t.Errorf("%s: got %v, want one smime.identities problem naming the local part", c.email, err)
		}
	}
}
