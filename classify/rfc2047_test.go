package classify

import (
	"strings"
	"testing"
)

// TestRFC2047 checks encoded words decoded as mail clients do (issue 11
// point 5).
func TestRFC2047(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"=?utf-8?q?=5BSECRET=5D?=", "[SECRET]"},
		{"=?UTF-8?B?W1NFQ1JFVF0=?=", "[SECRET]"},
		{"=?utf-8?b?W1NFQ1JFVF0?=", "[SECRET]"},                  // unpadded base64
		{"=?utf-8?b?W1NFQ1J FVF0?=", "=?utf-8?b?W1NFQ1J FVF0?="}, // a space: not a word
		{"=?utf-8?b?W1NF!Q1JFVF0?=", "[SECRET]"},                 // a stray character skipped
		{"=?utf-8?q?[TOP_?= =?utf-8?q?SECRET]?=", "[TOP SECRET]"},
		{"=?iso-8859-1?q?[TOP_?=\r\n =?utf-8?b?U0VDUkVUXQ?=", "[TOP SECRET]"}, // different charsets
		{"=?utf-8?q?=E2=80?= =?utf-8?q?=8B?=x", "\u200bx"},                    // a character split between words
		{"=?iso-8859-1?q?caf=E9?= =?koi8-r?b?wcI=?=", "caféаб"},
		{"Re:=?utf-8?q?[SECRET]?=", "Re:[SECRET]"},               // no space before it
		{"\"=?utf-8?q?[SECRET]?=\" <a@b>", "\"[SECRET]\" <a@b>"}, // inside a quoted string
		{"a =?utf-8*en?q?[SECRET]?= b", "a [SECRET] b"},          // RFC 2231 language
		{"=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"},               // text between words stays
		{"=?bogus?q?[SECRET]?=", "[SECRET]"},
		{"=?utf-8?x?[SECRET]?= =? =?utf-8?q?", "=?utf-8?x?[SECRET]?= =? =?utf-8?q?"},
		{"=?utf-8?q?=ZZ=5B?=", "=ZZ["},
		{"plain", "plain"},
	} {
		ctx := testCtx(t)
		if got := ctx.decodeRFC2047(c.in); got != c.want {
			t.Errorf("%q decodes to %q, want %q", c.in, got, c.want)
		}
	}
	ctx := testCtx(t)
	long := strings.Repeat("=?utf-8?b?W1NFQ1JFVF0?= ", 1000)
	if got := ctx.decodeRFC2047(long); got != strings.Repeat("[SECRET]", 1000)+" " {
		t.Errorf("long run: %.40q", got)
	}
}

// FuzzRFC2047 checks that decoding never fails and never grows much.
func FuzzRFC2047(f *testing.F) {
	for _, s := range []string{"=?utf-8?q?[TOP_?= =?utf-8?b?U0VDUkVUXQ?=", "Re:=?iso-8859-1?q?caf=E9?= =?x?b?W1?=", "=?=?utf-8?q?=?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		ctx := testCtx(t)
		if out := ctx.decodeRFC2047(s); len(out) > 4*len(s)+16 {
			t.Fatalf("%d bytes from %d", len(out), len(s))
		}
	})
}
