package smime

import (
	"context"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
)

// R46 (RFC 3183 section 4.1): every RFC 822 address of a DCA certificate
// has domain-confidentiality-authority as its local part (any case); R47:
// one of them is in the domain itself (the spec deleted "or an ascendant
// of", so a govt.nz DCA does not name agency-a.govt.nz).
func TestCheckNamingLocalPart(t *testing.T) {
	dir := t.TempDir()
	issue := func(name, cn string, emails ...string) *Identity {
		crt, key := testpki.DomainCert(t, fixture("ca.crt"), fixture("ca.key"), dir, name, cn, emails...)
		id, err := LoadIdentity("agency-b.govt.nz", crt, key)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, c := range []struct {
		name, cn string
		emails   []string
		domain   string
		want     string // "" = named right; else a substring of the error
	}{
		{"fixture-form", DCACommonName, []string{"domain-confidentiality-authority@agency-b.govt.nz"}, "agency-b.govt.nz", ""},
		{"upper-case", DCACommonName, []string{"Domain-Confidentiality-Authority@AGENCY-B.govt.nz"}, "agency-b.govt.nz", ""},
		{"alice", DCACommonName, []string{"alice@agency-b.govt.nz"}, "agency-b.govt.nz", "local part"},
		{"alice-too", DCACommonName, []string{"domain-confidentiality-authority@agency-b.govt.nz", "alice@agency-b.govt.nz"}, "agency-b.govt.nz", "local part"},
		{"quoted-at", DCACommonName, []string{`"x@y"@agency-b.govt.nz`}, "agency-b.govt.nz", "local part"},
		{"ascendant", DCACommonName, []string{"domain-confidentiality-authority@govt.nz"}, "agency-b.govt.nz", "R47"},
		{"other-domain", DCACommonName, []string{"domain-confidentiality-authority@agency-a.govt.nz"}, "agency-b.govt.nz", "R47"},
		{"no-address", DCACommonName, nil, "agency-b.govt.nz", "R47"},
		{"wrong-cn", "alice", []string{"domain-confidentiality-authority@agency-b.govt.nz"}, "agency-b.govt.nz", "common name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := issue(c.name, c.cn, c.emails...)
			err := CheckNaming(id.Cert, c.domain)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
			// Validate carries the naming verdict: a misnamed certificate
			// from the accredited CA is not valid for the domain.
			v := &Validator{Anchors: anchors(t)}
			got := v.Validate(context.Background(), id.Cert, c.domain, nil).State
			if want := map[bool]State{true: StateValid, false: StateMisnamed}[c.want == ""]; got != want {
				t.Errorf("Validate: %q, want %q", got, want)
			}
		})
	}
}
