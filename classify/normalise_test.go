package classify

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// normalised runs the normaliser over in, written in chunks of size
// (0: one write).
func normalised(in []byte, size int) string {
	var n normaliser
	var out bytes.Buffer
	emit := func(b []byte) { out.Write(b) }
	for len(in) > 0 {
		k := len(in)
		if size > 0 {
			k = min(k, size)
		}
		n.write(in[:k], emit)
		in = in[k:]
	}
	n.flush(emit)
	return out.String()
}

// referenceNormalise is the normaliser's definition on a whole text:
// filter, NFKC, filter again.
func referenceNormalise(in []byte) string {
	if bytes.Contains(in, rloBytes) {
		return normalised(in, 0) // overrides: checked by TestNormaliser's cases
	}
	b := filterAppend(nil, in)
	b = norm.NFKC.Append(nil, b...)
	var n normaliser
	// Then Latin lookalikes, then the combining marks on ASCII.
	return string(n.stripMarks(n.latin(filterInPlace(b))))
}

// TestNormaliser checks the reader's view of text (issue 11 point 3) in
// one write and across every chunk boundary.
func TestNormaliser(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain [SECRET] text", "plain [SECRET] text"},
		{"[SEC\u200bRET] [SE\u00adCRET] [SEC\u200d\u200cRET] [S\u034fECRET] [SEC\u2060RET] [\ufeffSECRET]", "[SECRET] [SECRET] [SECRET] [SECRET] [SECRET] [SECRET]"},
		{"[\u202cSECRET\u202d] [\u2066SE\u200fCRET\u2069] [SECRET\ufe0f] [SEC\U000E0041RET] [SEC\u061cRET]", "[SECRET] [SECRET] [SECRET] [SECRET] [SECRET]"},
		// A right-to-left override is read as displayed (reversed, brackets mirrored).
		{"[\u202eTERCES\u202c] \u202e[TERCES]\u202c [SEC\u202eTER\u202c] [\u202eSECRET\u202c]", "[SECRET] [SECRET] [SECRET] [TERCES]"},
		{"[\u202eTERCES]\nx \u202eab\u2029cd", "[[SECRET\nx ba\ncd"},      // ends at a paragraph end
		{"\u202e" + strings.Repeat("ab", 200), strings.Repeat("ab", 200)}, // too long: as stored
		{"\u202e\uff3b\uff34\uff25\uff22\uff3d\u202c", "[BET]"},
		{"[TOP\u00a0SECRET] [TOP\u3000SECRET] [TOP\u2003SECRET] [TOP\u202fSECRET] [TOP\u1680SECRET]", "[TOP SECRET] [TOP SECRET] [TOP SECRET] [TOP SECRET] [TOP SECRET]"},
		{"[TOP\u2028SECRET] a\u2029b\u0085c", "[TOP\nSECRET] a\nb\nc"},
		{"\uff3b\uff33\uff25\uff23\uff32\uff25\uff34\uff3d", "[SECRET]"},
		{"\uff3b\uff53\uff45\uff43\uff52\uff45\uff54\uff3d", "[secret]"},                        // still lower case (R30)
		{"caf\u0065\u0301 \u00e9 \u212b", "caf\u00e9 \u00e9 \u00c5"},                            // NFKC composes
		{"\u2460 \ufb01 \u00a8", "1 fi  "},                                                      // the diaeresis a combining mark on a space
		{"[S\u0332E\u0332C\u0332R\u0332E\u0332T\u0332] [S\u0336ECRET]", "[SECRET] [SECRET]"},    // underlined, struck through
		{"[S\u0301ECRET] \u0915\u093f \u05e9\u05c1", "[\u015aECRET] \u0915\u093f \u05e9\u05c1"}, // composed; other scripts' marks kept
		{"\xff[SECRET]\xc3", "\ufffd[SECRET]\ufffd"},                                            // invalid bytes, no crash
		{"\u30fc\u30b7[SECRET]", "\u30fc\u30b7[SECRET]"},
		{"[SE\u0421RET] [\u03a4\u039f\u03a1 SECRET] \u0441\u043e\u043a", "[SECRET] [TOP SECRET] \u0441\u043e\u043a"}, // Latin lookalikes; lower case kept
		{strings.Repeat("\u0301", 3000) + "x", ""},                                                                   // pathological: see below
	} {
		want := c.want
		if want == "" {
			want = referenceNormalise([]byte(c.in))
		}
		for _, size := range []int{0, 1, 2, 3, 5, 7, 64} {
			if got := normalised([]byte(c.in), size); got != want {
				t.Errorf("%.40q in chunks of %d: %.60q, want %.60q", c.in, size, got, want)
			}
		}
	}
}

// TestNormaliserMatches checks the matcher on normalised text.
func TestNormaliserMatches(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"[SEC\u200bRET]", "SECRET"},
		{"[TOP\u00a0\u00a0SECRET]", "TOP SECRET"},
		{"\uff3bＴＯＰ\u3000ＳＥＣＲＥＴ\uff3d", "TOP SECRET"},
		{"\uff3bｓｅｃｒｅｔ\uff3d", ""},
		{"[IN-CONFIDENCE\uff1aSTAFF]", "IN-CONFIDENCE:STAFF"},
		{"[\u00adSECRET\u00ad]", "SECRET"},
	} {
		for _, size := range []int{len(c.in), 1, 2, 3} {
			ctx := testCtx(t)
			feed(newMatcher(ctx, "body"), []byte(c.in), size)
			if got := words(ctx.col.result()); got != c.want {
				t.Errorf("%q (chunks of %d): %q, want %q", c.in, size, got, c.want)
			}
		}
	}
}

// FuzzNormaliser: whatever the chunking, the output is the whole-text
// definition, and it never grows beyond NFKC's bound.
func FuzzNormaliser(f *testing.F) {
	for _, s := range []string{
		"[SEC\u200bRET] [TOP\u00a0SECRET] \uff3b\uff33\uff25\uff23\uff32\uff25\uff34\uff3d",
		"e\u0301\u0302\u0303 \ufdfa \xff\xc3 \u2028\u0085",
		strings.Repeat("a\u0301", 40),
		"[\u202eTERCES\u202c] \u202e[x\u2029y\u0085\r\n\u202e" + strings.Repeat("z", 300),
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		if len(in) > 1<<14 {
			return
		}
		whole := normalised(in, 0)
		if got := normalised(in, int(size%16)+1); got != whole {
			t.Fatalf("chunks of %d: %q, one write: %q", size%16+1, got, whole)
		}
		if len(in) < maxNormHold {
			if ref := referenceNormalise(in); whole != ref {
				t.Fatalf("%q, definition %q", whole, ref)
			}
		}
		if len(whole) > 18*len(in)+16 {
			t.Fatalf("%d bytes out for %d in", len(whole), len(in))
		}
	})
}
