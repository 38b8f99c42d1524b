package notify

import (
	"strings"
	"testing"
)

// TestPrependMediaParams: prepend reads Content-Type with the scanner's
// lenient parser (message.ParseMediaType, issue 13 point 1), so it finds
// the parts the scanner read: an RFC 2231 boundary in a charset Go's
// mime package does not know (which made prepend fall back to wrap), and
// continuations.
func TestPrependMediaParams(t *testing.T) {
	for name, ct := range map[string]string{
		"unknown-charset": `multipart/mixed; boundary*=x-unknown''b%31`,
		"continuations":   `multipart/mixed; boundary*0="b"; boundary*1=1`,
	} {
		t.Run(name, func(t *testing.T) {
			msg := "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: " + ct + "\r\n\r\n" +
				"--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b1--\r\n"
			r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if r.Mode != ModePrepend || r.Banners != 2 {
				t.Fatalf("mode %s, banners %d, fallback %q", r.Mode, r.Banners, r.Fallback)
			}
			// Read as bytes: go-message itself does not find the first
			// boundary.
			out := string(render(t, r))
			for _, part := range []string{"first", "second"} {
				if !strings.Contains(out, "002.html\r\n\r\n"+part+"\r\n--b1") {
					t.Errorf("no banner before %q:\n%s", part, out)
				}
			}
			if !strings.Contains(out, ct) {
				t.Errorf("top Content-Type changed:\n%s", out)
			}
		})
	}
}

// TestPrependDuplicateParams: a boundary or charset given twice with
// different values is read differently by different clients, so a banner
// might be missed: the warning is wrapped instead (R76, fail safe).
func TestPrependDuplicateParams(t *testing.T) {
	for name, msg := range map[string]string{
		"boundary": "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=a; boundary=b\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nx\r\n--a--\r\n",
		"charset":  "From: a@example.org\r\nContent-Type: text/plain; charset=us-ascii; charset=utf-16\r\n\r\nx\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if r.Mode != ModeWrap || !strings.Contains(r.Fallback, "given twice") {
				t.Fatalf("mode %s, fallback %q", r.Mode, r.Fallback)
			}
		})
	}
}

// TestPrependRewritesExtendedParams: when the part is converted to UTF-8,
// a parameter in an RFC 2231 charset is written anew in UTF-8, not as its
// raw bytes under a utf-8 label.
func TestPrependRewritesExtendedParams(t *testing.T) {
	msg := "From: a@example.org\r\nContent-Type: text/plain; charset=utf-7; name*=iso-8859-1''caf%E9.txt\r\n\r\nHi\r\n"
	r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	out := string(render(t, r))
	if r.Mode != ModePrepend || !strings.Contains(out, "name*=utf-8''caf%C3%A9.txt") {
		t.Errorf("mode %s:\n%s", r.Mode, out)
	}
}

// TestPrependDelimiters: prepend splits a multipart as the scanner does
// (message.MatchDelimiter). A "delimiter" with more transport padding than
// the scanner accepts is content, and one broken by a bare CR (a line
// break for the scanner, not for a line reader) makes prepend wrap.
func TestPrependDelimiters(t *testing.T) {
	pad := strings.Repeat(" ", 200)
	long := "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b" + pad + "\r\nnot a part\r\n--b--\r\n"
	r, err := Apply(testOptions(ModePrepend, "002"), strings.NewReader(long))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModePrepend || r.Banners != 1 {
		t.Errorf("padded line: mode %s, banners %d, fallback %q", r.Mode, r.Banners, r.Fallback)
	}
	bareCR := "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\rContent-Type: text/plain\r\n\r\ntwo\r\n--b--\r\n"
	r, err = Apply(testOptions(ModePrepend, "002"), strings.NewReader(bareCR))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModeWrap || !strings.Contains(r.Fallback, "bare CR") {
		t.Errorf("bare CR: mode %s, fallback %q", r.Mode, r.Fallback)
	}
	// Delimiter lines in CRLF and in LF (FuzzApply): Go's mime/multipart
	// and go-message read the LF ones after a CRLF first delimiter as
	// content, this scanner as delimiters, so prepend wraps.
	for name, msg := range map[string]string{
		"LF after CRLF": "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\n--b\nContent-Type: text/plain\n\ntwo\r\n--b--\r\n",
		"CRLF after LF": "From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\n--b\r\nContent-Type: text/plain\r\n\r\ntwo\n--b--\n",
	} {
		r, err = Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode != ModeWrap || !strings.Contains(r.Fallback, "both CRLF and LF") {
			t.Errorf("%s: mode %s, fallback %q", name, r.Mode, r.Fallback)
		}
	}
	// One line end throughout, LF or CRLF: prepended.
	for _, eol := range []string{"\n", "\r\n"} {
		msg := strings.ReplaceAll("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: text/plain\n\ntwo\n--b--\n", "\n", eol)
		r, err = Apply(testOptions(ModePrepend, "002"), strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode != ModePrepend || r.Banners != 2 {
			t.Errorf("line end %q: mode %s, banners %d, fallback %q", eol, r.Mode, r.Banners, r.Fallback)
		}
	}
}
