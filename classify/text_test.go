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

// TestUnfold checks iCalendar and vCard unfolding and escapes (RFC 5545
// 3.1, 3.3.11; RFC 6350 3.2, 3.4).
func TestUnfold(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SUMMARY:[TOP SEC\r\n RET]\r\n", "SUMMARY:[TOP SECRET]\r\n"},
		{"SUMMARY:[TOP\r\n\t SECRET]", "SUMMARY:[TOP SECRET]"}, // one character of the fold goes
		{"A:x\nB:y\n z", "A:x\nB:yz"},
		{"DESCRIPTION:a\\, b\\; c\\\\d\\ne\\Nf\\x", "DESCRIPTION:a, b; c\\d\ne\nf\\x"},
		{"X:[SEC\\\r\n RET]", "X:[SEC\\RET]"},
		{"X:\\\r\n n", "X:\n"}, // an escape folded in two
		{"end\r", "end\r"},
		{"end\\", "end\\"},
		{"a\r\r\n b", "a\rb"},
	} {
		if got := render(t, func(n stage) stage { return newUnfoldStage(n) }, c.in); got != c.want {
			t.Errorf("unfold %q reads %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzUnfold(f *testing.F) {
	for _, s := range []string{"SUMMARY:[TOP SEC\r\n RET]\r\nDESCRIPTION:a\\, b\\n\\\r\n n\r", "A\n\tB\\"} {
		f.Add([]byte(s), uint64(len(s)))
	}
	fuzzStage(f, func(ctx *scanCtx, next stage) stage { return newUnfoldStage(next) }, 1)
}
