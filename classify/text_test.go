package classify

import "testing"

// TestFlowedQuotes checks quoted format=flowed replies (RFC 3676 sections
// 4.4, 4.5).
func TestFlowedQuotes(t *testing.T) {
	for _, c := range []struct {
		in, want string
		delsp    bool
	}{
		{"> [TOP \r\n> SECRET]\r\n", "[TOP SECRET]\r\n", false},
		{">> [TOP \r\n>> SECRET]\r\n> x\r\n", "[TOP SECRET]\r\nx\r\n", false},
		{"> [TOP \r\n>> SECRET]", "[TOP \nSECRET]", false}, // depth changes: not joined
		{"> [TOP \r\nSECRET]", "[TOP \nSECRET]", false},
		{"> [SEC \r\n> RET]", "[SECRET]", true},
		{" From me \r\n more", "From me more", false}, // space-stuffed
		{"> -- \r\n> sig", "-- \r\nsig", false},
		{">\r\n> a \r\n>\r\n", "\r\na \r\n", false}, // a flowed line joins an empty one of its depth
	} {
		if got := render(t, func(n stage) stage { return newFlowedStage(c.delsp, n) }, c.in); got != c.want {
			t.Errorf("flowed %q (delsp %v) reads %q, want %q", c.in, c.delsp, got, c.want)
		}
	}
}
