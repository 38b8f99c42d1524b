package message

import "testing"

// The one RFC 2047 decoder (DecodeWordsFunc), as the author parser reads
// display names: words found anywhere, unpadded base64, a character split
// between two words of one charset, words of different charsets, an
// unknown charset read as UTF-8/Latin-1.
func TestDecodeWords(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"=?utf-8?q?ceo=40agency.govt.nz?=", "ceo@agency.govt.nz"},
		{"=?utf-8?b?Y2VvQGFnZW5jeS5nb3Z0Lm56?=", "ceo@agency.govt.nz"},
		{"=?utf-8?b?Y2Vv?=", "ceo"},                         // unpadded
		{"=?utf-8?q?J=C3?= =?utf-8?q?=B6rg?=", "J\u00f6rg"}, // split character joined
		{"=?iso-8859-1?q?J=F6rg?= =?utf-8?q?_=C3=B6?=", "J\u00f6rg \u00f6"},
		{"\"=?utf-8?q?CEO?=\" <x@y>", "\"CEO\" <x@y>"}, // inside quotes, as Thunderbird reads it
		{"=?x-unknown?q?caf=E9?=", "caf\u00e9"},        // unknown charset: Latin-1 fallback
		{"=?utf-8?q?bad=ZZ?=", "bad=ZZ"},
		{"not =?a word", "not =?a word"},
	} {
		if got := DecodeWords(c.in); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}
