package notify

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// specLines reads testdata/notify/spec-excerpt.txt: spec line number ->
// the line, verbatim.
func specLines(t *testing.T) map[int]string {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, "spec-excerpt.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[int]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		n, rest, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad excerpt line %q", line)
		}
		i, err := strconv.Atoi(n)
		if err != nil {
			t.Fatal(err)
		}
		m[i] = rest
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// norm removes the HTML markup of the converted spec and collapses white
// space: what is left must contain our texts character for character.
func norm(s string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(s, " ")), " ")
}

func mustContain(t *testing.T, where string, line, text string) {
	t.Helper()
	if !strings.Contains(norm(line), norm(text)) {
		t.Errorf("%s: %q is not in the spec line\n%q", where, text, line)
	}
	// Normalising only collapses white space: the characters are the same.
	if norm(text) != text && strings.Join(strings.Fields(text), " ") != text {
		t.Errorf("%s: text has irregular white space: %q", where, text)
	}
}

// TestTextsAreVerbatim checks every entry of texts.go against the spec
// line its comment names (R42, R73, R74, R78, R108, R199, Tables 1-4).
func TestTextsAreVerbatim(t *testing.T) {
	spec := specLines(t)
	line := func(n int) string {
		l, ok := spec[n]
		if !ok {
			t.Fatalf("spec line %d is not in the excerpt", n)
		}
		return l
	}
	// Table 2.
	if !strings.Contains(line(314), "TABLE 2: Secure Email Warning Messages") {
		t.Errorf("line 314 is not Table 2's title")
	}
	mustContain(t, "Table2Intro", line(316), Table2Intro)
	if len(Table2) != 5 {
		t.Fatalf("Table 2 has 5 rows, got %d", len(Table2))
	}
	for i, r := range Table2 {
		if int(r.Row) != i+1 {
			t.Errorf("Table 2 row %d has Row %d", i+1, r.Row)
		}
		l := line(r.Line)
		if !strings.HasPrefix(l, r.Direction+"\t") {
			t.Errorf("Table 2 row %d: direction %q not in %q", i+1, r.Direction, l)
		}
		if strings.TrimPrefix(l, r.Direction+"\t") != r.Text {
			t.Errorf("Table 2 row %d: text\n%q\nspec\n%q", i+1, r.Text, strings.TrimPrefix(l, r.Direction+"\t"))
		}
		if !strings.HasPrefix(r.Text, r.Heading+" \u2013 ") {
			t.Errorf("Table 2 row %d: heading %q does not open the text with the en dash", i+1, r.Heading)
		}
		if r.Row != SystemWarningMessage && !strings.HasSuffix(r.Text, " "+CodePlaceholder) {
			t.Errorf("Table 2 row %d: no %q placeholder", i+1, CodePlaceholder)
		}
	}
	if !strings.Contains(Table2[1].Text, RetryPlaceholder) {
		t.Errorf("Table 2 row 2 lost %q", RetryPlaceholder)
	}

	// Table 3.
	if !strings.Contains(line(558), "TABLE 3: Secure Email Warning Codes") {
		t.Errorf("line 558 is not Table 3's title")
	}
	mustContain(t, "Table3Incoming", line(571), Table3Incoming)
	mustContain(t, "Table3Outgoing", line(582), Table3Outgoing)
	seen := map[string]bool{}
	for _, w := range Table3 {
		l := line(w.Line)
		if !strings.HasPrefix(l, w.Code+"\t") {
			t.Errorf("code %s: spec line %d is %q", w.Code, w.Line, l)
		}
		if seen[w.Code] {
			t.Errorf("code %s twice", w.Code)
		}
		seen[w.Code] = true
		mustContain(t, "code "+w.Code, l, w.Meaning)
		for _, c := range w.Causes {
			mustContain(t, "code "+w.Code+" cause", l, c)
		}
		if len(w.Causes) > 0 && !strings.HasSuffix(w.Meaning, "Possible causes of this warning include:") {
			t.Errorf("code %s: causes without their lead-in", w.Code)
		}
		// The whole row is the meaning followed by the causes: nothing
		// is left out.
		whole := strings.Join(append([]string{w.Code, w.Meaning}, w.Causes...), " ")
		if norm(l) != whole {
			t.Errorf("code %s: row is\n%q\nwe have\n%q", w.Code, norm(l), whole)
		}
		if w.Retired {
			continue
		}
		t2, ok := Table2Entry(w.Row)
		if !ok || !strings.HasPrefix(w.Meaning, t2.Heading+":") {
			t.Errorf("code %s: Table 2 row %d (%q) does not match the description %q", w.Code, w.Row, t2.Heading, w.Meaning)
		}
		got, ok := Warning(w.Code)
		if !ok || got.Text != t2.Text {
			t.Errorf("Warning(%s) = %+v, %v", w.Code, got, ok)
		}
	}
	for _, c := range []string{"001", "002", "003", "004", "005", "006", "007", "008", "009",
		"101", "102", "103", "104", "105", "111", "112", "113", "114", "115", "201", "202", "211", "212"} {
		if !seen[c] {
			t.Errorf("Table 3 code %s missing", c)
		}
	}

	// Table 4 and R73/R74.
	if !strings.Contains(line(589), "TABLE 4: Secure Email Delivery Messages") {
		t.Errorf("line 589 is not Table 4's title")
	}
	mustContain(t, "Table4Intro", line(591), Table4Intro)
	if line(592) != "Receiving (back to sender)\t"+DeliveryReceiptText {
		t.Errorf("Table 4 row 1: %q", line(592))
	}
	if line(593) != "Receiving (back to sender)\t"+NonDeliveryReportText {
		t.Errorf("Table 4 row 2: %q", line(593))
	}
	mustContain(t, "R73", line(391), `"`+R73Wording+`"`)
	mustContain(t, "R74", line(392), `"`+R74Wording+`"`)
	if !strings.Contains(DeliveryReceiptText, R73Wording) {
		t.Errorf("Table 4 row 1 does not contain R73's sentence")
	}
	if strings.TrimSuffix(R74Wording, "...") != R74Sentence {
		t.Errorf("R74Sentence is not R74Wording without the ellipsis")
	}

	// Table 1.
	if !strings.Contains(line(300), "TABLE 1: Certificate Processing Behaviour") {
		t.Errorf("line 300 is not Table 1's title")
	}
	for _, r := range Table1 {
		l := line(r.Line)
		if !strings.HasPrefix(l, string(r.Status)+"\t") {
			t.Errorf("Table 1 %q: spec line %d is %q", r.Status, r.Line, l)
		}
		cells := strings.Split(l, "\t")
		if r.Status == CertUntrusted {
			// The sending cell is split over lines 305 and 307.
			head, tail, _ := strings.Cut(r.Sending, "Notify Sender,")
			mustContain(t, "Table 1 untrusted sending (head)", cells[1], head+"Notify")
			mustContain(t, "Table 1 untrusted sending (tail)", line(307), "Sender,"+tail)
		} else if norm(cells[1]) != r.Sending {
			t.Errorf("Table 1 %q sending: %q, spec %q", r.Status, r.Sending, norm(cells[1]))
		}
		if norm(cells[2]) != r.Receiving {
			t.Errorf("Table 1 %q receiving: %q, spec %q", r.Status, r.Receiving, norm(cells[2]))
		}
	}

	// R108, R199.
	mustContain(t, "R108", line(453), R108Wording)
	mustContain(t, "R199", line(738), R199Wording)
	for _, h := range R199ListHeaders {
		mustContain(t, "R199 list", line(738), "• "+h)
	}
	if got := strings.Count(line(738), "•"); got != len(R199ListHeaders) {
		t.Errorf("R199 lists %d headers, we have %d", got, len(R199ListHeaders))
	}
}

func TestWarningLookup(t *testing.T) {
	for _, c := range []string{"006", "007", "999", "", "2", "0020"} {
		if _, ok := Warning(c); ok {
			t.Errorf("Warning(%q) found", c)
		}
	}
	want := "001 002 003 004 005 008 009 101 102 103 104 105 111 112 113 114 115 201 202 211 212"
	if got := strings.Join(Codes(), " "); got != want {
		t.Errorf("Codes() = %s", got)
	}
	w, _ := Warning("002")
	w.Causes[0] = "changed"
	if w2, _ := Warning("002"); w2.Causes[0] == "changed" {
		t.Error("Warning returns a shared Causes slice")
	}
}

// TestCertificateCode: Table 1 outcomes and their Table 3 codes.
func TestCertificateCode(t *testing.T) {
	cases := []struct {
		status  CertStatus
		owner   CertOwner
		sending bool
		want    string
	}{
		{CertValid, Peer, false, ""},
		{CertValid, Peer, true, ""},
		{CertRevoked, Peer, false, "101"},
		{CertUntrusted, Peer, false, "102"},
		{CertExpired, Peer, false, "103"},
		{CertUnknownStatus, Peer, false, "104"},
		{CertNotYetValid, Peer, false, "105"},
		{CertRevoked, Own, false, "111"},
		{CertUntrusted, Own, false, "112"},
		{CertExpired, Own, false, "113"},
		{CertUnknownStatus, Own, false, "114"},
		{CertNotYetValid, Own, false, "115"},
		{CertRevoked, Peer, true, "201"},
		{CertUntrusted, Peer, true, "201"},
		{CertExpired, Peer, true, "201"},
		{CertNotYetValid, Peer, true, "201"},
		{CertUnknownStatus, Peer, true, "202"},
		{CertRevoked, Own, true, "211"},
		{CertExpired, Own, true, "211"},
		{CertUnknownStatus, Own, true, "212"},
		{CertStatus("bogus"), Peer, true, ""},
	}
	for _, c := range cases {
		got, ok := CertificateCode(c.status, c.owner, c.sending)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("CertificateCode(%q, %d, sending=%v) = %q, %v; want %q", c.status, c.owner, c.sending, got, ok, c.want)
			continue
		}
		if ok {
			w, found := Warning(got)
			if !found {
				t.Errorf("code %s not in Table 3", got)
			}
			wantSection := Table3Incoming
			if c.sending {
				wantSection = Table3Outgoing
			}
			if w.Section != wantSection {
				t.Errorf("code %s is in section %q", got, w.Section)
			}
		}
	}
}

// TestRenderGolden renders every Table 2 and Table 3 text the way
// warnings, banners, headers and notices use them, into one golden file
// per code, plus Table 2 and Table 4 (R42, R78).
func TestRenderGolden(t *testing.T) {
	for _, code := range Codes() {
		var b strings.Builder
		w, _ := Warning(code)
		b.WriteString("# Table 3 code " + code + " (spec line " + strconv.Itoa(w.Line) + "), Table 2 row " + strconv.Itoa(int(w.Row)) + "\n")
		short, err := ShortText(code)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n## ShortText (X-NZ-Secure-Warning)\n" + short + "\n")
		line, _ := WarningLine(code, TextParams{})
		b.WriteString("\n## WarningLine\n" + line + "\n")
		line, _ = WarningLine(code, TextParams{Detail: "certificate CN=domain-confidentiality-authority", RetryHours: 4})
		b.WriteString("\n## WarningLine with detail and retry hours\n" + line + "\n")
		banner, _ := BannerLines(code, TextParams{Link: "https://www.agency.govt.nz/seeinfo/warning" + code + ".html"})
		b.WriteString("\n## BannerLines with link (prepend)\n" + strings.Join(banner, "\n") + "\n")
		lines, _ := WarningLines(code, TextParams{Link: "https://www.agency.govt.nz/seeinfo/warning" + code + ".html"})
		b.WriteString("\n## WarningLines with link (wrap, notices)\n" + strings.Join(lines, "\n") + "\n")
		golden(t, "texts/code-"+code+".txt", []byte(b.String()))
	}
	var b strings.Builder
	b.WriteString("# Table 2 (spec lines 314-321)\n" + Table2Intro + "\n\n")
	for _, r := range Table2 {
		b.WriteString(r.Direction + "\t" + r.Text + "\n")
	}
	golden(t, "texts/table2.txt", []byte(b.String()))
	b.Reset()
	b.WriteString("# Table 4 (spec lines 589-593) and R73/R74\n" + Table4Intro + "\n\n")
	b.WriteString(DeliveryReceiptText + "\n" + NonDeliveryReportText + "\n\nR73: " + R73Wording + "\nR74: " + R74Wording + "\n")
	golden(t, "texts/table4.txt", []byte(b.String()))
}

func TestRenderPlaceholders(t *testing.T) {
	got, err := WarningLine("201", TextParams{RetryHours: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := "SECURE DELIVERY DELAYED \u2013 Your message could not be delivered securely. The system will try again in 1 hour. [Code: 201]"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	got, _ = WarningLine("002", TextParams{Detail: "line\r\nbreak\x00 here", RetryHours: 3})
	want = "UNVERIFIED MESSAGE \u2013 The confidentiality, integrity and/or authenticity of this message could not be verified. [Code: 002, line break here]"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if _, err := WarningLine("006", TextParams{}); err == nil {
		t.Error("retired code rendered")
	}
	if got, err := Table2Line(SystemWarningMessage, "", TextParams{}); err != nil || got != Table2[4].Text {
		t.Errorf("Table2Line(row 5) = %q, %v", got, err)
	}
	if _, err := Table2Line(UnverifiedMessage, "", TextParams{}); !errors.Is(err, ErrUnknownCode) {
		t.Errorf("Table2Line without a code: %v", err)
	}
	if got, _ := Table2Line(SystemFailureMessage, "009", TextParams{}); !strings.HasSuffix(got, "[Code: 009]") {
		t.Errorf("Table2Line(row 4) = %q", got)
	}
	if got := LinkFor("https://www.agency.govt.nz/seeinfo/warning{code}.html", "005"); got != "https://www.agency.govt.nz/seeinfo/warning005.html" {
		t.Errorf("LinkFor = %q", got)
	}
	if s := ASCIIDash(Table2[2].Text); strings.ContainsRune(s, '\u2013') || strings.Count(s, " - ") != 1 {
		t.Errorf("ASCIIDash: %q", s)
	}
}
