package message

import (
	"bytes"
	"fmt"
	"reflect"
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

// splitEvents runs a Splitter over in, written in chunks of n bytes, and
// returns what it reported: content as "c:..." and delimiters as
// "d:start-end" or "D:start-end" (closing).
func splitEvents(in []byte, boundary string, n int) []string {
	var ev []string
	var content []byte
	flush := func() {
		if len(content) > 0 {
			ev = append(ev, "c:"+string(content))
			content = content[:0]
		}
	}
	s := NewSplitter(boundary, func(p []byte) { content = append(content, p...) }, func(start, end int64, closing bool) {
		flush()
		k := "d"
		if closing {
			k = "D"
		}
		ev = append(ev, fmt.Sprintf("%s:%d-%d", k, start, end))
	})
	for p := in; len(p) > 0; {
		k := min(n, len(p))
		s.Write(p[:k])
		p = p[k:]
	}
	s.Close()
	flush()
	return ev
}

func TestSplitter(t *testing.T) {
	in := "--b\r\none\r\n--bx\r\n--b \t\r\ntwo\n--b--\r\nepilogue\r\n--b\r\n"
	// "--bx" is content; the line break before a delimiter is its own.
	want := []string{"d:0-3", "c:\r\none\r\n--bx", "d:14-21", "c:\r\ntwo", "D:26-32"}
	for _, n := range []int{len(in), 1, 2, 3, 7} {
		if got := splitEvents([]byte(in), "b", n); !reflect.DeepEqual(got, want) {
			t.Errorf("chunks of %d:\n got %q\nwant %q", n, got, want)
		}
	}
	// A preamble, and a last delimiter without its line break.
	if got := splitEvents([]byte("pre\n--b\nx\n--b"), "b", 2); !reflect.DeepEqual(got, []string{"c:pre", "d:3-7", "c:\nx", "d:9-13"}) {
		t.Errorf("preamble: %q", got)
	}
}

// FuzzSplitter: written in chunks of any size, the splitter reports what
// it reports for one write, and its delimiters are in order inside the
// input.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("--b\r\none\r\n--bx\r\n--b \t\r\ntwo\n--b--\r\nepilogue"), uint8(3))
	f.Add([]byte("pre\r\n--b\r--b\n\r\n--b-"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		if len(in) > 1<<16 {
			return
		}
		want := splitEvents(in, "b", len(in)+1)
		got := splitEvents(in, "b", int(chunk%32)+1)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunks of %d:\n got %q\nwant %q", chunk%32+1, got, want)
		}
		last := int64(-1)
		for _, e := range want {
			var k byte
			var start, end int64
			if _, err := fmt.Sscanf(e, "%c:%d-%d", &k, &start, &end); err != nil || e[0] == 'c' {
				continue
			}
			if start < last || end <= start || end > int64(len(in)) || string(in[end-1:end]) == "\n" {
				t.Fatalf("delimiter %s out of place in %q", e, in)
			}
			last = end
		}
	})
}

// Splitter.Epilogue gets every byte after the close delimiter, however the
// body is cut into writes.
func TestSplitterEpilogue(t *testing.T) {
	in := "--b\r\none\r\n--b--\r\nafter [SECRET]\r\n--b\r\nstill epilogue\r\n"
	want := "\r\nafter [SECRET]\r\n--b\r\nstill epilogue\r\n"
	for _, n := range []int{len(in), 1, 2, 3, 7, 16} {
		var epi strings.Builder
		s := NewSplitter("b", func([]byte) {}, func(int64, int64, bool) {})
		s.Epilogue = func(p []byte) { epi.Write(p) }
		for p := []byte(in); len(p) > 0; {
			k := min(n, len(p))
			s.Write(p[:k])
			p = p[k:]
		}
		s.Close()
		if epi.String() != want {
			t.Errorf("chunks of %d: epilogue %q, want %q", n, epi.String(), want)
		}
	}
}

// NearDelimiter is called once for each line that starts with the
// delimiter but is not one, whatever the chunks, and not for delimiters
// or other lines.
func TestSplitterNearDelimiter(t *testing.T) {
	in := "--b\r\none\r\n--bx\r\n--b-y\r\n--b \t junk\r\n--c\r\n- --b\r\n--b\r\ntwo\r\n--b--\r\n"
	for _, n := range []int{len(in), 1, 2, 3, 7, 16} {
		calls := 0
		s := NewSplitter("b", func([]byte) {}, func(int64, int64, bool) {})
		s.NearDelimiter = func(line []byte) {
			calls++
			if !bytes.HasPrefix(line, []byte("--b")) {
				t.Errorf("chunks of %d: near-delimiter line %q", n, line)
			}
		}
		for p := []byte(in); len(p) > 0; {
			k := min(n, len(p))
			s.Write(p[:k])
			p = p[k:]
		}
		s.Close()
		if calls != 3 {
			t.Errorf("chunks of %d: %d near-delimiter lines, want 3 (--bx, --b-y, --b with junk)", n, calls)
		}
	}
}
