package notify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// inputCodes gives each test message a warning code, so that the golden
// files show a variety of Table 2 rows.
var inputCodes = map[string]string{
	"simple-ascii.eml":      "002",
	"no-mime.eml":           "005",
	"latin1-qp.eml":         "002",
	"win1252-base64.eml":    "003",
	"utf16-base64.eml":      "101",
	"alternative.eml":       "004",
	"mixed-attachments.eml": "002",
	"html-only.eml":         "008",
	"signed.eml":            "102",
	"lf-only.eml":           "002",
	"eightbit-body.eml":     "009",
}

func codeFor(name string) string {
	if c, ok := inputCodes[name]; ok {
		return c
	}
	return "002"
}

func testOptions(mode Mode, code string) Options {
	return Options{
		Mode:    mode,
		Code:    code,
		Gateway: "mx.agency.govt.nz",
		Text:    TextParams{Link: "https://www.agency.govt.nz/seeinfo/warning" + code + ".html"},
		Rand:    testRand(1),
	}
}

func render(t *testing.T, r *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func editsText(edits []message.HeaderEdit) []byte {
	var b strings.Builder
	for _, e := range edits {
		switch e.Op {
		case message.OpAdd:
			fmt.Fprintf(&b, "add %s: %s\n", e.Name, e.Value)
		case message.OpChange:
			fmt.Fprintf(&b, "change %s[%d]: %s\n", e.Name, e.Index, e.Value)
		case message.OpDelete:
			fmt.Fprintf(&b, "delete %s[%d]\n", e.Name, e.Index)
		}
	}
	return []byte(b.String())
}

// TestApplyGolden: every warning mode on every test message (R76-R80).
func TestApplyGolden(t *testing.T) {
	for _, name := range inputNames(t) {
		for _, mode := range []Mode{ModeWrap, ModePrepend, ModeHeader} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				orig := readInput(t, name)
				r, err := Apply(testOptions(mode, codeFor(name)), bytes.NewReader(orig))
				if err != nil {
					t.Fatal(err)
				}
				base := "out/" + strings.TrimSuffix(name, ".eml") + "." + string(mode)
				golden(t, base+".eml", render(t, r))
				edits := editsText(r.Edits)
				if r.Fallback != "" {
					edits = append([]byte("# fell back to "+string(r.Mode)+": "+r.Fallback+"\n"), edits...)
				}
				golden(t, base+".edits", edits)
			})
		}
	}
}

// TestWrapStructure parses wrap output: multipart/mixed, the warning first,
// the original (byte for byte) second as message/rfc822, the original's
// From/To/Cc/Date/Subject/Message-ID/Reply-To kept.
func TestWrapStructure(t *testing.T) {
	for _, name := range inputNames(t) {
		t.Run(name, func(t *testing.T) {
			orig := readInput(t, name)
			code := codeFor(name)
			r, err := Apply(testOptions(ModeWrap, code), bytes.NewReader(orig))
			if err != nil {
				t.Fatal(err)
			}
			out := render(t, r)
			e, err := gomessage.Read(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			mt, params, err := e.Header.ContentType()
			if err != nil || mt != "multipart/mixed" {
				t.Fatalf("top: %s %v", mt, err)
			}
			if bytes.Contains(orig, []byte(params["boundary"])) {
				t.Errorf("boundary %q occurs in the original", params["boundary"])
			}
			if e.Header.Get("MIME-Version") != "1.0" {
				t.Errorf("MIME-Version %q", e.Header.Get("MIME-Version"))
			}
			origHdr, err := gomessage.Read(bytes.NewReader(orig))
			if err != nil && !gomessage.IsUnknownCharset(err) {
				t.Fatal(err)
			}
			for _, k := range []string{"From", "To", "Cc", "Date", "Subject", "Message-Id", "Reply-To", "Received"} {
				if got, want := e.Header.Values(k), origHdr.Header.Values(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: %q, original %q", k, got, want)
				}
			}
			if got := e.Header.Get(WarningHeader); got != "" && !strings.HasPrefix(got, code+" ") {
				t.Errorf("%s: %q", WarningHeader, got)
			}
			mr := e.MultipartReader()
			p1, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			mt1, params1, _ := p1.Header.ContentType()
			if mt1 != "text/plain" || params1["charset"] != "utf-8" {
				t.Errorf("part 1: %s %v", mt1, params1)
			}
			text, _ := io.ReadAll(p1.Body)
			lines, _ := WarningLines(code, testOptions(ModeWrap, code).Text)
			if want := strings.Join(lines, "\r\n") + "\r\n"; strings.ReplaceAll(string(text), "\r\n", "\n") != strings.ReplaceAll(want, "\r\n", "\n") {
				t.Errorf("part 1 text:\n%q\nwant\n%q", text, want)
			}
			if !strings.HasPrefix(string(text), Table2[2].Text[:len("UNVERIFIED MESSAGE \u2013")]) &&
				!strings.Contains(string(text), "[Code: "+code+"]") {
				t.Errorf("warning text lacks its Table 2 text: %q", text)
			}
			p2, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if mt2, _, _ := p2.Header.ContentType(); mt2 != "message/rfc822" {
				t.Errorf("part 2: %s", mt2)
			}
			inner, _ := io.ReadAll(p2.Body)
			if !bytes.Equal(inner, orig) {
				t.Errorf("part 2 is not the original:\n%s", firstDiff(orig, inner))
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("more than two parts: %v", err)
			}
		})
	}
}

// TestWrapOmitOriginal: R80, the warning alone.
func TestWrapOmitOriginal(t *testing.T) {
	opts := testOptions(ModeWrap, "003")
	opts.OmitOriginal = true
	r, err := Apply(opts, bytes.NewReader(readInput(t, "eightbit-body.eml")))
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, r)
	golden(t, "out/eightbit-body.wrap-omit-original.eml", out)
	ls, err := leaves(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].mediaType != "text/plain" {
		t.Fatalf("want one text part, got %+v", ls)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(ls[0].body)), OriginalNotAttached) {
		t.Errorf("no R80 note: %q", ls[0].body)
	}
	if bytes.Contains(out, []byte("macrons")) {
		t.Error("the original leaked into an R80 warning")
	}
	if strings.Contains(string(editsText(r.Edits)), "8bit") {
		t.Error("no 8bit content left, yet 8bit declared")
	}
}

// TestWrap8bit: an 8-bit original makes the rfc822 part and the message 8bit.
func TestWrap8bit(t *testing.T) {
	r, err := Apply(testOptions(ModeWrap, "002"), bytes.NewReader(readInput(t, "eightbit-body.eml")))
	if err != nil {
		t.Fatal(err)
	}
	if v := policy.HeaderValues(r.Headers(), "Content-Transfer-Encoding"); len(v) != 1 || v[0] != "8bit" {
		t.Errorf("top Content-Transfer-Encoding: %v", v)
	}
	if !bytes.Contains(render(t, r), []byte("Content-Type: message/rfc822\r\nContent-Disposition: inline\r\nContent-Description: Original message\r\nContent-Transfer-Encoding: 8bit\r\n")) {
		t.Error("rfc822 part not marked 8bit")
	}
}

// prependExpect says, per input, what each inline text leaf must become.
type leafExpect struct {
	variant string // "exact", "folded" or "html"
	charset string // charset parameter after ("" none)
	cte     string // Content-Transfer-Encoding after
}

var prependExpect = map[string]map[string]leafExpect{
	"simple-ascii.eml":      {"": {"folded", "us-ascii", "7bit"}},
	"no-mime.eml":           {"": {"folded", "", ""}},
	"latin1-qp.eml":         {"": {"folded", "ISO-8859-1", "quoted-printable"}},
	"win1252-base64.eml":    {"": {"exact", "windows-1252", "base64"}},
	"utf16-base64.eml":      {"": {"exact", "utf-8", "base64"}},
	"alternative.eml":       {"/1": {"folded", "iso-8859-1", "quoted-printable"}, "/2": {"html", "iso-8859-1", "quoted-printable"}},
	"mixed-attachments.eml": {"/1/1": {"exact", "utf-8", "8bit"}, "/1/2": {"html", "utf-8", "8bit"}},
	"html-only.eml":         {"": {"html", "utf-8", "quoted-printable"}},
	"lf-only.eml":           {"": {"exact", "utf-8", "quoted-printable"}},
	"eightbit-body.eml":     {"": {"exact", "utf-8", "8bit"}},
}

// TestPrependStructure parses prepend output next to the original: every
// inline text part starts with the banner, which decodes to the Table 2
// text; charsets and transfer encodings are kept; nothing else changes.
func TestPrependStructure(t *testing.T) {
	for _, name := range inputNames(t) {
		expect, ok := prependExpect[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			orig := readInput(t, name)
			code := codeFor(name)
			opts := testOptions(ModePrepend, code)
			r, err := Apply(opts, bytes.NewReader(orig))
			if err != nil {
				t.Fatal(err)
			}
			if r.Mode != ModePrepend {
				t.Fatalf("fell back to %s: %s", r.Mode, r.Fallback)
			}
			if r.Banners != len(expect) {
				t.Errorf("%d banners, want %d", r.Banners, len(expect))
			}
			out := render(t, r)
			before, err := leaves(t, orig)
			if err != nil {
				t.Fatal(err)
			}
			after, err := leaves(t, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) != len(after) {
				t.Fatalf("%d leaves became %d", len(before), len(after))
			}
			lines, _ := BannerLines(code, opts.Text)
			for i := range before {
				b, a := before[i], after[i]
				if b.path != a.path || b.mediaType != a.mediaType || b.disposition != a.disposition {
					t.Errorf("leaf %d: %s %s %s became %s %s %s", i, b.path, b.mediaType, b.disposition, a.path, a.mediaType, a.disposition)
				}
				ex, text := expect[b.path]
				if !text {
					if !bytes.Equal(a.body, b.body) || a.cte != b.cte || fmt.Sprint(a.params) != fmt.Sprint(b.params) {
						t.Errorf("leaf %s (%s) changed", b.path, b.mediaType)
					}
					continue
				}
				if a.params["charset"] != ex.charset {
					t.Errorf("leaf %s: charset %q, want %q", b.path, a.params["charset"], ex.charset)
				}
				if a.cte != ex.cte {
					t.Errorf("leaf %s: transfer encoding %q, want %q", b.path, a.cte, ex.cte)
				}
				for k, v := range b.params {
					if k != "charset" && a.params[k] != v {
						t.Errorf("leaf %s: parameter %s %q became %q", b.path, k, v, a.params[k])
					}
				}
				eol := lineEnd(b.body, "\r\n")
				switch ex.variant {
				case "exact", "folded":
					bl := lines
					if ex.variant == "folded" {
						bl = nil
						for _, l := range lines {
							bl = append(bl, ASCIIDash(l))
						}
					}
					want := strings.Join(bl, eol) + eol + eol + string(b.body)
					if string(a.body) != want {
						t.Errorf("leaf %s: decoded\n%q\nwant\n%q", b.path, a.body, want)
					}
				case "html":
					banner := htmlBanner(code, lines, opts.Text.Link)
					i := strings.Index(string(a.body), banner)
					if i < 0 {
						t.Fatalf("leaf %s: no HTML banner in %q", b.path, a.body)
					}
					pre, post := string(a.body[:i]), strings.TrimPrefix(string(a.body[i+len(banner):]), eol)
					if pre+post != string(b.body) && strings.TrimSuffix(pre, eol)+post != string(b.body) {
						t.Errorf("leaf %s: removing the banner does not give the original:\n%q\n%q", b.path, a.body, b.body)
					}
					if bt := strings.LastIndex(strings.ToLower(pre), "<body"); bt >= 0 {
						if !strings.HasSuffix(strings.TrimRight(pre, "\r\n"), ">") {
							t.Errorf("leaf %s: banner not right after <body>: %q", b.path, pre)
						}
					} else if strings.TrimSpace(pre) != "" {
						t.Errorf("leaf %s: no <body>, banner not at the top: %q", b.path, pre)
					}
				}
			}
			// Untouched attachments keep their bytes (mixed-attachments).
			if name == "mixed-attachments.eml" {
				for _, s := range []string{"JVBERi0xLjQKJeLjz9MKMSAwIG9iajw8Pj5lbmRvYmoKdHJhaWxlcjw8Pj4KJSVFT0YK",
					"These notes are an attachment and must not get a banner.",
					"A forwarded message: no banner inside it."} {
					if bytes.Count(out, []byte(s)) != 1 {
						t.Errorf("attachment bytes %q not kept once", s)
					}
				}
				if n := bytes.Count(out, []byte("[Code: 002]")); n != 2 {
					t.Errorf("%d banners, want 2", n)
				}
			}
		})
	}
}

// TestPrependConversions: a banner that the part's charset cannot hold
// converts the part to UTF-8 (Content-Type says so); a 7bit part that now
// needs 8-bit bytes becomes quoted-printable; StrictText keeps the dash.
func TestPrependConversions(t *testing.T) {
	t.Run("non-ASCII link in a US-ASCII 7bit part", func(t *testing.T) {
		opts := testOptions(ModePrepend, "002")
		opts.Text.Link = "https://www.agency.govt.nz/whakat\u016bpato/002"
		r, err := Apply(opts, bytes.NewReader(readInput(t, "simple-ascii.eml")))
		if err != nil {
			t.Fatal(err)
		}
		out := render(t, r)
		golden(t, "out/simple-ascii.prepend-utf8-link.eml", out)
		hs := r.Headers()
		if v := policy.HeaderValues(hs, "Content-Type"); len(v) != 1 || v[0] != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %v", v)
		}
		if v := policy.HeaderValues(hs, "Content-Transfer-Encoding"); len(v) != 1 || v[0] != "quoted-printable" {
			t.Errorf("Content-Transfer-Encoding %v", v)
		}
		ls, err := leaves(t, out)
		if err != nil {
			t.Fatal(err)
		}
		lines, _ := BannerLines("002", opts.Text)
		if !strings.HasPrefix(string(ls[0].body), strings.Join(lines, "\r\n")+"\r\n\r\nHello Bob,") {
			t.Errorf("decoded: %q", ls[0].body)
		}
	})
	t.Run("StrictText on ISO-8859-1", func(t *testing.T) {
		opts := testOptions(ModePrepend, "002")
		opts.StrictText = true
		r, err := Apply(opts, bytes.NewReader(readInput(t, "latin1-qp.eml")))
		if err != nil {
			t.Fatal(err)
		}
		out := render(t, r)
		golden(t, "out/latin1-qp.prepend-strict.eml", out)
		ls, err := leaves(t, out)
		if err != nil {
			t.Fatal(err)
		}
		if ls[0].params["charset"] != "utf-8" || ls[0].params["format"] != "flowed" || ls[0].cte != "quoted-printable" {
			t.Errorf("leaf: %+v", ls[0])
		}
		line, _ := WarningLine("002", TextParams{})
		if !strings.HasPrefix(string(ls[0].body), line) || !strings.Contains(string(ls[0].body), "Bonjour, le caf\u00e9 est pr\u00eat.") {
			t.Errorf("decoded: %q", ls[0].body)
		}
	})
	t.Run("nested part header rewritten", func(t *testing.T) {
		msg := "From: a@example.org\r\nTo: b@agency.govt.nz\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\nX-Keep: this raw field\r\n  folded\r\n\r\nplain ascii\r\n--b1--\r\n"
		opts := testOptions(ModePrepend, "002")
		opts.StrictText = true
		r, err := Apply(opts, strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		out := string(render(t, r))
		if !strings.Contains(out, "Content-Type: text/plain; charset=utf-8\r\nX-Keep: this raw field\r\n  folded\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nUNVERIFIED MESSAGE =E2=80=93") {
			t.Errorf("part header not rewritten in place:\n%s", out)
		}
		if len(r.Edits) != 1 {
			t.Errorf("top-level edits for a nested change: %+v", r.Edits)
		}
	})
}

// TestPrependUTF7: a UTF-7 part (RFC 2152; R33 names it), which no
// encoder here writes, gets the banner by being converted to UTF-8, as
// message.LookupCharset reads UTF-7 for the scanner too (issue 13: one
// charset lookup; before, notify did not know UTF-7 and fell back to wrap).
func TestPrependUTF7(t *testing.T) {
	msg := "From: a@example.org\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nHi Mom -+Jjo--!\r\n"
	r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModePrepend || r.Banners != 1 {
		t.Fatalf("mode %s, banners %d, fallback %q", r.Mode, r.Banners, r.Fallback)
	}
	ls, err := leaves(t, render(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || !strings.EqualFold(ls[0].params["charset"], "utf-8") {
		t.Fatalf("parts %+v", ls)
	}
	body := string(ls[0].body)
	if !strings.Contains(body, "[Code: 002]") || !strings.HasSuffix(body, "Hi Mom -\u263a-!\r\n") {
		t.Errorf("body %q", body)
	}
}

// TestPrependFallback: what cannot carry a banner everywhere a reader looks
// is wrapped instead (the warning must be seen, R76).
func TestPrependFallback(t *testing.T) {
	cases := map[string]string{
		"signed":           "From: a@example.org\r\nContent-Type: multipart/signed; boundary=s; protocol=\"application/pkcs7-signature\"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nx\r\n--s--\r\n",
		"pdf":              "From: a@example.org\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n",
		"x-uue":            "From: a@example.org\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n",
		"html-bad-charset": "From: a@example.org\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nok\r\n--a\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n<p>x</p>\r\n--a--\r\n",
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if r.Mode != ModeWrap || r.Fallback == "" {
				t.Fatalf("mode %s, fallback %q", r.Mode, r.Fallback)
			}
			ls, err := leaves(t, render(t, r))
			if err != nil {
				t.Fatal(err)
			}
			if ls[0].mediaType != "text/plain" || !strings.Contains(string(ls[0].body), "[Code: 002]") {
				t.Errorf("first part %+v", ls[0])
			}
		})
	}
}

// TestHTMLBannerEscaped: text that reaches an HTML banner is escaped.
func TestHTMLBannerEscaped(t *testing.T) {
	opts := testOptions(ModePrepend, "002")
	opts.Text.Detail = `<script>alert("x")</script> & co`
	opts.Text.Link = `https://example.org/?a=1&b="><img src=x>`
	r, err := Apply(opts, bytes.NewReader(readInput(t, "alternative.eml")))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := leaves(t, render(t, r))
	if err != nil {
		t.Fatal(err)
	}
	html := string(ls[1].body)
	for _, bad := range []string{"<script>", `"><img`, `& co`} {
		if strings.Contains(html, bad) {
			t.Errorf("unescaped %q in HTML banner:\n%s", bad, html)
		}
	}
	for _, good := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co", "&#8211;",
		`<a href="https://example.org/?a=1&amp;b=&#34;&gt;&lt;img src=x&gt;">`} {
		if !strings.Contains(html, good) {
			t.Errorf("missing %q in HTML banner:\n%s", good, html)
		}
	}
	if plain := string(ls[0].body); !strings.Contains(plain, `[Code: 002, <script>alert("x")</script> & co]`) {
		t.Errorf("plain text banner: %q", plain)
	}
}

// TestHeaderMode: only the X-NZ-Secure-Warning header; the body is kept.
func TestHeaderMode(t *testing.T) {
	orig := readInput(t, "alternative.eml")
	r, err := Apply(testOptions(ModeHeader, "004"), bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	if r.Body != nil {
		t.Error("header mode changed the body")
	}
	want := []message.HeaderEdit{{Op: message.OpAdd, Name: WarningHeader, Value: "004 UNVERIFIED MESSAGE (mx.agency.govt.nz)"}}
	if fmt.Sprint(r.Edits) != fmt.Sprint(want) {
		t.Errorf("edits %+v", r.Edits)
	}
	out := render(t, r)
	if !bytes.HasSuffix(out, orig[bytes.Index(orig, []byte("\r\n\r\n"))+4:]) {
		t.Error("body not kept")
	}
}

// TestAlreadyWarned: R79, never a second warning from this gateway; other
// gateways' (or forged) headers are removed.
func TestAlreadyWarned(t *testing.T) {
	base := "From: a@example.org\r\nTo: b@agency.govt.nz\r\nMessage-ID: <m1@example.org>\r\n%s\r\nbody\r\n"
	mk := func(h string) *strings.Reader { return strings.NewReader(fmt.Sprintf(base, h)) }
	secret := []byte("s3cret")
	ourMAC := warningMAC(secret, "002", "mx.agency.govt.nz", "<m1@example.org>")
	cases := []struct {
		name    string
		header  string
		opts    func(*Options)
		refused bool
		deleted int
	}{
		{"ours", "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE (mx.agency.govt.nz)\r\n", nil, true, 0},
		{"ours, other case", "x-nz-secure-warning: 005 UNVERIFIED MESSAGE (MX.Agency.govt.nz)\r\n", nil, true, 0},
		{"another gateway", "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE (mx.other.govt.nz)\r\n", nil, false, 1},
		{"two foreign", "X-NZ-Secure-Warning: junk\r\nX-NZ-Secure-Warning: 003 UNVERIFIED MESSAGE\r\n", nil, false, 2},
		{"no gateway configured: any is ours", "X-NZ-Secure-Warning: junk\r\n", func(o *Options) { o.Gateway = "" }, true, 0},
		{"forged, no MAC", "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE (mx.agency.govt.nz)\r\n", func(o *Options) { o.Secret = secret }, false, 1},
		{"forged, bad MAC", "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE (mx.agency.govt.nz mac=AAAAAAAAAAAAAAAAAAAAAAAA)\r\n", func(o *Options) { o.Secret = secret }, false, 1},
		{"ours with MAC", "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE (mx.agency.govt.nz mac=" + ourMAC + ")\r\n", func(o *Options) { o.Secret = secret }, true, 0},
	}
	for _, c := range cases {
		for _, mode := range []Mode{ModeWrap, ModePrepend, ModeHeader} {
			t.Run(c.name+"/"+string(mode), func(t *testing.T) {
				opts := testOptions(mode, "002")
				if c.opts != nil {
					c.opts(&opts)
				}
				r, err := Apply(opts, mk(c.header))
				if c.refused {
					if !errors.Is(err, ErrAlreadyWarned) {
						t.Fatalf("err %v, want ErrAlreadyWarned", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got := policy.HeaderValues(r.Headers(), WarningHeader)
				if len(got) != 1 || !strings.HasPrefix(got[0], "002 UNVERIFIED MESSAGE (mx.agency.govt.nz") {
					t.Errorf("warning headers after: %q", got)
				}
				if n := strings.Count(string(editsText(r.Edits)), "delete "+WarningHeader); n != c.deleted {
					t.Errorf("%d deletions, want %d", n, c.deleted)
				}
				// A second pass over our own output is refused.
				again, err := Apply(opts, bytes.NewReader(render(t, r)))
				if !errors.Is(err, ErrAlreadyWarned) {
					t.Errorf("second warning not refused: %v %+v", err, again)
				}
			})
		}
	}
}

// TestWrapEditsOrder: several MIME headers at the top level; the edits
// give the same header whether or not the MTA renumbers after a deletion.
func TestWrapEditsOrder(t *testing.T) {
	msg := "From: a@example.org\r\nContent-Type: text/plain\r\nMime-Version: 1.0 (x)\r\nContent-Disposition: inline\r\n" +
		"Content-Type: text/html\r\nSubject: s\r\nContent-Transfer-Encoding: 7bit\r\nContent-Type: text/x\r\n\r\nbody\r\n"
	r, err := Apply(testOptions(ModeWrap, "002"), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "out/edits-order.wrap.edits", editsText(r.Edits))
	orig, err := policy.ReadHeaders(bufio.NewReader(strings.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	shifted := message.ApplyEdits(orig, r.Edits)
	stable := applyStable(orig, r.Edits)
	if fmt.Sprint(shifted) != fmt.Sprint(stable) {
		t.Errorf("edits depend on renumbering:\n%v\n%v", shifted, stable)
	}
	var names []string
	for _, h := range shifted {
		names = append(names, h.Name+": "+h.Value)
	}
	if got := strings.Join(names, "\n"); strings.Count(got, "Content-") != 1 || !strings.Contains(got, "Mime-Version: 1.0\n") {
		t.Errorf("headers after:\n%s", got)
	}
}

// applyStable applies edits where deleted headers keep counting (indexes
// never shift), the other reading of the milter protocol.
func applyStable(hs []policy.Header, edits []message.HeaderEdit) []policy.Header {
	type h struct {
		policy.Header
		gone bool
	}
	list := make([]h, len(hs))
	for i := range hs {
		list[i] = h{Header: hs[i]}
	}
	for _, e := range edits {
		if e.Op == message.OpAdd {
			list = append(list, h{Header: policy.Header{Name: e.Name, Value: e.Value}})
			continue
		}
		n := 0
		for i := range list {
			if strings.EqualFold(list[i].Name, e.Name) {
				if n++; n == e.Index {
					if e.Op == message.OpDelete {
						list[i].gone = true
					} else {
						list[i].Value = e.Value
					}
				}
			}
		}
	}
	var out []policy.Header
	for _, x := range list {
		if !x.gone {
			out = append(out, x.Header)
		}
	}
	return out
}

// TestApplyParts: the milter's form (header list + spooled body) gives the
// same result as the raw message.
func TestApplyParts(t *testing.T) {
	for _, name := range inputNames(t) {
		orig := readInput(t, name)
		if bytes.Contains(orig, []byte("\n")) && !bytes.Contains(orig, []byte("\r\n")) {
			continue // the milter always has CRLF
		}
		br := bufio.NewReader(bytes.NewReader(orig))
		hs, err := policy.ReadHeaders(br)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(br)
		for _, mode := range []Mode{ModeWrap, ModePrepend, ModeHeader} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				a, err := Apply(testOptions(mode, codeFor(name)), bytes.NewReader(orig))
				if err != nil {
					t.Fatal(err)
				}
				b, err := ApplyParts(testOptions(mode, codeFor(name)), hs, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(a.Edits) != fmt.Sprint(b.Edits) {
					t.Errorf("edits differ:\n%v\n%v", a.Edits, b.Edits)
				}
				ra, rb := render(t, a), render(t, b)
				if !bytes.Equal(ra, rb) {
					t.Errorf("outputs differ:\n%s", firstDiff(ra, rb))
				}
				// Result.Headers is what the MTA will hold after the edits.
				got, err := policy.ReadHeaders(bufio.NewReader(bytes.NewReader(rb)))
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(b.Headers()) {
					t.Errorf("Headers() does not match the written header:\n%v\n%v", got, b.Headers())
				}
			})
		}
	}
}

func TestApplyErrors(t *testing.T) {
	msg := "From: a@example.org\r\n\r\nbody\r\n"
	if _, err := Apply(Options{Code: "006"}, strings.NewReader(msg)); !errors.Is(err, ErrUnknownCode) {
		t.Errorf("retired code: %v", err)
	}
	if _, err := Apply(Options{Code: "002", Mode: "shout"}, strings.NewReader(msg)); !errors.Is(err, ErrBadMode) {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := Apply(Options{Code: "002"}, strings.NewReader("not a header\r\n\r\nbody")); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := ApplyParts(Options{Code: "002"}, []policy.Header{{Name: "Bad Name", Value: "x"}}, strings.NewReader("")); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad header name: %v", err)
	}
	if m, err := ParseMode(""); err != nil || m != ModeWrap {
		t.Errorf("default mode %q %v", m, err)
	}
	// Default mode is wrap; an mbox "From " line is skipped.
	r, err := Apply(Options{Code: "002", Rand: testRand(3)}, strings.NewReader("From a@example.org Mon Jan  1 00:00:00 2024\r\n"+msg))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModeWrap || bytes.Contains(render(t, r), []byte("From a@example.org Mon")) {
		t.Errorf("mode %s or mbox line kept", r.Mode)
	}
}

// TestBoundaryCollision: a random source that repeats itself makes the
// boundary collide with an original that contains it; a fresh one is drawn.
func TestBoundaryCollision(t *testing.T) {
	first, _ := newBoundary(testRand(7))
	msg := "From: a@example.org\r\nSubject: contains " + first + "\r\n\r\n--" + first + "\r\n"
	r, err := Apply(Options{Code: "002", Rand: testRand(7)}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Edits {
		if e.Name == "Content-Type" && strings.Contains(e.Value, first) {
			t.Fatal("boundary that occurs in the original was used")
		}
	}
	if _, err := leaves(t, render(t, r)); err != nil {
		t.Fatal(err)
	}
}

// TestLargeOriginalStreams: the wrap body streams from the original (a
// file of several MiB) rather than holding a second copy.
func TestLargeOriginalStreams(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := strings.Repeat("QUJD", 19) + "\r\n"
	for b.Len() < 8<<20 {
		b.WriteString(line)
	}
	orig := b.Bytes()
	r, err := Apply(Options{Code: "002", Rand: testRand(1)}, bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil || n < int64(len(orig)) {
		t.Fatalf("body %d bytes, %v", n, err)
	}
}

// A utf-16 part without a byte order mark, written little-endian as
// clients write and read the label, keeps its text when the banner is
// prepended: read big-endian (RFC 2781's default) it came out as CJK.
func TestPrependUTF16LittleEndianNoBOM(t *testing.T) {
	text := "Please find the figures attached.\r\n"
	var le []byte
	for _, r := range text {
		le = append(le, byte(r), byte(r>>8))
	}
	msg := "From: a@example.org\r\nTo: b@agency.govt.nz\r\nSubject: s\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(le) + "\r\n"
	r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModePrepend {
		t.Fatalf("fell back to %s: %s", r.Mode, r.Fallback)
	}
	after, err := leaves(t, render(t, r))
	if err != nil || len(after) != 1 {
		t.Fatalf("%d leaves, %v", len(after), err)
	}
	if after[0].params["charset"] != "utf-8" || !strings.Contains(string(after[0].body), "Please find the figures attached.") {
		t.Errorf("the text did not survive: charset %q, body %q", after[0].params["charset"], after[0].body)
	}
}
