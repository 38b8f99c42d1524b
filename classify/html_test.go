package classify

import (
	"bytes"
	"strings"
	"testing"

	nethtml "golang.org/x/net/html"
)

// renderViews renders HTML into both views, in one write and byte by byte.
func renderViews(t *testing.T, in string) (rendered, all string) {
	t.Helper()
	var r1, a1, r2, a2 collect
	feed(newHTMLViews(&r1, &a1), []byte(in))
	feed(newHTMLViews(&r2, &a2), []byte(in), 1)
	if r1.b.String() != r2.b.String() || a1.b.String() != a2.b.String() {
		t.Errorf("%q: chunking changed the views: %q/%q and %q/%q", in, r1.b.String(), a1.b.String(), r2.b.String(), a2.b.String())
	}
	return r1.b.String(), a1.b.String()
}

// TestHTMLViews checks both views of styled HTML (issue 11 point 4) and
// the HTML5 tokenizer rules of point 5.
func TestHTMLViews(t *testing.T) {
	for _, c := range []struct{ in, rendered, all string }{
		{"[SEC<span style=display:none>x</span>RET]", "[SECRET]", "[SECxRET]"},
		{"[SEC<span style=\"DISPLAY : None !important\">x</span>RET]", "[SECRET]", "[SECxRET]"},
		{"<span style='color:red;display:none'>[SECRET]</span>ok", "ok", "[SECRET]ok"},
		{"<span hidden>[SECRET]</span>", "", "[SECRET]"},
		{"<b style=visibility:hidden>a<i style=visibility:visible>b</i>c</b>", "b", "abc"},
		{"<span style=\"display&#58;none\">x</span>y", "y", "xy"},
		{"<span style=\"display:/* c */none\">x</span>y", "y", "xy"},
		{"<span style=\"mso-hide:all\">x</span><span style=\"font-size:0px\">y</span><span style=\"opacity:0\">z</span>w", "w", "xyzw"},
		// Hidden by size, colour, transform, clip or position; template
		// content and ruby annotations.
		{"[SEC<span style=\"display:inline-block;width:0;overflow:hidden\">x</span>RET]", "[SECRET]", "[SECxRET]"},
		{"a<span style=\"font-size:1px\">b</span><span style=\"font-size:0.1em\">c</span><span style=\"font-size:12px\">d</span><span style=\"font-size:2pt\">e</span>", "ad", "abcde"},
		{"a<span style=\"color:#FFF\">b</span><span style=\"color:transparent\">c</span><span style=\"color:red\">d</span>", "ad", "abcd"},
		{"a<span style=\"transform:scale(0)\">b</span><span style=\"position:absolute;left:-9999px\">c</span><span style=\"text-indent:-5px\">d</span><span style=\"clip:rect(0,0,0,0)\">e</span>", "ad", "abcde"},
		{"a<span style=\"height:0px\">b</span><span style=\"max-width:0\">c</span><span style=\"width:10px\">d</span>", "ad", "abcd"},
		{"[SEC<template>x</template>RET]", "[SECRET]", "[SECxRET]"},
		// CDATA sections, text in SVG and MathML, are in the all-text
		// view; other bogus comments (DOCTYPE, processing instructions)
		// are not text.
		{"<svg><text><![CDATA[[SECRET]]]></text></svg>", "", "[SECRET]]]"},
		{"a<!DOCTYPE html>b<?xml x?>c<![CDAT>d", "abcd", "abcd"},
		{"a<!--[if mso]><![CDATA[x]]>b<![endif]-->c<!-->d", "acd", "ax]]bcd"},
		{"[SEC<ruby>R<rp>(</rp><rt>x</rt><rp>)</rp></ruby>ET]", "[SECRET]", "[SECR(x)ET]"},
		{"<div style=display:none><p>a</p><span>b</span></div>c", "c", "\na\nb\nc"},          // hidden blocks break no line in the rendered view
		{"<span style=display:none>a</p>b</span>c", "c", "a\nbc"},                            // a stray </p> closes nothing
		{"<span style=display:none>a<br/>b</span>c", "c", "a\nbc"},                           // br is void
		{"<span style=\"display:none\"/>a</span>b", "b", "ab"},                               // '/' does not close a span
		{"<span style=display:none/>a</span>b", "ab", "ab"},                                  // "none/" is not none
		{"<span style=\"text-transform:uppercase\">[secret]</span>", "[SECRET]", "[secret]"}, // restyled
		{"<p style=text-transform:uppercase>a<span style=text-transform:none>b</span>c</p>", "\nAbC", "\nabc"},
		{"<span style=\"font-variant:small-caps\">x</span>", "X", "x"},
		{"a<!--[if mso]><p>[SECRET]</p><![endif]-->b", "ab", "a\n[SECRET]\nb"}, // Outlook renders it
		{"a<!--[if gte mso 9]>x<![endif]-->b<!--[if !mso]><!-->c<!--<![endif]-->d", "abcd", "axbcd"},
		{"a<!--[if mso]>x --> y", "a y", "ax -- y"},     // the comment ends at the first -->
		{"a<!-- x --!> b -->c", "a b -->c", "a b -->c"}, // HTML5: --!> ends a comment
		{"a<!-- x -- y -->b", "ab", "ab"},
		{"<a title=x\"y>[SECRET]</a>", "[SECRET]", "x\"y[SECRET]"}, // a quote inside an unquoted value; a title (tooltip) is all-text
		{"<a title=x'y href=\"z\">t</a>", "t", "x'yt"},
		{"<input value=\"[SECRET]\"><textarea placeholder=\"[TOP SECRET]\"></textarea>", "", "[SECRET][TOP SECRET]"}, // form field text
		{"<style>p::before{content:\"\\5B SECRET\\5D\"}</style>", "", "[SECRET]"},                                    // CSS escapes in generated content
		{"<style>p::before{content:'\\[SEC\\\nRET\\00005d'}</style>", "", "[SECRET]"},                                // escaped char, line continuation, 6 hex digits
		{"<a x\"y=\"1\">t</a>", "t", "t"},                                                                            // a quote in a name opens nothing
		{"<p =x>t", "\nt", "\nt"},
		{"&#91SECRET&#93 &lsqbx", "[SECRET] &lsqbx", "[SECRET] [x"},
		{"&lbrackSECRET&rbrack", "&lbrackSECRET&rbrack", "[SECRET]"}, // HTML5 leaves it, lenient clients do not
		{"&amp &ampx AT&T", "& &x AT&T", "& &x AT&T"},
		{"<title>[SECRET]</title>x", "\nx", "\n[SECRET]\nx"},
		{"<textarea>a<b>&lt;</textarea>c", "a<b>&lt;c", "a<b>&lt;c"},
		{"<title>a</tit</titlex</title>b", "\nb", "\na</tit</titlex\nb"},
		{"<xmp>[SECRET]</xmp><noscript>n</noscript>", "[SECRET]n", "[SECRET]n"}, // xmp is shown as it is (like pre)
		{"<plaintext>a<b>&amp;", "a<b>&amp;", "a<b>&amp;"},
		{"<" + strings.Repeat("x", 40) + " style=display:none>a</" + strings.Repeat("x", 40) + ">b", "b", "ab"},
		{"<span hidden style=display:inline>a</span>", "a", "a"},                        // a style undoes the hidden attribute
		{"a <img src=x alt=\"[SEC&#82;ET]\">b<a alt=[x]>c</a>", "a bc", "a [SECRET]bc"}, // alt: shown while images are blocked
		// Class rules of <style> blocks.
		{"<style>.h{display:none}</style>[SEC<span class=h>x</span>RET]", "[SECRET]", "[SECxRET]"},
		{"<style>/* c */ .a , span.H { visibility : hidden } .b{color:red}</style><i class='x h'>1</i><i class=a>2</i><i class=b>3</i>", "3", "123"},
		{"<style>@media screen{.h{display:none}} p.u{text-transform:uppercase}</style><p class=u>[secret]<span class=h>x</span></p>", "\n[SECRET]X", "\n[secret]x"},
		{"<style>.h{display:none} div .x{display:none} .y:hover{display:none} .a.b{display:none}</style><b class=h style=display:inline>1</b><b class=x>2</b><b class=y>3</b><b class=a>4</b>", "1234", "1234"},
		{"<span class=h>a</span><style>.h{display:none}</style><span class=h>b</span>", "a", "ab"}, // rules apply from where they are read
		{"<style>p:before{content:\"[SECRET]\"} .a{font-family:\"x;}y\";display:none}</style><p class=a>t", "", "[SECRET]\nt"},
	} {
		r, a := renderViews(t, c.in)
		if r != c.rendered || a != c.all {
			t.Errorf("HTML %q:\nrendered %q, want %q\nall      %q, want %q", c.in, r, c.rendered, a, c.all)
		}
	}
}

// TestHTMLViewsMatch checks that a marking in either view counts, through
// the lazily cloned all-text matcher.
func TestHTMLViewsMatch(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"[SEC<span style=display:none>x</span>RET]", "SECRET"},
		{"[TOP <span style=display:none>[SECRET]</span>SECRET]", "TOP SECRET,SECRET"}, // the rendered view first
		{"<span style=text-transform:uppercase>[secret]</span>", "SECRET"},
		{"<span style=text-transform:lowercase>[secret]</span>", ""},
		{"[CONFI<!--[if mso]>x<![endif]-->DENTIAL]", "CONFIDENTIAL"},
		{"&lbrackRESTRICTED&rbrack", "RESTRICTED"},
		// Only the Outlook view reads these whole.
		{"[SEC<!--[if !mso]><!-->x<!--<![endif]-->RET]", "SECRET"},
		{"[SEC<!--[if !mso]><!-->x<!--<![endif]--><!--[if mso]>RET<![endif]-->]", "SECRET"},
		{"<!--[if !mso]><!-->[secret]<!--<![endif]-->", ""},
		{"<!--[if !mso]><!-->a<!--<![endif]-->[CONFI<!--[if mso]>x<![endif]-->DENTIAL]", "CONFIDENTIAL"},
		// A downlevel-revealed block ends at <!--<![endif]-->: after it Outlook shows text again.
		{"<!--[if !mso]><!-->a<!--<![endif]-->[SEC<!--[if mso]>x<![endif]-->RET]", "SECRET"},
		{"<!--[if mso]><!-->[SEC<![endif]-->RET]", "SECRET"}, // browsers show it: "<![endif]-->" is a bogus comment
	} {
		for _, size := range []int{len(c.in), 1, 3} {
			ctx := testCtx(t)
			feed(newHTMLText(newMatcher(ctx, "body")), []byte(c.in), size)
			if got := words(ctx.col.result()); got != c.want {
				t.Errorf("%q (chunks of %d): %q, want %q", c.in, size, got, c.want)
			}
		}
	}
}

// netHTMLText is the text golang.org/x/net/html's tokenizer (browser
// rules) finds, white space collapsed, for a differential test: block
// elements separate words, the content of raw text elements and of
// title and textarea is left out. ok is false where the tokenizer alone
// does not do what a browser does: "<title/>" starts RCDATA in a browser
// (tree construction ignores the flag), not in the bare tokenizer.
func netHTMLText(in []byte) (text string, ok bool) {
	z := nethtml.NewTokenizer(bytes.NewReader(in))
	var b strings.Builder
	raw := false
	for {
		switch z.Next() {
		case nethtml.ErrorToken:
			return collapse(b.String()), true
		case nethtml.TextToken:
			if !raw {
				b.Write(z.Text())
			}
		case nethtml.StartTagToken, nethtml.EndTagToken, nethtml.SelfClosingTagToken:
			name, _ := z.TagName()
			if htmlBlock(name) {
				b.WriteByte(' ')
			}
			switch string(name) {
			case "script", "style", "xmp", "iframe", "noembed", "noframes", "title", "textarea", "plaintext":
				if z.Token().Type == nethtml.SelfClosingTagToken {
					return "", false
				}
				raw = z.Token().Type == nethtml.StartTagToken
			}
		}
	}
}

func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isHTMLSpace(byte(r)) }), " ")
}

// FuzzHTMLViews checks the HTML path: both views are the same whatever
// the chunking, the all-text view holds at least the rendered text, and
// where no style or conditional comment is involved the rendered text is
// what golang.org/x/net/html's tokenizer (browser rules) reads.
func FuzzHTMLViews(f *testing.F) {
	for _, s := range []string{
		"[SEC<span style=display:none>x</span>RET] <a title=x\"y>[SECRET]</a> a<!-- x --!> b",
		"&#91SECRET&#93 &lbrackX &ampx <p =x>t<!-->u<!--->v</p><br/>",
		"a<!--[if mso]><p>[SECRET]</p><![endif]-->b<!--[if !mso]><!-->c<!--<![endif]-->",
		"<span style=\"text-transform:uppercase\">[secret]</span><plaintext>x",
		"<title>a</tit</title><xmp><b></xmp><style>p{}</style >z</>y</ x>",
		"<style>/*x*/.h{display:none}@media x{.y{}}p.u,.v{text-transform:uppercase}</style><b class='h u'>a</b><i hidden style=display:block>b</i>",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > 4096 {
			return
		}
		var r1, a1, r2, a2 collect
		feed(newHTMLViews(&r1, &a1), in)
		v := newHTMLViews(&r2, &a2)
		chunked(in, seed, v.write)
		v.close()
		if r1.b.String() != r2.b.String() || a1.b.String() != a2.b.String() {
			t.Fatalf("chunking changed the views")
		}
		if len(r1.b.String()) > 4*len(in)+16 || len(a1.b.String()) > 4*len(in)+16 {
			t.Fatalf("output too long")
		}
		low := bytes.ToLower(in)
		for _, w := range []string{"style", "hidden", "[if", "script", "noscript", "textarea", "xmp", "plaintext", "\x00"} {
			if bytes.Contains(low, []byte(w)) {
				return
			}
		}
		if want, ok := netHTMLText(in); ok && collapse(r1.b.String()) != want {
			got := collapse(r1.b.String())
			t.Fatalf("rendered %q, x/net/html reads %q", got, want)
		}
	})
}

// TestRTFViews checks both views of RTF (\v hidden, \caps) and the HTML
// that RTF encapsulates (issue 11 point 4).
func TestRTFViews(t *testing.T) {
	for _, c := range []struct{ in, rendered, all string }{
		{`{\rtf1 [SEC{\v x}RET]}`, "[SECRET]", "[SECxRET]"},
		{`{\rtf1 [SEC\v x\v0 RET]}`, "[SECRET]", "[SECxRET]"},
		{`{\rtf1 {\v [SECRET]}ok}`, "ok", "[SECRET]ok"},
		{`{\rtf1 {\v\plain a}b}`, "ab", "ab"},
		{`{\rtf1 {\caps [secret]} {\scaps x\scaps0 y}}`, "[SECRET] Xy", "[secret] xy"},
		{`{\rtf1 [SEC{\webhidden x}RET][SEC{\deleted y}RET]}`, "[SECRET][SECRET]", "[SECxRET][SECyRET]"},
		{`{\rtf1 [SEC{\fs1 x}RET] {\fs5 a}{\fs6 b}{\fs2\plain c}\fs0 d}`, "[SECRET] bc", "[SECxRET] abcd"},
	} {
		var r1, a1, r2, a2 collect
		feed(newRTFViews(&r1, &a1), []byte(c.in))
		feed(newRTFViews(&r2, &a2), []byte(c.in), 1)
		if r1.b.String() != r2.b.String() || a1.b.String() != a2.b.String() {
			t.Errorf("%q: chunking changed the views", c.in)
		}
		if r1.b.String() != c.rendered || a1.b.String() != c.all {
			t.Errorf("RTF %q:\nrendered %q, want %q\nall      %q, want %q", c.in, r1.b.String(), c.rendered, a1.b.String(), c.all)
		}
	}
}

// TestRTFViewsMatch checks markings in either view of RTF, and in the
// HTML it encapsulates.
func TestRTFViewsMatch(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{\rtf1 [SEC{\v x}RET]}`, "SECRET"},
		{`{\rtf1 {\v [CONFIDENTIAL]}}`, "CONFIDENTIAL"},
		{`{\rtf1 {\caps [secret]}}`, "SECRET"},
		{`{\rtf1 [secret]}`, ""},
		// The RTF view reads [SECxRET]; Outlook renders the HTML, [SECRET].
		{`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}[SEC{\*\htmltag84 <span style="display:none">}x{\*\htmltag84 </span>}RET]{\*\htmltag72 </p>}}`, "SECRET"},
		// Markup only in the HTML: a marking in an attribute-free tag text.
		{`{\rtf1\ansi\fromhtml1 {\*\htmltag84 <b>[TOP SECRET]</b>}\htmlrtf {\b x}\htmlrtf0 }`, "TOP SECRET"},
		// \htmlrtf text is RTF only: in the RTF views, not the HTML.
		{`{\rtf1\ansi\fromhtml1 [RESTR\htmlrtf x\htmlrtf0 ICTED]}`, "RESTRICTED"},
		{`{\rtf1 {\*\htmltag [SECRET]}}`, "SECRET"},
		{`{\rtf1 {\*\generator [SECRET]}}`, ""},
	} {
		for _, size := range []int{len(c.in), 1, 3} {
			ctx := testCtx(t)
			feed(newRTFText(newMatcher(ctx, "body")), []byte(c.in), size)
			if got := words(ctx.col.result()); got != c.want {
				t.Errorf("%q (chunks of %d): %q, want %q", c.in, size, got, c.want)
			}
		}
	}
}

// FuzzRTFViews checks that both views of RTF are the same whatever the
// chunking, and bounded.
func FuzzRTFViews(f *testing.F) {
	for _, s := range []string{
		`{\rtf1 [SEC{\v x}RET] {\caps [secret]}\v0\caps0\plain\scaps y}`,
		`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}[SEC{\*\htmltag84 <span style="display:none">}x{\*\htmltag84 </span>}RET]\htmlrtf z\htmlrtf0}`,
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > 4096 {
			return
		}
		var r1, a1, r2, a2 collect
		feed(newRTFViews(&r1, &a1), in)
		v := newRTFViews(&r2, &a2)
		chunked(in, seed, v.write)
		v.close()
		if r1.b.String() != r2.b.String() || a1.b.String() != a2.b.String() {
			t.Fatalf("chunking changed the views")
		}
		if r1.b.Len() > 3*len(in)+16 || a1.b.Len() > 3*len(in)+16 {
			t.Fatalf("output too long")
		}
	})
}

// TestHTMLStack checks the bounded element stack: implied end tags, and
// hiding past the depth limit.
func TestHTMLStack(t *testing.T) {
	deep := strings.Repeat("<div>", maxHTMLDepth+10)
	for _, c := range []struct{ in, rendered, all string }{
		{"<p style=display:none>a<p>b", "\nb", "\na\nb"},                               // <p> closes an open p
		{"<ul><li style=display:none>a<li>b</ul>", "\n\nb", "\na\nb"},                  // <li> an open li
		{"<p style=display:none>a<table><tr><td><p>b</table>c", "\nb\nc", "\na\nb\nc"}, // a table closes an open p
		{"<li style=display:none>a<ul><li>b</ul>c", "", "\na\nb\nc"},                   // not a li outside its list
		{deep + "[SEC<span style=display:none>x</span>RET]", "\n[SECRET]", "\n[SECxRET]"},
		{strings.Repeat("<p>", 1000) + "[SEC<span style=display:none>x</span>RET]", "\n[SECRET]", "\n[SECxRET]"},
	} {
		r, a := renderViews(t, c.in)
		if r != c.rendered || a != c.all {
			t.Errorf("HTML %.60q:\nrendered %q, want %q\nall      %q, want %q", c.in, r, c.rendered, a, c.all)
		}
	}
}

// FuzzHiddenSplit: whatever is hidden inside a marking, and wherever,
// the marking is found (issue 11 point 4), in HTML and in RTF.
func FuzzHiddenSplit(f *testing.F) {
	f.Add("x", uint8(3), uint8(0))
	f.Add("<b>[", uint8(1), uint8(1))
	f.Add("}{\\b0 ]", uint8(5), uint8(2))
	f.Fuzz(func(t *testing.T, junk string, at, how uint8) {
		if len(junk) > 256 {
			return
		}
		const word = "TOP SECRET"
		i := 1 + int(at)%(len(word)-1)
		var in string
		var rtf bool
		switch how % 4 {
		case 0:
			in = "[" + word[:i] + "<span style=\"display:none\">" + nethtml.EscapeString(junk) + "</span>" + word[i:] + "]"
		case 1:
			in = "[" + word[:i] + "<!--[if mso]>" + strings.ReplaceAll(nethtml.EscapeString(junk), "-", "&#45;") + "<![endif]-->" + word[i:] + "]"
		case 2:
			in = "[" + word[:i] + "<!--[if !mso]><!-->" + nethtml.EscapeString(junk) + "<!--<![endif]-->" + word[i:] + "]"
		case 3:
			rtf = true
			esc := strings.NewReplacer(`\`, `\\`, "{", `\{`, "}", `\}`).Replace(junk)
			in = `{\rtf1 [` + word[:i] + `{\v ` + esc + `}` + word[i:] + `]}`
		}
		ctx := testCtx(t)
		m := newMatcher(ctx, "body")
		if rtf {
			feed(newRTFText(m), []byte(in))
		} else {
			feed(newHTMLText(m), []byte(in))
		}
		if got := words(ctx.col.result()); !strings.Contains(","+got+",", ","+word+",") {
			t.Fatalf("%q: %q", in, got)
		}
	})
}
