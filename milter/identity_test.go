package milter

import (
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// R108 through the one author parser (issue 12): a workspace domain's mail
// loses its 002/005 only when From: names exactly that one author; an
// ambiguous or impersonating From: keeps its warning.
func TestGradeWarningWorkspaceNeedsOneAuthor(t *testing.T) {
	p := testPolicy(t, `inbound.trusted_lists=["partner.example"]`)
	v := policy.Verdict{WarningCode: "005", WarningMode: "wrap"}
	for _, c := range []struct {
		from []string
		mode notify.Mode
	}{
		{[]string{"Smith, Ann <ann@Partner.example.>"}, ""},
		{[]string{`"ceo@agency.govt.nz" <ann@partner.example>`}, "wrap"},
		{[]string{"ann@partner.example, ceo@agency.govt.nz"}, "wrap"},
		{[]string{"ann@partner.example", "ann@partner.example"}, "wrap"},
		{[]string{`"Ann <ann@partner.example>`}, "wrap"},
	} {
		var hs []policy.Header
		for _, f := range c.from {
			hs = append(hs, policy.Header{Name: "From", Value: f})
		}
		if w := GradeWarning(p, v, hs); w.Mode != c.mode {
			t.Errorf("From %q: mode %q, want %q", c.from, w.Mode, c.mode)
		}
	}
}
