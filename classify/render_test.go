package classify

import (
	"strings"
	"testing"
)

func render(t *testing.T, mk func(next stage) stage, in string) string {
	t.Helper()
	var whole, bytewise collect
	feed(mk(&whole), []byte(in))
	feed(mk(&bytewise), []byte(in), 1)
	if whole.b.String() != bytewise.b.String() {
		t.Errorf("%q: %q in one write, %q byte by byte", in, whole.b.String(), bytewise.b.String())
	}
	return whole.b.String()
}

// TestHTMLText checks the rendered text of HTML (R33).
func TestHTMLText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"[SEC<b></b>RET]", "[SECRET]"},
		{"<p>a</p><p>b</p>", "\na\nb"}, // trailing white space is not emitted
		{"a<br>b<br/>c", "a\nb\nc"},
		{"a  \r\n\t b", "a b"},
		{"[TOP\r\n  SECRET]", "[TOP SECRET]"},
		// A no-break space does not collapse (the normaliser reads U+00A0 as a space).
		{"[TOP&nbsp;SECRET] [TOP\u00a0SECRET]", "[TOP SECRET] [TOP\u00a0SECRET]"},
		{"a&nbsp;&nbsp;b", "a  b"},
		{"&#91;&#x5B;&#X5b;&lbrack;&lsqb;&rsqb;&#93", "[[[[[]]"},
		{"&amp;#91; &lt;b&gt; &quot;&apos; &eacute; &CounterClockwiseContourIntegral;", "&#91; <b> \"' é ∳"},
		{"&#128; &#0; &#xD800; &#1114112;", "€ \uFFFD \uFFFD \uFFFD"}, // HTML5 rules via html.UnescapeString
		{"AT&T &ampx &unknown; & &;", "AT&T &x &unknown; & &;"},
		{"a < b > c <3", "a < b > c <3"},
		{"<!-- [SECRET] -->x<!---->y<!-->z<!--->w", "xyzw"},
		{"<!DOCTYPE html><?xml version='1.0'?>x", "x"},
		{"<script>if (a</b) x = '</scr' + 'ipt>';</script >x", "x"},
		{"<style>p{}</style><STYLE type=x>[SECRET]</Style>y", "y"},
		{"<a href=\"x>y\" title='[SECRET]'>t</a>", "t"},
		{"<img alt=[SECRET]>z", "z"},
		{"</>x</ bogus>y", "xy"},
		{"<p\n class=x>q", "\nq"},
		{"caf\xc3\xa9 \xc2", "caf\u00e9 \xc2"},
		{"&" + strings.Repeat("a", 50), "&" + strings.Repeat("a", 50)},
	} {
		if got := render(t, func(n stage) stage { return newHTMLText(n) }, c.in); got != c.want {
			t.Errorf("HTML %q renders %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFlowed checks the soft line breaks of format=flowed (RFC 3676).
func TestFlowed(t *testing.T) {
	for _, c := range []struct {
		in, want string
		delsp    bool
	}{
		{"[TOP \r\nSECRET]\r\nnext\r\n", "[TOP SECRET]\r\nnext\r\n", false},
		{"[TOP \nSECRET]", "[TOP SECRET]", false},
		{"[SEC \r\nRET]", "[SECRET]", true},
		{"-- \r\nsig", "-- \r\nsig", false},
		{"a  \r\nb", "a  b", false},
		{"a \r \r\nb\r\r\n", "a \r b\r\r\n", false},
		{"end ", "end ", false},
	} {
		if got := render(t, func(n stage) stage { return newFlowedStage(c.delsp, n) }, c.in); got != c.want {
			t.Errorf("flowed %q (delsp %v) reads %q, want %q", c.in, c.delsp, got, c.want)
		}
	}
}

// TestRTFText checks the rendered text of RTF (R33).
func TestRTFText(t *testing.T) {
	deep := strings.Repeat("{", maxRTFDepth+100) + `a{\*\x [SECRET]}b{\fonttbl [X]}c` + strings.Repeat("}", maxRTFDepth+100) + "d"
	for _, c := range []struct{ in, want string }{
		{`{\rtf1 \'5bSECRET\'5d}`, "[SECRET]"},
		{`{\rtf1 \u91?TOP SECRET\u93?}`, "[TOP SECRET]"},
		{`{\rtf1 {\b [SEC}RET]}`, "[SECRET]"},
		{"{\\rtf1 [SEC\r\nRET]}", "[SECRET]"},
		{`{\rtf1{\fonttbl{\f0 [A];}}{\colortbl;\red1;}{\stylesheet{x}}{\info{\title t}}{\*\generator g;}{\pict 0a0b}x}`, "x"},
		{`{\rtf1 a\par b\line c\tab d\~e\-f\_g\{\}\\}`, "a\nb\nc\td ef-g{}\\"},
		{`{\rtf1\uc2 \u8220\'93\'94x\uc0\u91\u93 y}`, "\u201cx[]y"},
		{`{\rtf1 \u-10179?\u-8704?}`, "\U0001F600"},
		{`{\rtf1 \u-10179?x}`, "\uFFFDx"},
		{`{\rtf1 \u8221 {\u8221?x}}`, "\u201d\u201dx"}, // a group ends the fallback
		{`{\rtf1 a\bin4 {}\\b}`, "ab"},
		{`{\rtf1\ansi\ansicpg1251 \'c0\'e1 \ansicpg1252\'e9}`, "Аб é"},
		{`{\rtf1 caf` + "\xe9" + `}`, "café"},
		{`{\rtf1 \lquote x\rquote\ldblquote\rdblquote\emdash\endash\bullet}`, "\u2018x\u2019\u201c\u201d\u2014\u2013\u2022"},
		{`{\rtf1 \'zz\'5}`, "zz"},
		{`{\rtf1 \abcdefghijklmnopqrstuvwxyzabcdefghijklmnop x}`, "x"},
		{`{\rtf1 \u99999999999999 x}`, "\uFFFD"},
		{"}}}{x", "x"},
		{deep, "abcd"},
	} {
		if got := render(t, func(n stage) stage { return newRTFText(n) }, c.in); got != c.want {
			t.Errorf("RTF %.60q renders %q, want %q", c.in, got, c.want)
		}
	}
}

// TestMessages covers header and MIME structure cases; want lists the
// markings as WORD@WHERE.
func TestMessages(t *testing.T) {
	long := strings.Repeat("word ", maxField/5+10)
	for _, c := range []struct {
		name, msg, want string
		problems        int
		attach          bool
	}{
		{"mbox From_ line", "From alice@example Mon Jan 1 00:00:00 2025\nSubject: [SECRET]\n\nx", "SECRET@subject", 0, false},
		{"obsolete space before colon", "Subject : [SECRET]\n\nx", "SECRET@subject", 0, false},
		{"subject repeated", "Subject: [SECRET]\nSubject: [RESTRICTED]\n\n", "SECRET@subject,RESTRICTED@subject", 0, false},
		{"overlong subject", "Subject: " + long + "[TOP\n SECRET]\n\n", "TOP SECRET@subject", 0, false},
		{"overlong subject split marking", "Subject: " + strings.Repeat("x", maxField-3) + " [TOP SECRET]\n\n", "TOP SECRET@subject", 0, false},
		{"overlong content type", "Content-Type: text/plain; x=\"" + strings.Repeat("y", maxField) + "\"\n\n[SECRET]", "SECRET@body", 1, false},
		{"empty subject fold", "Subject:\n [SECRET]\n\n", "SECRET@subject", 0, false},
		{"whitespace first line", " junk\nSubject: [SECRET]\n\n", "SECRET@subject", 0, false},
		{"lone CR ends header", "Subject: x\n\r[SECRET]", "SECRET@body", 0, false},
		{"no body", "Subject: [SECRET]", "SECRET@subject", 0, false},
		{"header only, no colon", "[SECRET]", "SECRET@body", 0, false},
		{"part subject ignored", "Content-Type: multipart/mixed; boundary=b\n\n--b\nSubject: [SECRET]\n\nx\n--b--\n", "", 0, false},
		{"padding and first-line boundary", "Content-Type: multipart/mixed; boundary=\"b c\"\n\n--b c \t\n\n[SECRET]\n--b c-- \n", "SECRET@body/part 1 (text/plain)", 0, false},
		{"boundary prefix", "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bX [SECRET]\n--b-x\n--b--\n", "SECRET@body/part 1 (text/plain)", 1, false}, // near-delimiter lines: unreadable
		{"empty parts", "Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\n[SECRET]\n--b--\n", "SECRET@body/part 2 (text/plain)", 0, false},
		{"part without header", "Content-Type: multipart/mixed; boundary=b\n\n--b\n[SECRET]\n--b--", "SECRET@body/part 1 (text/plain)", 0, false},
		{"lenient content type", "Content-Type: text/html; charset=\"utf-8\"; charset=x; ;\n\n<b>[SECRET]</b>", "SECRET@body", 1, false}, // the charset given twice: unreadable
		{"bad content type", "Content-Type: garbage\n\n[SECRET]", "SECRET@body", 1, false},
		{"unknown transfer encoding", "Content-Transfer-Encoding: x-uuencode\n\n[SECRET]", "SECRET@body", 1, false},
		{"base64 multipart", "Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines([]byte("--b\r\n\r\n[SECRET]\r\n--b--\r\n")), "SECRET@body/part 1 (text/plain)", 0, false},
		{"message/rfc822 at top", "Content-Type: message/rfc822\n\nSubject: [SECRET]\n\n[RESTRICTED]", "SECRET@message/rfc822 subject (part 1),RESTRICTED@body/part 1.1 (text/plain)", 0, false},
		{"gb2312 body", "Content-Type: text/plain; charset=gb2312\n\n\xd6\xd0[SECRET:\xd6\xd0]", "SECRET:中@body", 0, false},
		{"koi8-r subject", "Subject: =?koi8-r?B?W1NFQ1JFVDrB0l0=?=\n\n", "SECRET:ар@subject", 0, false},
		{"utf-32 body", "Content-Type: text/plain; charset=utf-32\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines([]byte("\x00\x00\x00[\x00\x00\x00S\x00\x00\x00E\x00\x00\x00C\x00\x00\x00R\x00\x00\x00E\x00\x00\x00T\x00\x00\x00]")), "SECRET@body", 0, false},
		{"octet-stream .txt skipped", "Content-Type: application/octet-stream; name=a.txt\n\n[SECRET]", "", 0, false},
		{"octet-stream .txt scanned", "Content-Type: application/octet-stream; name=a.txt\n\n[SECRET]", "SECRET@attachment a.txt", 0, true},
		{"octet-stream winmail.dat", "Content-Type: application/octet-stream; name=winmail.dat\n\nxx", "", 1, false},
		{"nested attachment label", "Content-Type: message/rfc822\nContent-Disposition: attachment; filename=a.eml\n\n" +
			"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment; filename=b.txt\n\n[SECRET]\n--b\n\n[RESTRICTED]\n--b--\n",
			"SECRET@attachment a.eml / attachment b.txt,RESTRICTED@attachment a.eml part 1.2 (text/plain)", 0, true},
		{"encoded filename", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.txt?=\"\nContent-Disposition: attachment\n\n[SECRET]\n--b--\n", "SECRET@attachment résumé.txt", 0, true},
		// The message's own text (its whole body, or one form of it in a
		// multipart/alternative) is body, "attachment" or not.
		{"body as attachment", "Content-Type: text/plain\nContent-Disposition: attachment; filename=notes.txt\n\n[SECRET]", "SECRET@body", 1, false},
		{"alternative as attachment", "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/html\nContent-Disposition: attachment\n\n<p>[SECRET]</p>\n--b--\n", "SECRET@body/part 2 (text/html)", 1, false},
		{"mixed text attachment", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\n[SECRET]\n--b--\n", "", 0, false}, // R34: an attachment, not scanned by default
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Classify(strings.NewReader(crlf(c.msg)), Options{ScanAttachments: c.attach})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range res.Markings {
				w := m.Word
				if m.Endorsement != "" {
					w += ":" + m.Endorsement
				}
				got = append(got, w+"@"+m.Where)
			}
			if strings.Join(got, ",") != c.want || len(res.Problems) != c.problems {
				t.Errorf("got %q, problems %q; want %q and %d problems", got, res.Problems, c.want, c.problems)
			}
		})
	}
}

// TestDepthLimit nests multiparts beyond MaxDepth: the walk stops
// descending, reads the rest as plain text and still finds the marking.
func TestDepthLimit(t *testing.T) {
	var b strings.Builder
	for i := 0; i < MaxDepth+5; i++ {
		b.WriteString("Content-Type: multipart/mixed; boundary=\"d" + strings.Repeat("x", i) + "\"\r\n\r\n--d" + strings.Repeat("x", i) + "\r\n")
	}
	b.WriteString("\r\n[SECRET]\r\n")
	res, err := Classify(strings.NewReader(b.String()), Options{})
	if err != nil || res.Classification != "SECRET" {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Problems, ";"), "nested deeper") {
		t.Errorf("problems %q", res.Problems)
	}
	if !strings.Contains(strings.Join(res.Unreadable, ";"), "nested deeper") {
		t.Errorf("unreadable %q", res.Unreadable)
	}
}
