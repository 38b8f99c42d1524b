package notify

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func testGen() Generator {
	return Generator{Domain: "Agency.govt.nz", Now: func() time.Time { return testNow }, Rand: testRand(5)}
}

// origHeaders reads the header list of a test message, as the milter has it.
func origHeaders(t *testing.T, name string) []policy.Header {
	t.Helper()
	h, err := policy.ReadHeaders(bufio.NewReader(bytes.NewReader(readInput(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// parsed is a generated message read back with go-message.
type parsed struct {
	h    mail.Header
	body string
}

func parseGenerated(t *testing.T, m *Message) parsed {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(m.Data, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in a generated message")
	}
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p.Body)
	// Common to every generated message: R92, RFC 3834, RFC 5322.
	from, err := r.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "postmaster@agency.govt.nz" {
		t.Errorf("From: %v %v (R92)", from, err)
	}
	if d, err := r.Header.Date(); err != nil || !d.Equal(testNow) {
		t.Errorf("Date: %v %v", d, err)
	}
	if id, err := r.Header.MessageID(); err != nil || !strings.HasSuffix(id, "@agency.govt.nz") {
		t.Errorf("Message-ID: %q %v", id, err)
	}
	if r.Header.Get("Auto-Submitted") == "" {
		t.Error("no Auto-Submitted (RFC 3834)")
	}
	if m.EnvelopeFrom != "" {
		t.Errorf("envelope sender %q, want the null sender", m.EnvelopeFrom)
	}
	return parsed{h: r.Header, body: strings.ReplaceAll(string(b), "\r\n", "\n")}
}

// TestNoticeGolden: postmaster notices for every code (R42, R77, R92).
func TestNoticeGolden(t *testing.T) {
	orig := OriginalFromHeaders(origHeaders(t, "latin1-qp.eml"))
	for _, code := range Codes() {
		m, err := testGen().Notice(NoticeParams{Code: code, To: []string{"postmaster@agency.govt.nz"}, Original: orig,
			Text: TextParams{RetryHours: 4, Link: "https://www.agency.govt.nz/seeinfo/warning" + code + ".html"}})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "messages/notice-"+code+".eml", m.Data)
		p := parseGenerated(t, m)
		line, _ := WarningLine(code, TextParams{RetryHours: 4})
		if first, _, _ := strings.Cut(p.body, "\n"); first != line {
			t.Errorf("%s: first line %q, want the Table 2 text %q", code, first, line)
		}
		if p.h.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("Auto-Submitted %q", p.h.Get("Auto-Submitted"))
		}
		subj, _ := p.h.Subject()
		w, _ := Warning(code)
		t2, _ := Table2Entry(w.Row)
		if subj != t2.Heading+" [Code: "+code+"]: Caf\u00e9" {
			t.Errorf("Subject %q", subj)
		}
		if m.Kind != "notice "+code {
			t.Errorf("Kind %q", m.Kind)
		}
	}
}

// TestNoticeCarriesOnlyHeaderInformation: R77, only To/From/Date/Subject of
// the original; never its body, attachments or other headers.
func TestNoticeCarriesOnlyHeaderInformation(t *testing.T) {
	hs := origHeaders(t, "mixed-attachments.eml")
	hs = append(hs, policy.Header{Name: "X-Secret", Value: "do-not-leak"})
	m, err := testGen().Notice(NoticeParams{Code: "002", To: []string{"bob@agency.govt.nz"}, Original: OriginalFromHeaders(hs)})
	if err != nil {
		t.Fatal(err)
	}
	p := parseGenerated(t, m)
	for _, leak := range []string{"do-not-leak", "report.pdf", "JVBERi0", "the report is attached", "alice.replies", "mixed@example.org", "192.0.2.1", "carol@"} {
		if strings.Contains(string(m.Data), leak) || strings.Contains(p.body, leak) {
			t.Errorf("notice carries %q", leak)
		}
	}
	for _, want := range []string{"Date: Mon, 01 Jan 2024 10:00:00 +1300", "From: Alice Example <alice@example.org>", "To: Bob <bob@agency.govt.nz>", "Subject: Report and attachments"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("notice lacks %q", want)
		}
	}
}

// TestOriginalFromHeaders: decoding and sanitising of the R77 fields.
func TestOriginalFromHeaders(t *testing.T) {
	o := OriginalFromHeaders(hs(
		"subject", "=?utf-8?q?Kia_ora_=E2=80=93_t=C4=93n=C4=81_koe?=",
		"Subject", "second subject ignored",
		"From", "=?iso-8859-1?q?Andr=E9?= <andre@example.org>",
		"To", "a@example.org,\n\tb@example.org",
		"Date", "Mon, 1 Jan 2024\r\n 10:00:00 +1300",
		"X-Other", "ignored"))
	want := Original{Date: "Mon, 1 Jan 2024 10:00:00 +1300", From: "Andr\u00e9 <andre@example.org>",
		To: "a@example.org, b@example.org", Subject: "Kia ora \u2013 t\u0113n\u0101 koe"}
	if o != want {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	// A forged line break cannot add a header to the notice.
	o = OriginalFromHeaders(hs("Subject", "=?utf-8?q?x=0D=0ABcc:_victim@example.net?="))
	m, err := testGen().Notice(NoticeParams{Code: "002", To: []string{"bob@agency.govt.nz"}, Original: o})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(m.Data, []byte("\r\nBcc:")) {
		t.Error("header injection through the original subject")
	}
}

// TestReceiptsGolden: R73, R74 and Table 4.
func TestReceiptsGolden(t *testing.T) {
	orig := OriginalFromHeaders(origHeaders(t, "alternative.eml"))
	received := time.Date(2024, 1, 1, 10, 0, 1, 0, time.FixedZone("NZDT", 13*3600))
	dr, err := testGen().DeliveryReceipt(ReceiptParams{To: "alice@example.org", Original: orig, Received: received,
		Recipients: []string{"bob@agency.govt.nz", "carol@agency.govt.nz"}, InReplyTo: "<alt@example.org>"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "messages/delivery-receipt.eml", dr.Data)
	p := parseGenerated(t, dr)
	lines := strings.Split(p.body, "\n")
	if lines[0] != DeliveryReceiptText {
		t.Errorf("first line %q, want Table 4 row 1", lines[0])
	}
	if !strings.Contains(p.body, R73Wording) {
		t.Error("R73 wording missing")
	}
	for _, want := range []string{"Date: Mon, 01 Jan 2024 10:00:00 +1300", "From: Alice Example <alice@example.org>", "To: Bob <bob@agency.govt.nz>",
		"Subject: [IN-CONFIDENCE] Budget", "Delivered to: bob@agency.govt.nz, carol@agency.govt.nz", "Received: Mon, 01 Jan 2024 10:00:01 +1300"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("receipt lacks %q", want)
		}
	}
	if p.h.Get("Auto-Submitted") != "auto-replied" || p.h.Get("In-Reply-To") != "<alt@example.org>" {
		t.Errorf("headers: %q %q", p.h.Get("Auto-Submitted"), p.h.Get("In-Reply-To"))
	}
	if s, _ := p.h.Subject(); s != "DELIVERY RECEIPT: [IN-CONFIDENCE] Budget" {
		t.Errorf("Subject %q", s)
	}
	if len(dr.Rcpts) != 1 || dr.Rcpts[0] != "alice@example.org" || dr.Kind != "delivery receipt" {
		t.Errorf("envelope %v %q", dr.Rcpts, dr.Kind)
	}

	ndr, err := testGen().NonDeliveryReport(ReceiptParams{To: "Alice <alice@example.org>", Original: orig, Received: received,
		Recipients: []string{"nobody@agency.govt.nz"}, Reason: "no such mailbox"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "messages/non-delivery-report.eml", ndr.Data)
	p = parseGenerated(t, ndr)
	lines = strings.Split(p.body, "\n")
	if lines[0] != NonDeliveryReportText {
		t.Errorf("first line %q, want Table 4 row 2", lines[0])
	}
	if !strings.Contains(p.body, R74Sentence+": no such mailbox.") || !strings.Contains(p.body, "Not delivered to: nobody@agency.govt.nz") {
		t.Errorf("NDR body:\n%s", p.body)
	}
	ndr2, _ := testGen().NonDeliveryReport(ReceiptParams{To: "alice@example.org", Original: orig})
	if !strings.Contains(parseGenerated(t, ndr2).body, R74Sentence+".") {
		t.Error("NDR without a reason lacks R74's sentence")
	}
}

// TestPingReplyGolden: R96-R99.
func TestPingReplyGolden(t *testing.T) {
	ping := hs("From", "Tester <smarts@test.govt.nz>", "To", "ping@agency.govt.nz", "Subject", "ping",
		"Date", "Tue, 02 Jan 2024 03:00:00 +1300", "Message-ID", "<ping-1@test.govt.nz>")
	m, err := testGen().PingReply(ping, "smarts@test.govt.nz", PingInfo{
		Product: "nzsecure-milter", Version: "1.2.3", Environment: "SEEMail", EnvironmentVersion: "2.0",
		Agencies: []string{"agency.govt.nz", "other.govt.nz", "ird.govt.nz"}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "messages/ping-reply.eml", m.Data)
	p := parseGenerated(t, m)
	for _, want := range []string{"Gateway software: nzsecure-milter 1.2.3", "Secure Email environment: SEEMail 2.0",
		"Known secure agencies (3):", "  other.govt.nz", "Subject: ping"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("ping reply lacks %q:\n%s", want, p.body)
		}
	}
	if p.h.Get("In-Reply-To") != "<ping-1@test.govt.nz>" || p.h.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("headers %q %q", p.h.Get("In-Reply-To"), p.h.Get("Auto-Submitted"))
	}
	if strings.Contains(p.body, "S/MIME of your ping") {
		t.Error("an S/MIME line without S/MIME facts")
	}
	// R98: what the gateway found of the ping's S/MIME, on one line.
	m, err = testGen().PingReply(ping, "smarts@test.govt.nz", PingInfo{Product: "nzsecure-milter", Version: "1.2.3",
		SMIME: "not verified: the sender's certificate\r\nis revoked (Table 1/3 state 101)"})
	if err != nil {
		t.Fatal(err)
	}
	if p := parseGenerated(t, m); !strings.Contains(p.body, "S/MIME of your ping: not verified: the sender's certificate") {
		t.Errorf("no S/MIME line:\n%s", p.body)
	}
}

func TestGeneratorErrors(t *testing.T) {
	g := testGen()
	if _, err := g.Notice(NoticeParams{Code: "002", To: []string{"", "-oX@x", "no-domain"}}); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("bad recipients: %v", err)
	}
	if _, err := g.Notice(NoticeParams{Code: "007", To: []string{"a@b.nz"}}); !errors.Is(err, ErrUnknownCode) {
		t.Errorf("retired code: %v", err)
	}
	if _, err := (Generator{}).DeliveryReceipt(ReceiptParams{To: "a@b.nz"}); err == nil {
		t.Error("no domain accepted")
	}
	// A long non-ASCII subject is encoded and folded, and decodes back.
	long := strings.Repeat("t\u0113n\u0101 koe ", 20)
	m, err := g.DeliveryReceipt(ReceiptParams{To: "a@b.nz", Original: Original{Subject: long}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(m.Data), "\r\n") {
		if len(l) > 998 {
			t.Errorf("line of %d bytes", len(l))
		}
	}
	p := parseGenerated(t, m)
	if s, _ := p.h.Subject(); s != "DELIVERY RECEIPT: "+strings.TrimSpace(long) {
		t.Errorf("Subject %q", s)
	}
}

// The Table 1 "Untrusted / Unknown CA" notice to the recipient's
// postmaster: from our postmaster, auto-generated, to the peer's.
func TestCertificateReplaced(t *testing.T) {
	g := Generator{Domain: "agency.govt.nz"}
	m, err := g.CertificateReplaced(CertReplacedParams{To: "postmaster@agency-b.govt.nz", Domain: "agency-b.govt.nz",
		Detail: "replaced: 00cc", Original: Original{Subject: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(m.Data)
	for _, want := range []string{"From: Postmaster <postmaster@agency.govt.nz>", "To: postmaster@agency-b.govt.nz",
		"Subject: SECURE EMAIL CERTIFICATE REPLACED: agency-b.govt.nz", "Auto-Submitted: auto-generated", "replaced: 00cc", "Subject: hello"} {
		if !strings.Contains(s, want) {
			t.Errorf("notice lacks %q:\n%s", want, s)
		}
	}
	if len(m.Rcpts) != 1 || m.Rcpts[0] != "postmaster@agency-b.govt.nz" {
		t.Errorf("rcpts %v", m.Rcpts)
	}
}
