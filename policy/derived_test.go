package policy

import "testing"

// The trusted-list workspace (R108) is built once per load, not per
// transaction (issue 13 point 5), and a Policy built by hand still gets one.
func TestWorkspaceOncePerLoad(t *testing.T) {
	p := mustPolicy(t, `inbound.trusted_lists=["partner.example"]`)
	ws := p.workspace()
	if ws == nil || !ws.Contains("ann@partner.example") {
		t.Fatalf("workspace %v", ws)
	}
	if p.workspace() != ws {
		t.Error("workspace rebuilt on a second call")
	}
	cp := *p // as the milter copies it for the MTA's name
	if cp.workspace() != ws {
		t.Error("a copied policy rebuilt the workspace")
	}
	hand := &Policy{Inbound: InboundPolicy{TrustedLists: []string{"partner.example"}}}
	if w := hand.workspace(); w == nil || !w.Contains("ann@partner.example") {
		t.Errorf("hand-built policy: workspace %v", w)
	}
}
