// Package certmail is the certificate request by mail between agency
// gateways (R44, R51; RFC 8551 section 4 / RFC 2633 section 4: "a user
// agent could automatically generate a message to an intended recipient
// requesting that recipient's certificate in a signed return message"):
// the request a gateway sends to domain-certificate-request@PEER when it
// holds mail for a peer without a valid certificate and LDAP found none,
// the answer carrying our DCA certificates, and reading the certificates
// out of an answer. It builds and parses messages only; validation, the
// peer store and sending are the caller's (pipeline, milter).
package certmail

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/smallstep/pkcs7"
)

// RequestLocal is the local part requests go to (R44: "a special email
// address i.e. domain-certificate-request@domainname").
const RequestLocal = "domain-certificate-request"

// RequestAddress is where a certificate request for domain's gateway goes.
func RequestAddress(domain string) string { return RequestLocal + "@" + strings.ToLower(domain) }

// DCAAddress is the address of domain's DCA certificate (RFC 3183 section
// 4.1, R46): the Subject of a request, and the address requests are sent
// from and answers come back to.
func DCAAddress(domain string) string {
	return smime.DCACommonName + "@" + strings.ToLower(domain)
}

// Bounds of an answer (fail safe: an answer is a few certificates, never a
// reason to read megabytes or recurse without end).
const (
	// MaxAnswer bounds the message body read for certificates.
	MaxAnswer = 1 << 20
	// MaxAttachment bounds one certificate attachment after decoding.
	MaxAttachment = 256 << 10
	// MaxCerts bounds the certificates taken from one answer.
	MaxCerts = 16
	// maxDepth and maxParts bound the MIME walk.
	maxDepth = 4
	maxParts = 64
)

// Sentinel errors, wrapped with detail.
var (
	ErrTooLarge  = errors.New("certmail: answer too large")
	ErrMalformed = errors.New("certmail: malformed certificate attachment")
	ErrNoCerts   = errors.New("certmail: no certificate attachment")
)

// Answer is what ParseAnswer found.
type Answer struct {
	// Certs are the certificates, in order, without duplicates; at most
	// MaxCerts.
	Certs []*x509.Certificate
	// Attachments counts the parts that looked like certificates.
	Attachments int
	// Problems says which parts could not be read (for the log).
	Problems []string
}

// ParseAnswer reads the certificate attachments of a MIME entity (header
// block and body, as received or as an S/MIME layer unwrapped them):
// parts named *.cer, *.crt, *.der, *.pem, *.p7b or *.p7c, or typed
// application/pkix-cert, application/x-x509-ca-cert,
// application/x-x509-user-cert, application/pkcs7-mime with
// smime-type=certs-only or application/x-pkcs7-certificates (R44: "a
// commonly used binary encoded certificate attachment e.g. *.cer or *.crt
// OR a PKCS#7 container e.g. *.p7b or *.p7c"), DER or PEM, base64 or not.
// A part that does not parse is a Problem, never a panic; an entity over
// MaxAnswer is ErrTooLarge; none found is ErrNoCerts.
func ParseAnswer(entity []byte) (a Answer, err error) {
	if len(entity) > MaxAnswer {
		return a, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(entity), MaxAnswer)
	}
	defer func() {
		if v := recover(); v != nil {
			// The MIME walk and the PKCS#7 parser are not meant
			// to panic; should one, the answer is unreadable, nothing more.
			err = fmt.Errorf("%w: %v: %s", ErrMalformed, v, clip(string(debug.Stack()), 512))
		}
	}()
	w := walker{seen: map[string]bool{}}
	if err := w.entity(entity, 0); err != nil {
		return a, err
	}
	a = w.a
	if len(a.Certs) == 0 {
		if len(a.Problems) > 0 {
			return a, fmt.Errorf("%w: %s", ErrNoCerts, strings.Join(a.Problems, "; "))
		}
		return a, ErrNoCerts
	}
	return a, nil
}

type walker struct {
	a     Answer
	parts int
	seen  map[string]bool
}

// maxHeaderBlock bounds the header block of the answer and of each part.
const maxHeaderBlock = 64 << 10

// entity reads one MIME entity, header block and body, with the message
// package's reader, media-type parser and multipart splitter (the ones the
// scanner and the warning rewriter use, issue 13 point 1). A header block
// that cannot be read is an error at the top, a Problem in a part.
func (w *walker) entity(data []byte, depth int) error {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		w.problem("more than %d parts or %d levels: the rest not read", maxParts, maxDepth)
		return nil
	}
	br := bufio.NewReader(bytes.NewReader(data))
	hs, err := message.ReadHeaderBlock(br, maxHeaderBlock)
	if err != nil {
		if depth == 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		w.problem("part header: %v", err)
		return nil
	}
	// The body is what the header reader left: counted, not copied (the
	// entity is in memory, bounded by MaxAnswer).
	left, _ := io.Copy(io.Discard, br)
	body := data[len(data)-int(left):]
	ct := message.ParseMediaType(field(hs, "Content-Type"))
	if ct.Type == "" {
		ct.Type = "text/plain"
	}
	if strings.HasPrefix(ct.Type, "multipart/") {
		b := ct.Params["boundary"]
		if b == "" {
			w.problem("%s without a boundary", ct.Type)
			return nil
		}
		for _, part := range splitParts(body, b) {
			if part.unclosed {
				w.problem("%s: no closing delimiter", ct.Type)
			}
			if err := w.entity(part.data, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	name := filename(hs, ct.Params)
	if !isCertPart(ct.Type, ct.Params, name) {
		return nil
	}
	w.a.Attachments++
	if len(body) > MaxAttachment*2+1 {
		body = body[:MaxAttachment*2+1]
	}
	data, err = decode(field(hs, "Content-Transfer-Encoding"), body)
	if err != nil {
		w.problem("%s: %v", label(name, ct.Type), err)
		return nil
	}
	if len(data) > MaxAttachment {
		w.problem("%s: over %d bytes, not read", label(name, ct.Type), MaxAttachment)
		return nil
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		w.problem("%s: %v", label(name, ct.Type), err)
		return nil
	}
	for _, c := range certs {
		fp := smime.Fingerprint(c)
		if w.seen[fp] {
			continue
		}
		if len(w.a.Certs) >= MaxCerts {
			w.problem("more than %d certificates: the rest not read", MaxCerts)
			return nil
		}
		w.seen[fp] = true
		w.a.Certs = append(w.a.Certs, c)
	}
	return nil
}

// part is one body part of a multipart (its header block and body).
type part struct {
	data     []byte
	unclosed bool // the last part, with no close delimiter after it
}

// splitParts cuts a multipart body at its delimiters (message.Splitter):
// each part runs from after its delimiter line's line break to the line
// break before the next delimiter.
func splitParts(body []byte, boundary string) []part {
	type delim struct {
		start, end int64
		closing    bool
	}
	var ds []delim
	sp := message.NewSplitter(boundary, func([]byte) {}, func(start, end int64, closing bool) {
		ds = append(ds, delim{start, end, closing})
	})
	sp.Write(body)
	sp.Close()
	var parts []part
	for i, d := range ds {
		if d.closing {
			break
		}
		from := int(d.end)
		if from < len(body) && body[from] == '\r' {
			from++
		}
		if from < len(body) && body[from] == '\n' {
			from++
		}
		to, unclosed := len(body), true
		if i+1 < len(ds) {
			to, unclosed = int(ds[i+1].start), false
		}
		if from > to {
			from = to
		}
		parts = append(parts, part{data: body[from:to], unclosed: unclosed})
	}
	return parts
}

// field is the first header field named name, unfolded and trimmed.
func field(hs []message.Header, name string) string {
	if vs := message.HeaderValues(hs, name); len(vs) > 0 {
		return strings.TrimSpace(message.Unfold(vs[0]))
	}
	return ""
}

func (w *walker) problem(format string, args ...any) {
	if len(w.a.Problems) < 8 {
		w.a.Problems = append(w.a.Problems, fmt.Sprintf(format, args...))
	}
}

func label(name, mt string) string {
	if name != "" {
		return fmt.Sprintf("%q", name)
	}
	return mt
}

// filename is the part's file name (Content-Disposition filename, else
// Content-Type name), lower case.
func filename(hs []message.Header, ctParams map[string]string) string {
	if p := message.ParseMediaType(field(hs, "Content-Disposition")).Params; p["filename"] != "" {
		return strings.ToLower(p["filename"])
	}
	return strings.ToLower(ctParams["name"])
}

func isCertPart(mt string, params map[string]string, name string) bool {
	switch path.Ext(name) {
	case ".cer", ".crt", ".der", ".pem", ".p7b", ".p7c":
		return true
	}
	switch mt {
	case "application/pkix-cert", "application/x-x509-ca-cert", "application/x-x509-user-cert",
		"application/x-pkcs7-certificates", "application/pkcs7-certificates":
		return true
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return strings.EqualFold(params["smime-type"], "certs-only")
	}
	return false
}

func decode(cte string, data []byte) ([]byte, error) {
	mech, _ := message.TransferEncoding(cte)
	switch mech {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, data)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
		}
		return out[:n], nil
	case "", "7bit", "8bit", "binary":
		return data, nil
	}
	return nil, fmt.Errorf("%w: transfer encoding %q not used for certificates", ErrMalformed, cte)
}

// ParseCertificates reads one attachment: PEM (one or more CERTIFICATE
// blocks, or a PKCS7 block), a DER certificate, or a DER PKCS#7
// certs-only SignedData (.p7b/.p7c), the PKCS#7 parser under recover.
func ParseCertificates(data []byte) (certs []*x509.Certificate, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(data) > MaxAttachment {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(data), MaxAttachment)
	}
	if bytes.Contains(data, []byte("-----BEGIN PKCS7-----")) {
		if i := bytes.Index(data, []byte("-----BEGIN PKCS7-----")); i >= 0 {
			if der, ok := pemBody(data[i:]); ok {
				return parsePKCS7(der)
			}
		}
	}
	if cs, err := smime.ParseCertificatesPEM(data); err == nil {
		return cs, nil
	}
	return parsePKCS7(data)
}

func pemBody(b []byte) ([]byte, bool) {
	s := string(b)
	_, rest, ok := strings.Cut(s, "-----BEGIN PKCS7-----")
	if !ok {
		return nil, false
	}
	body, _, ok := strings.Cut(rest, "-----END PKCS7-----")
	if !ok {
		return nil, false
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	return der, err == nil
}

func parsePKCS7(der []byte) (certs []*x509.Certificate, err error) {
	defer func() {
		if v := recover(); v != nil {
			certs, err = nil, fmt.Errorf("%w: PKCS#7: %v", ErrMalformed, v)
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: neither a certificate nor a PKCS#7 container: %v", ErrMalformed, err)
	}
	if len(p7.Certificates) == 0 {
		return nil, fmt.Errorf("%w: PKCS#7 container without certificates", ErrMalformed)
	}
	return p7.Certificates, nil
}

// CertsOnly is a PKCS#7 certs-only SignedData holding certs (the .p7c of
// RFC 8551 section 3.6), DER.
func CertsOnly(certs []*x509.Certificate) ([]byte, error) {
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	return pkcs7.DegenerateCertificate(raw)
}

// Header is one generated header field.
type Header struct{ Name, Value string }

// Request is a certificate request (R44): From the DCA address of our
// domain, To the request address of the peer, Subject the target address
// (the peer's DCA). It carries no Auto-Submitted field: it asks for an
// answer, and an RFC 3834 responder would rightly not answer an
// auto-generated message. Loops cannot start from it: a request is only
// ever sent about held mail, never in answer to a message.
type Request struct {
	OurDomain  string
	PeerDomain string
	Date       time.Time
	// Hostname is the Message-ID's right-hand side ("" OurDomain).
	Hostname string
}

// Headers are the request's header fields (without the content headers).
func (r Request) Headers() ([]Header, error) {
	id, err := messageID(r.hostname())
	if err != nil {
		return nil, err
	}
	return []Header{
		{"From", DCAAddress(r.OurDomain)},
		{"To", RequestAddress(r.PeerDomain)},
		{"Subject", DCAAddress(r.PeerDomain)},
		{"Date", date(r.Date)},
		{"Message-ID", id},
		{"MIME-Version", "1.0"},
	}, nil
}

func (r Request) hostname() string {
	if r.Hostname != "" {
		return r.Hostname
	}
	return r.OurDomain
}

// Content is the request's MIME entity (signed by the caller): a short
// text for a human reading it.
func (r Request) Content() []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n")
	b.WriteString("Content-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(&b, "Certificate request (R44): please return the certificate of\r\n%s\r\n", DCAAddress(r.PeerDomain))
	fmt.Fprintf(&b, "as a .cer or .p7c attachment to %s.\r\n", DCAAddress(r.OurDomain))
	return b.Bytes()
}

// AnswerMsg is the answer to a request: our DCA certificates as .cer DER
// attachments and one .p7c holding them all.
type AnswerMsg struct {
	OurDomain string
	To        string
	// Target is the address the request asked for (its Subject).
	Target    string
	InReplyTo string
	Certs     []*x509.Certificate
	// Chain are the issuers of Certs, put in the .p7c only.
	Chain    []*x509.Certificate
	Date     time.Time
	Hostname string
}

// Headers are the answer's header fields. Auto-Submitted: auto-replied
// (RFC 3834 section 5): the requester consumes it and never answers it.
func (a AnswerMsg) Headers() ([]Header, error) {
	host := a.Hostname
	if host == "" {
		host = a.OurDomain
	}
	id, err := messageID(host)
	if err != nil {
		return nil, err
	}
	hs := []Header{
		{"From", DCAAddress(a.OurDomain)},
		{"To", a.To},
		{"Subject", "Certificate of " + a.Target},
		{"Date", date(a.Date)},
		{"Message-ID", id},
		{"Auto-Submitted", "auto-replied"},
		{"MIME-Version", "1.0"},
	}
	if a.InReplyTo != "" {
		hs = append(hs, Header{"In-Reply-To", a.InReplyTo})
	}
	return hs, nil
}

// Content is the answer's MIME entity: multipart/mixed, a text part, each
// certificate as application/pkix-cert *.cer (DER, RFC 2585) and all of
// them as application/pkcs7-mime; smime-type=certs-only certs.p7c.
func (a AnswerMsg) Content() ([]byte, error) {
	if len(a.Certs) == 0 {
		return nil, ErrNoCerts
	}
	p7c, err := CertsOnly(append(append([]*x509.Certificate(nil), a.Certs...), a.Chain...))
	if err != nil {
		return nil, err
	}
	boundary, err := randHex(12)
	if err != nil {
		return nil, err
	}
	boundary = "=_cert_" + boundary
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n")
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(&b, "The certificate(s) of %s (R44), newest first.\r\n", a.Target)
	for i, c := range a.Certs {
		fmt.Fprintf(&b, "%d. SHA-256 %s, valid until %s\r\n", i+1, smime.Fingerprint(c), c.NotAfter.UTC().Format(time.RFC3339))
	}
	for i, c := range a.Certs {
		name := fmt.Sprintf("%s-%d.cer", smime.DCACommonName, i+1)
		attach(&b, boundary, "application/pkix-cert", name, c.Raw)
	}
	attach(&b, boundary, "application/pkcs7-mime; smime-type=certs-only", "certs.p7c", p7c)
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

func attach(b *bytes.Buffer, boundary, ct, name string, data []byte) {
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: " + ct + "; name=\"" + name + "\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
}

// Signed is a whole message: hs, then content signed detached by id
// (multipart/signed, RFC 8551 section 3.5.3), so that a gateway without
// S/MIME still reads it. CRLF line ends.
func Signed(hs []Header, content []byte, id *smime.Identity) ([]byte, error) {
	sig, err := smime.Sign(content, id, true)
	if err != nil {
		return nil, err
	}
	boundary, err := randHex(12)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeHeaders(&b, hs)
	b.Write(smime.DetachedEntity(content, sig, "=_signed_"+boundary))
	return b.Bytes(), nil
}

// Plain is a whole message: hs, then content as it is (the notifier signs
// and encrypts it to a peer whose certificate it has, R62).
func Plain(hs []Header, content []byte) []byte {
	var b bytes.Buffer
	writeHeaders(&b, hs)
	b.Write(content)
	return b.Bytes()
}

func writeHeaders(b *bytes.Buffer, hs []Header) {
	for _, h := range hs {
		b.WriteString(h.Name + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(h.Value) + "\r\n")
	}
}

func date(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.Format(time.RFC1123Z)
}

func messageID(host string) (string, error) {
	r, err := randHex(12)
	if err != nil {
		return "", err
	}
	return "<certreq." + r + "@" + host + ">", nil
}

func randHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Limiter lets one message per key (a peer domain) through per interval
// (R94-R95 frequency: one request per domain per smime.retry_interval, one
// answer per requesting domain per interval). Safe for concurrent use; the
// map is pruned so it stays bounded.
type Limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// maxKeys bounds the limiter's memory.
const maxKeys = 10000

// Allow reports whether key may have a message now, and if so records it.
func (l *Limiter) Allow(key string, interval time.Duration) bool {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	key = strings.ToLower(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < interval {
		return false
	}
	if len(l.last) >= maxKeys {
		for k, t := range l.last {
			if now.Sub(t) >= interval {
				delete(l.last, k)
			}
		}
		if len(l.last) >= maxKeys {
			return false // fail safe: flooded, send nothing more
		}
	}
	l.last[key] = now
	return true
}

// Forget lets key through at the next Allow (a new certificate or key).
func (l *Limiter) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.last, strings.ToLower(key))
}
