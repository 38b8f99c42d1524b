package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Mode is how a warning reaches the recipient (DESIGN.md, "Warnings to
// recipients"; R76-R80).
type Mode string

const (
	// ModeWrap (the default): a new multipart/mixed message whose first
	// part is the warning and whose second part is the original as
	// message/rfc822.
	ModeWrap Mode = "wrap"
	// ModePrepend: a banner at the top of every inline text/plain and
	// text/html part, in the part's own charset and transfer encoding.
	ModePrepend Mode = "prepend"
	// ModeHeader: only the X-NZ-Secure-Warning header.
	ModeHeader Mode = "header"
)

// ParseMode reads a policy value; "" is ModeWrap.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeWrap, nil
	case ModeWrap, ModePrepend, ModeHeader:
		return m, nil
	}
	return "", fmt.Errorf("%w: %q (want wrap, prepend or header)", ErrBadMode, s)
}

// Options says which warning to apply and how.
type Options struct {
	Mode Mode   // "" is ModeWrap
	Code string // Table 3 code (R78)
	// Text fills the Table 2 placeholders and carries the R78 link.
	Text TextParams
	// OmitOriginal makes wrap mode leave the original out (R80: a message
	// that cannot be decrypted need not be attached to the warning).
	OmitOriginal bool
	// Gateway identifies this gateway in the X-NZ-Secure-Warning header
	// (the authserv-id is a good choice). A message that already has a
	// warning header from this gateway is refused with ErrAlreadyWarned;
	// warning headers from anyone else are removed. With Gateway empty,
	// any X-NZ-Secure-Warning header counts as ours.
	Gateway string
	// Secret, when set, authenticates the header: it carries an HMAC of
	// the code, the gateway and the Message-ID, and a header that claims
	// our Gateway without a valid MAC is treated as forged (removed).
	Secret []byte
	// StrictText never replaces the spec's EN DASH with "-" in prepend
	// banners: a part whose charset lacks it is converted to UTF-8 instead.
	// By default the dash is folded to "-" for such parts (US-ASCII,
	// ISO-8859-1 and others), which keeps their charset.
	StrictText bool
	// MaxTextPart is the largest text part prepend mode rewrites (default
	// 16 MiB); a larger one makes prepend fall back to wrap.
	MaxTextPart int64
	// Rand is the source of MIME boundaries; nil is crypto/rand.
	Rand io.Reader
}

// Result is a warning applied to a message: header edits relative to the
// original header list and, unless the body is unchanged, the new body.
// Header names touched: MIME-Version, Content-* (wrap; prepend only for a
// single-part text message), X-NZ-Secure-Warning.
type Result struct {
	// Mode is the mode used: ModePrepend falls back to ModeWrap when not
	// every inline text part can carry the banner (Fallback says why).
	Mode     Mode
	Code     string
	Fallback string
	// Edits are the header changes, to apply in order (message.OpAdd,
	// OpChange and OpDelete). Deletions of one name come last index first
	// and before a change of index 1, so the indexes hold whether or not
	// the MTA renumbers after a deletion. Values are unfolded and have no
	// leading space.
	Edits []message.HeaderEdit
	// Body is the new body (everything after the header block), streamed
	// from the original; nil when the body is unchanged (header mode). It
	// can be read once.
	Body io.Reader
	// Banners is the number of text parts prepend mode put the banner in.
	Banners int

	src    src
	top    hdr
	bodyAt int64
}

// Headers returns the header list after the edits, in the milter's form.
func (r *Result) Headers() []policy.Header {
	hs := make([]policy.Header, 0, len(r.top.fields)+2)
	for _, f := range r.top.fields {
		hs = append(hs, policy.Header{Name: f.name, Value: f.folded})
	}
	return message.ApplyEdits(hs, r.Edits)
}

// WriteTo writes the whole new message: the header after the edits, then
// the body (consuming Body). Unchanged header fields keep their raw bytes.
func (r *Result) WriteTo(w io.Writer) (int64, error) {
	eol := r.top.eol
	if eol == "" {
		eol = "\r\n"
	}
	type line struct {
		name, value string
		raw         []byte
	}
	lines := make([]line, 0, len(r.top.fields)+4)
	for _, f := range r.top.fields {
		lines = append(lines, line{f.name, f.value, f.raw})
	}
	lines = message.ApplyEditsFunc(lines, r.Edits, func(l line) string { return l.name },
		func(name, value string) line { return line{name: name, value: value} },
		func(l line, value string) line { return line{name: l.name, value: value} })
	var b bytes.Buffer
	for _, l := range lines {
		if l.raw != nil {
			b.Write(l.raw)
			if !bytes.HasSuffix(l.raw, []byte("\n")) { // the last line of a message without a body
				b.WriteString(eol)
			}
			continue
		}
		b.WriteString(message.HeaderField(l.name, l.value, eol))
	}
	b.WriteString(eol)
	n, err := w.Write(b.Bytes())
	total := int64(n)
	if err != nil {
		return total, err
	}
	body := r.Body
	if body == nil {
		body = section(r.src, r.bodyAt, r.src.Size())
	}
	m, err := io.Copy(w, body)
	return total + m, err
}

// Apply applies the warning opts.Code in opts.Mode to original, a whole
// RFC 5322 message (header block and body). Readers with random access
// (bytes.Reader, strings.Reader, io.SectionReader, *os.File) are not
// copied: the result's Body streams from them, so they must stay readable
// until Body is consumed. A leading mbox "From " line is skipped.
//
// It refuses (ErrAlreadyWarned) a message that already carries this
// gateway's X-NZ-Secure-Warning header (R79: never a second warning), an
// unknown code (ErrUnknownCode) and a header block that is not RFC 5322
// (ErrMalformed). Malformed MIME below the header never fails: what cannot
// be read is left as it is, and prepend mode falls back to wrap.
func Apply(opts Options, original io.Reader) (*Result, error) {
	s, err := toSrc(original)
	if err != nil {
		return nil, err
	}
	// An mbox separator line ("From sender date"), as saved by mail
	// clients, is not part of the message.
	if first, _ := readRange(s, 0, min(4096, s.Size())); bytes.HasPrefix(first, []byte("From ")) {
		if i := bytes.IndexByte(first, '\n'); i >= 0 {
			s = io.NewSectionReader(s, int64(i+1), s.Size()-int64(i+1))
		}
	}
	return applySrc(opts, s)
}

// ApplyParts is Apply for the milter: headers as the MTA passed them
// (policy.Header values, folds as "\n"), body as spooled (CRLF line ends).
// The original the warning refers to, and that wrap mode attaches, is the
// header block rebuilt from headers (message.HeaderBlock, CRLF, as
// pipeline.HeaderBlock gives DKIM) followed by body.
func ApplyParts(opts Options, headers []policy.Header, body io.Reader) (*Result, error) {
	bs, err := toSrc(body)
	if err != nil {
		return nil, err
	}
	var hb bytes.Buffer
	for _, h := range headers {
		if !message.ValidFieldName(h.Name) {
			return nil, fmt.Errorf("%w: %q is not a header field name", ErrMalformed, h.Name)
		}
	}
	hb.WriteString(message.HeaderBlock(headers, "\r\n"))
	s := newConcat(bytes.NewReader(hb.Bytes()), bs)
	return applySrc(opts, s)
}

// applySrc reads the header block of s and applies opts to the message.
func applySrc(opts Options, s src) (*Result, error) {
	top, err := readHdr(s, 0, s.Size())
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			err = fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, err
	}
	if err := top.fillRaw(s); err != nil {
		return nil, err
	}
	return apply(opts, s, top)
}

func apply(opts Options, s src, top hdr) (*Result, error) {
	mode, err := ParseMode(string(opts.Mode))
	if err != nil {
		return nil, err
	}
	short, err := ShortText(opts.Code)
	if err != nil {
		return nil, err
	}
	if top.eol == "" {
		top.eol = "\r\n"
	}
	msgID, _ := top.get("Message-Id")
	r := &Result{Mode: mode, Code: opts.Code, src: s, top: top, bodyAt: top.end}

	// R79: one warning per message. Ours refuses; others are removed.
	var foreign []int
	n := 0
	for _, f := range top.fields {
		if !strings.EqualFold(f.name, WarningHeader) {
			continue
		}
		n++
		if ours(opts, f.value, msgID) {
			return nil, fmt.Errorf("%w: %s: %s", ErrAlreadyWarned, WarningHeader, message.Clip(f.value, 80))
		}
		foreign = append(foreign, n)
	}

	switch mode {
	case ModePrepend:
		p := newPrepender(opts, s, top)
		if err := p.run(); err != nil {
			return nil, err
		}
		if p.failed == "" && p.banners > 0 {
			r.Edits = p.topEdits
			r.Body = splice(s, top.end, s.Size(), p.reps)
			r.Banners = p.banners
			break
		}
		r.Fallback = p.failed
		if r.Fallback == "" {
			r.Fallback = "no inline text part to put the banner in"
		}
		r.Mode = ModeWrap
		fallthrough
	case ModeWrap:
		if err := wrap(opts, r); err != nil {
			return nil, err
		}
	case ModeHeader:
	}
	for i := len(foreign) - 1; i >= 0; i-- {
		r.Edits = append(r.Edits, message.HeaderEdit{Op: message.OpDelete, Name: WarningHeader, Index: foreign[i]})
	}
	r.Edits = append(r.Edits, message.HeaderEdit{Op: message.OpAdd, Name: WarningHeader, Value: warningValue(opts, short, msgID)})
	return r, nil
}

// warningValue is the X-NZ-Secure-Warning value: "<code> <heading>", then
// "(<gateway>)" or "(<gateway> mac=<mac>)" when a gateway is configured.
func warningValue(opts Options, short, msgID string) string {
	gw := oneLine(opts.Gateway)
	if gw == "" {
		return short
	}
	gw = strings.NewReplacer("(", "", ")", "", " ", "").Replace(gw)
	if len(opts.Secret) == 0 {
		return short + " (" + gw + ")"
	}
	return short + " (" + gw + " mac=" + warningMAC(opts.Secret, opts.Code, gw, msgID) + ")"
}

func warningMAC(secret []byte, code, gateway, msgID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(code + "\x00" + strings.ToLower(gateway) + "\x00" + strings.TrimSpace(msgID)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

var warningRE = regexp.MustCompile(`^\s*(\d{3}) [A-Z ]+?(?: \((\S+?)(?: mac=([A-Za-z0-9_-]+))?\))?\s*$`)

// ours reports whether an X-NZ-Secure-Warning value was written by this
// gateway (see Options.Gateway and Options.Secret).
func ours(opts Options, value, msgID string) bool {
	if opts.Gateway == "" {
		return true
	}
	m := warningRE.FindStringSubmatch(strings.ReplaceAll(value, "\n", ""))
	if m == nil {
		return false
	}
	gw := strings.NewReplacer("(", "", ")", "", " ", "").Replace(oneLine(opts.Gateway))
	if !strings.EqualFold(m[2], gw) {
		return false
	}
	if len(opts.Secret) == 0 {
		return true
	}
	want := warningMAC(opts.Secret, m[1], gw, msgID)
	return hmac.Equal([]byte(m[3]), []byte(want))
}

// newBoundary returns a boundary that cannot occur in quoted-printable or
// base64 text ("=_" is invalid in both) with 120 random bits.
func newBoundary(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [15]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("boundary: %w", err)
	}
	return "=_NZSecure_" + base32.StdEncoding.EncodeToString(b[:]), nil
}

// scanOriginal reports whether needle occurs in s and whether s has 8-bit
// bytes, reading it once in blocks.
func scanOriginal(s src, needle []byte) (found, eightBit bool, err error) {
	const block = 64 * 1024
	buf := make([]byte, block+len(needle))
	keep := 0
	for off := int64(0); off < s.Size(); {
		n := int64(block)
		if rest := s.Size() - off; rest < n {
			n = rest
		}
		m, rerr := s.ReadAt(buf[keep:keep+int(n)], off)
		if m < int(n) {
			if rerr == nil {
				rerr = io.ErrUnexpectedEOF
			}
			return false, false, rerr
		}
		chunk := buf[:keep+m]
		if !found && bytes.Contains(chunk, needle) {
			found = true
		}
		if !eightBit && hasNonASCII(buf[keep:keep+m]) {
			eightBit = true
		}
		if found && eightBit {
			return
		}
		off += n
		keep = len(needle) - 1
		if keep > len(chunk) {
			keep = len(chunk)
		}
		copy(buf, chunk[len(chunk)-keep:])
	}
	return found, eightBit, nil
}

// OriginalNotAttached is the line wrap mode adds when the original is left
// out (R80).
const OriginalNotAttached = "The original message could not be attached to this warning."

// wrap builds the multipart/mixed body and the header edits of wrap mode.
func wrap(opts Options, r *Result) error {
	eol := r.top.eol
	var boundary string
	var eightBit bool
	for try := 0; ; try++ {
		b, err := newBoundary(opts.Rand)
		if err != nil {
			return err
		}
		found, eb, err := scanOriginal(r.src, []byte(b))
		if err != nil {
			return fmt.Errorf("reading the original message: %w", err)
		}
		if !found {
			boundary, eightBit = b, eb
			break
		}
		if try == 8 {
			return fmt.Errorf("%w: no MIME boundary absent from the original", ErrMalformed)
		}
	}
	lines, err := WarningLines(opts.Code, opts.Text)
	if err != nil {
		return err
	}
	if opts.OmitOriginal {
		lines = append(lines, "", OriginalNotAttached)
	}
	text := strings.Join(lines, eol) + eol

	var head bytes.Buffer
	w := func(s ...string) {
		for _, x := range s {
			head.WriteString(x)
		}
		head.WriteString(eol)
	}
	w("This is a multi-part message in MIME format.")
	w()
	w("--", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: quoted-printable")
	w("Content-Disposition: inline")
	w("Content-Description: Secure Email warning")
	w()
	head.Write(encodeCTE("quoted-printable", []byte(text), eol))
	parts := []io.Reader{&head}
	if !opts.OmitOriginal {
		w()
		w("--", boundary)
		w("Content-Type: message/rfc822")
		w("Content-Disposition: inline")
		w("Content-Description: Original message")
		if eightBit {
			w("Content-Transfer-Encoding: 8bit")
		}
		w()
		parts = append(parts, section(r.src, 0, r.src.Size()))
	}
	parts = append(parts, strings.NewReader(eol+"--"+boundary+"--"+eol))
	r.Body = io.MultiReader(parts...)

	// Header edits: the old MIME header fields described the original
	// body, which is now inside the second part.
	cte := ""
	if eightBit && !opts.OmitOriginal {
		cte = "8bit"
	}
	set := map[string]string{
		"content-type":              `multipart/mixed; boundary="` + boundary + `"`,
		"mime-version":              "1.0",
		"content-transfer-encoding": cte,
	}
	canonical := map[string]string{"content-type": "Content-Type", "mime-version": "MIME-Version", "content-transfer-encoding": "Content-Transfer-Encoding"}
	type occ struct {
		name   string
		values []string
	}
	seen := map[string]*occ{}
	var order []string
	for _, f := range r.top.fields {
		k := strings.ToLower(f.name)
		if k != "mime-version" && !strings.HasPrefix(k, "content-") {
			continue
		}
		o := seen[k]
		if o == nil {
			o = &occ{name: f.name}
			seen[k] = o
			order = append(order, k)
		}
		o.values = append(o.values, f.value)
	}
	for _, k := range order {
		o := seen[k]
		want, keep := set[k]
		last := 1
		if !keep || want == "" {
			last = 0
		}
		for i := len(o.values); i > last; i-- {
			r.Edits = append(r.Edits, message.HeaderEdit{Op: message.OpDelete, Name: o.name, Index: i})
		}
		if last == 1 && o.values[0] != want {
			r.Edits = append(r.Edits, message.HeaderEdit{Op: message.OpChange, Name: o.name, Index: 1, Value: want})
		}
	}
	for _, k := range []string{"mime-version", "content-type", "content-transfer-encoding"} {
		if _, ok := seen[k]; !ok && set[k] != "" {
			r.Edits = append(r.Edits, message.HeaderEdit{Op: message.OpAdd, Name: canonical[k], Value: set[k]})
		}
	}
	return nil
}

// replacement is new bytes for the range [start, end) of the original.
type replacement struct {
	start, end int64
	data       []byte
}

// splice streams [from, to) of s with the replacements (sorted, disjoint,
// inside the range) put in place.
func splice(s src, from, to int64, reps []replacement) io.Reader {
	var rs []io.Reader
	at := from
	for _, rep := range reps {
		rs = append(rs, section(s, at, rep.start), bytes.NewReader(rep.data))
		at = rep.end
	}
	rs = append(rs, section(s, at, to))
	return io.MultiReader(rs...)
}
