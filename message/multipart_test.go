package message

import (
	"strings"
	"testing"
)

func TestMatchDelimiter(t *testing.T) {
	d := []byte("--b")
	pad := strings.Repeat(" ", MaxPadding)
	for _, c := range []struct {
		line  string
		final bool
		st, n int
	}{
		{"--b\r\n", false, Delimiter, 3},
		{"--b\n", false, Delimiter, 3},
		{"--b--\r\n", false, CloseDelimiter, 5},
		{"--b \t\r\n", false, Delimiter, 5},
		{"--b\rx", false, Delimiter, 3}, // a bare CR breaks the line
		{"--b", true, Delimiter, 3},     // at the end of the input
		{"--b", false, NeedMore, 0},
		{"--", false, NeedMore, 0},
		{"--b-", false, NeedMore, 0},
		{"--b-", true, NoDelimiter, 0},
		{"--b-x\n", false, NoDelimiter, 0},
		{"--bc\n", false, NoDelimiter, 0},
		{"--c\n", false, NoDelimiter, 0},
		{"--b" + pad + "\n", false, Delimiter, 3 + MaxPadding},
		{"--b" + pad + " \n", false, NoDelimiter, 0},
	} {
		if st, n := MatchDelimiter([]byte(c.line), d, c.final); st != c.st || n != c.n {
			t.Errorf("MatchDelimiter(%q, final %v) = %d, %d; want %d, %d", c.line, c.final, st, n, c.st, c.n)
		}
	}
}

// FuzzMatchDelimiter: a decision at the end of the input is final, and a
// delimiter's length lies within the line and starts with d.
func FuzzMatchDelimiter(f *testing.F) {
	for _, s := range []string{"--b\r\n", "--b--", "--b  \rx", "--b-", "x"} {
		f.Add([]byte(s), true)
	}
	d := []byte("--b")
	f.Fuzz(func(t *testing.T, line []byte, final bool) {
		st, n := MatchDelimiter(line, d, final)
		if final && st == NeedMore {
			t.Fatalf("%q: NeedMore at the end", line)
		}
		if (st == Delimiter || st == CloseDelimiter) && (n < len(d) || n > len(line) || string(line[:len(d)]) != string(d)) {
			t.Fatalf("%q: st %d n %d", line, st, n)
		}
	})
}
