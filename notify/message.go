package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ErrNoRecipient: a generated message needs at least one valid recipient.
var ErrNoRecipient = errors.New("no valid recipient")

// Message is a message the gateway generates (notice, receipt, ping reply),
// ready for a Submitter.
type Message struct {
	// EnvelopeFrom is the SMTP MAIL FROM; "" is the null sender, the
	// default for generated mail so that a failure cannot loop back
	// (RFC 5321 section 4.5.5, R93).
	EnvelopeFrom string
	Rcpts        []string
	// Data is the whole RFC 5322 message, CRLF line ends.
	Data []byte
	// Kind names the message for logs: "notice 002", "delivery receipt",
	// "non delivery report", "ping reply".
	Kind string
}

// Original is what a notification may carry of the message it is about:
// R77 allows only the TO:, FROM:, DATE: and SUBJECT: header information,
// never the body or attachments. Values are decoded (RFC 2047) and made
// single-line.
type Original struct {
	Date    string
	From    string
	To      string
	Subject string
}

// OriginalFromHeaders takes the R77 fields from a header list: the first
// Date, From, To and Subject. Nothing else of the original is kept, so
// nothing else can leak into a notification.
func OriginalFromHeaders(hs []policy.Header) Original {
	var o Original
	seen := map[string]bool{}
	for _, h := range hs {
		k := strings.ToLower(strings.TrimSpace(h.Name))
		if seen[k] {
			continue
		}
		var dst *string
		switch k {
		case "date":
			dst = &o.Date
		case "from":
			dst = &o.From
		case "to":
			dst = &o.To
		case "subject":
			dst = &o.Subject
		default:
			continue
		}
		seen[k] = true
		*dst = decodeHeaderText(h.Value)
	}
	return o
}

// decodeHeaderText unfolds a header value, decodes its encoded words and
// makes it one safe line. The decoding is message.DecodeWords, as the
// author parser reads display names (issue 13: one charset lookup): a
// word in an unknown charset, or raw 8-bit text, is read as UTF-8 or
// Latin-1 instead of left encoded.
func decodeHeaderText(v string) string {
	return oneLine(message.DecodeWords(message.Unfold(v)))
}

// Generator builds the messages the gateway sends. They all come from
// postmaster@Domain (R92) and carry Auto-Submitted (RFC 3834), a Date and
// a Message-ID.
type Generator struct {
	// Domain is our mail domain: From: postmaster@Domain, and the right
	// side of Message-IDs.
	Domain string
	// EnvelopeFrom overrides the null envelope sender of generated mail.
	EnvelopeFrom string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Rand is the source of Message-IDs; nil is crypto/rand.
	Rand io.Reader
}

// Postmaster is the From: address of every generated message (R92).
func (g Generator) Postmaster() string { return "postmaster@" + normDomain(g.Domain) }

func (g Generator) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// messageID returns a fresh Message-ID (with angle brackets).
func (g Generator) messageID() (string, error) {
	r := g.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [15]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("message-id: %w", err)
	}
	return "<" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])) + ".nzsecure@" + normDomain(g.Domain) + ">", nil
}

// header is one field of a generated message.
type genField struct{ name, value string }

// build writes a text/plain UTF-8 quoted-printable message. rcpts are
// validated envelope addresses; to is the To: header value.
func (g Generator) build(kind string, rcpts []string, subject, autoSubmitted string, extra []genField, lines []string) (*Message, error) {
	if normDomain(g.Domain) == "" {
		return nil, fmt.Errorf("generator: no domain for postmaster@domain (R92)")
	}
	var clean []string
	for _, r := range rcpts {
		if a := bareAddress(r); a != "" && strings.Contains(a, "@") && validEnvelopeAddress(a) == nil {
			clean = append(clean, a)
		}
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("%s: %w", kind, ErrNoRecipient)
	}
	id, err := g.messageID()
	if err != nil {
		return nil, err
	}
	fields := []genField{
		{"From", "Postmaster <" + g.Postmaster() + ">"},
		{"To", strings.Join(clean, ", ")},
		{"Date", g.now().Format("Mon, 02 Jan 2006 15:04:05 -0700")},
		{"Subject", encodeSubject(subject)},
		{"Message-ID", id},
		{"Auto-Submitted", autoSubmitted},
	}
	fields = append(fields, extra...)
	fields = append(fields,
		genField{"MIME-Version", "1.0"},
		genField{"Content-Type", "text/plain; charset=utf-8"},
		genField{"Content-Transfer-Encoding", "quoted-printable"},
	)
	var b bytes.Buffer
	for _, f := range fields {
		b.WriteString(foldField(f.name, f.value))
	}
	b.WriteString("\r\n")
	b.Write(encodeCTE("quoted-printable", []byte(strings.Join(lines, "\r\n")+"\r\n"), "\r\n"))
	from := g.EnvelopeFrom
	return &Message{EnvelopeFrom: from, Rcpts: clean, Data: b.Bytes(), Kind: kind}, nil
}

// encodeSubject makes a subject one line and RFC 2047-encodes it when it is
// not ASCII.
func encodeSubject(s string) string {
	s = oneLine(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// foldField writes "Name: value" folded at white space to lines of at most
// 78 characters where possible (RFC 5322 section 2.2.3), CRLF ended.
func foldField(name, value string) string {
	line := name + ":"
	var b strings.Builder
	for _, w := range strings.Fields(value) {
		if len(line)+1+len(w) > 78 && len(line) > len(name)+1 {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + w
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// originalLines renders the R77 header information.
func originalLines(o Original) []string {
	return []string{
		"Date: " + o.Date,
		"From: " + o.From,
		"To: " + o.To,
		"Subject: " + o.Subject,
	}
}

// NoticeParams describe a postmaster notice (R42, R77, R92).
type NoticeParams struct {
	Code     string   // Table 3 code
	To       []string // who is notified: the sender, our postmaster, ...
	Original Original // R77: To/From/Date/Subject of the original only
	Text     TextParams
}

// Notice builds an exception / notification message (R42, R77, R92): from
// postmaster@Domain, Auto-Submitted: auto-generated, its first line the
// Table 2 text with the code, then the Table 3 description, the R78 link
// when configured, and the original's Date, From, To and Subject. The
// Subject is the Table 2 heading with the code and the original subject.
// Call ShouldNotify and a RateLimiter before sending it (R93-R95).
func (g Generator) Notice(p NoticeParams) (*Message, error) {
	lines, err := WarningLines(p.Code, p.Text)
	if err != nil {
		return nil, err
	}
	w, _ := Warning(p.Code)
	t, _ := Table2Entry(w.Row)
	lines = append(lines, "", "Original message:")
	lines = append(lines, originalLines(p.Original)...)
	subject := t.Heading + " [Code: " + p.Code + "]"
	if p.Original.Subject != "" {
		subject += ": " + p.Original.Subject
	}
	return g.build("notice "+p.Code, p.To, subject, "auto-generated", nil, lines)
}

// CertReplacedParams describe the notice to a peer agency's postmaster
// that the untrusted certificate this gateway held for its domain was
// replaced by a valid one found by LDAP discovery (Table 1, sending,
// "Untrusted / Unknown CA": "Success: Send message. Notify Recipient's
// Postmaster").
type CertReplacedParams struct {
	To       string   // postmaster@ the peer domain
	Domain   string   // the peer domain
	Detail   string   // which certificates, by fingerprint
	Original Original // R77: the message that was sent with the new one
}

// CertificateReplaced builds that notice: from postmaster@Domain,
// Auto-Submitted: auto-generated. Table 2 has no text for it (it is not a
// warning: the message was delivered securely), so it says what happened.
func (g Generator) CertificateReplaced(p CertReplacedParams) (*Message, error) {
	d := oneLine(p.Domain)
	lines := []string{
		"SECURE EMAIL CERTIFICATE REPLACED – The certificate this gateway held for " + d + " was untrusted (no chain to an accredited CA); a valid certificate found by LDAP discovery replaced it, and the message below was signed and encrypted to the new one.",
	}
	if detail := oneLine(p.Detail); detail != "" {
		lines = append(lines, "", detail)
	}
	lines = append(lines, "", "Original message:")
	lines = append(lines, originalLines(p.Original)...)
	return g.build("certificate replaced", []string{p.To}, "SECURE EMAIL CERTIFICATE REPLACED: "+d, "auto-generated", nil, lines)
}

// ReceiptParams describe a delivery receipt or a non delivery report
// (R73, R74, Table 4).
type ReceiptParams struct {
	// To is the authenticated sender the report goes to.
	To string
	// Original is the original's Date (date/time sent), From, To, Subject.
	Original Original
	// Received is when this gateway received the message (R73: "date
	// received / time received"); zero omits it.
	Received time.Time
	// Recipients are the addressees delivered to (receipt) or not
	// delivered to (report).
	Recipients []string
	// Reason is R74's optional "additional information about the reason
	// for the failure (e.g. no such mailbox, mailbox is full, ...)".
	Reason string
	// InReplyTo is the original's Message-ID, for threading; optional.
	InReplyTo string
}

// DeliveryReceipt builds the DELIVERY RECEIPT of R73: its first line is
// Table 4 row 1 (which contains R73's mandatory sentence), then the
// original's date, sender, receiver(s) and subject and when it was
// received. From postmaster@Domain, Auto-Submitted: auto-replied.
func (g Generator) DeliveryReceipt(p ReceiptParams) (*Message, error) {
	lines := []string{DeliveryReceiptText, "", "Original message:"}
	lines = append(lines, originalLines(p.Original)...)
	if len(p.Recipients) > 0 {
		lines = append(lines, "Delivered to: "+oneLine(strings.Join(p.Recipients, ", ")))
	}
	if !p.Received.IsZero() {
		lines = append(lines, "Received: "+p.Received.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	return g.build("delivery receipt", []string{p.To}, "DELIVERY RECEIPT: "+p.Original.Subject, "auto-replied", threading(p.InReplyTo), lines)
}

// NonDeliveryReport builds the NON DELIVERY REPORT of R74: its first line is
// Table 4 row 2, then R74's mandatory sentence (the two differ in wording,
// both are required) with the reason when known, the recipients not
// delivered to, and the original's date/time sent, To, From and Subject.
func (g Generator) NonDeliveryReport(p ReceiptParams) (*Message, error) {
	r74 := R74Sentence + "."
	if reason := oneLine(p.Reason); reason != "" {
		r74 = R74Sentence + ": " + reason
		if !strings.HasSuffix(reason, ".") {
			r74 += "."
		}
	}
	lines := []string{NonDeliveryReportText, "", r74, ""}
	if len(p.Recipients) > 0 {
		lines = append(lines, "Not delivered to: "+oneLine(strings.Join(p.Recipients, ", ")), "")
	}
	lines = append(lines, "Original message:")
	lines = append(lines, originalLines(p.Original)...)
	if !p.Received.IsZero() {
		lines = append(lines, "Received: "+p.Received.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	return g.build("non delivery report", []string{p.To}, "NON DELIVERY REPORT: "+p.Original.Subject, "auto-replied", threading(p.InReplyTo), lines)
}

func threading(msgID string) []genField {
	id := oneLine(msgID)
	if id == "" || !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || strings.ContainsAny(id, " \t") {
		return nil
	}
	return []genField{{"In-Reply-To", id}, {"References", id}}
}

// PingInfo is what the ping function answers with (R99).
type PingInfo struct {
	// Product and Version: the gateway software name and version.
	Product, Version string
	// Environment and EnvironmentVersion: the Secure Email environment
	// (SEEMail, SecureMail; SGE today) and its version.
	Environment, EnvironmentVersion string
	// Agencies are the secure agencies (domains) the gateway knows about
	// (R99: SHOULD respond with the list).
	Agencies []string
	// SMIME says what the gateway found of the ping's S/MIME (R98:
	// "verified: signed by ...", "not verified: ..."), "" to say nothing.
	SMIME string
}

// PingReply builds the answer of the ping function (R96-R99) to a message
// with headers orig: the gateway software name and version, the Secure
// Email environment and version, and the known secure agencies. It goes to
// to (the ping's envelope sender) from postmaster@Domain with
// Auto-Submitted: auto-replied. Before sending, the caller checks
// ShouldNotify (no answer to the null sender or to a postmaster); R98
// (signed/encrypted answer to a signed ping) is the notifier's, on the
// engine's smime-sign-encrypt transform (policy/ping.go).
func (g Generator) PingReply(orig []policy.Header, to string, info PingInfo) (*Message, error) {
	o := OriginalFromHeaders(orig)
	agencies := append([]string(nil), info.Agencies...)
	lines := []string{
		"Secure Email ping reply.",
		"",
		"Gateway software: " + oneLine(info.Product+" "+info.Version),
		"Secure Email environment: " + oneLine(info.Environment+" "+info.EnvironmentVersion),
	}
	if sm := oneLine(info.SMIME); sm != "" {
		lines = append(lines, "S/MIME of your ping: "+sm)
	}
	lines = append(lines, "", fmt.Sprintf("Known secure agencies (%d):", len(agencies)))
	for _, a := range agencies {
		if a = oneLine(a); a != "" {
			lines = append(lines, "  "+a)
		}
	}
	lines = append(lines, "", "Your message:")
	lines = append(lines, originalLines(o)...)
	var msgID string
	for _, h := range orig {
		if strings.EqualFold(h.Name, "Message-ID") {
			msgID = h.Value
			break
		}
	}
	return g.build("ping reply", []string{to}, "PING REPLY: "+o.Subject, "auto-replied", threading(msgID), lines)
}
