package notify

import (
	"bytes"
	"fmt"
	"html"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/unicode"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// Limits of the prepend walk over a MIME tree.
const (
	maxDepth          = 32
	maxParts          = 10000
	defaultMaxTextLen = 16 << 20
)

// prepender plans prepend mode: it walks the MIME tree of the original and
// records, for each inline text/plain or text/html part, the bytes that
// replace it (header block if it changes, and body). Untouched parts stay
// byte for byte. failed is set when a part that a reader would see cannot
// carry the banner; the caller then falls back to wrap, so that a warning
// is never missing from what the recipient reads (R76).
type prepender struct {
	opts     Options
	s        src
	top      hdr
	eol      string
	reps     []replacement
	topEdits []message.HeaderEdit
	banners  int
	parts    int
	failed   string
	plain    [2][]string // banner lines: exact, dash folded (ASCIIDash)
	html     string      // the HTML banner (ASCII only)
}

func newPrepender(opts Options, s src, top hdr) *prepender {
	if opts.MaxTextPart <= 0 {
		opts.MaxTextPart = defaultMaxTextLen
	}
	return &prepender{opts: opts, s: s, top: top, eol: top.eol}
}

func (p *prepender) run() error {
	lines, err := BannerLines(p.opts.Code, p.opts.Text)
	if err != nil {
		return err
	}
	p.plain[0] = lines
	for _, l := range lines {
		p.plain[1] = append(p.plain[1], ASCIIDash(l))
	}
	p.html = htmlBanner(p.opts.Code, lines, p.opts.Text.Link)
	p.walk(p.top, p.top.end, p.s.Size(), 0, true, "text/plain", span{next: -1}, "")
	sort.Slice(p.reps, func(i, j int) bool { return p.reps[i].start < p.reps[j].start })
	return nil
}

func (p *prepender) fail(format string, args ...any) {
	if p.failed == "" {
		p.failed = fmt.Sprintf(format, args...)
	}
}

// contentType reads a header's Content-Type with message.ParseMediaType,
// the scanner's lenient parser (RFC 2231 continuations, raw bytes), so
// that the rewriter finds the boundary and charset the scanner read (issue
// 13 point 1); def when there is none. A type that is not type/subtype is
// application/octet-stream (RFC 2045 section 5.2 says text/plain, but
// rewriting what we cannot parse is worse than wrapping it).
func contentType(h hdr, def string) message.MediaType {
	v, ok := h.get("Content-Type")
	if !ok || strings.TrimSpace(v) == "" {
		return message.MediaType{Type: def, Params: map[string]string{}}
	}
	m := message.ParseMediaType(v)
	if !validMediaType(m.Type) {
		return message.MediaType{Type: "application/octet-stream", Params: map[string]string{}}
	}
	return m
}

// validMediaType reports whether t is token "/" token (RFC 2045 section
// 5.1).
func validMediaType(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	return ok && isToken(typ) && isToken(sub)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?=", c) >= 0 {
			return false
		}
	}
	return true
}

// walk visits the entity with header h and body [bodyStart, end); sp is
// its span in the enclosing multipart and nl that multipart's line end
// (top level: no next delimiter, nl "").
func (p *prepender) walk(h hdr, bodyStart, end int64, depth int, top bool, def string, sp span, nl string) {
	if p.failed != "" {
		return
	}
	m := contentType(h, def)
	ct, params := m.Type, m.Params
	// A parameter that changes the reading, given twice with different
	// values: clients differ on which one wins, so a banner put by one
	// reading may be missed by the other (fail safe: wrap).
	for _, k := range m.Dups {
		if k == "boundary" || k == "charset" {
			p.fail("%s given twice in Content-Type with different values", k)
			return
		}
	}
	if strings.HasPrefix(ct, "multipart/") {
		if ct == "multipart/signed" || ct == "multipart/encrypted" {
			p.fail("%s content cannot carry a banner", ct)
			return
		}
		b := params["boundary"]
		if b == "" || len(b) > 200 {
			p.fail("%s without a usable boundary", ct)
			return
		}
		if depth >= maxDepth {
			p.fail("MIME nesting deeper than %d", maxDepth)
			return
		}
		spans, childNL, err := splitMultipart(p.s, bodyStart, end, b)
		if err != nil {
			p.fail("reading %s: %v", ct, err)
			return
		}
		childDef := "text/plain"
		if ct == "multipart/digest" {
			childDef = "message/rfc822"
		}
		for _, sp := range spans {
			if p.parts++; p.parts > maxParts {
				p.fail("more than %d MIME parts", maxParts)
				return
			}
			ph, err := readHdr(p.s, sp.start, sp.end)
			if err != nil {
				// Not a MIME part: leave it alone. If it was meant as
				// text the reader sees it without a banner, so wrap.
				p.fail("unreadable MIME part header: %v", err)
				return
			}
			if ph.end > sp.end {
				ph.end = sp.end
			}
			p.walk(ph, ph.end, sp.end, depth+1, false, childDef, sp, childNL)
		}
		return
	}
	if ct != "text/plain" && ct != "text/html" {
		return
	}
	if d, ok := h.get("Content-Disposition"); ok {
		if message.ParseMediaType(d).Type == "attachment" {
			return
		}
	}
	p.banner(h, bodyStart, end, top, m, sp, nl)
}

// banner rewrites one text part: decode the transfer encoding, put the
// banner in front (text/plain) or after <body> (text/html), re-encode. The
// banner goes in the part's own charset and transfer encoding when it fits
// (the exact text, else, unless StrictText, with the dash folded); if not,
// the part is converted to UTF-8 and its Content-Type says so, and a 7bit
// part that now needs 8-bit bytes becomes quoted-printable.
func (p *prepender) banner(h hdr, bodyStart, end int64, top bool, m message.MediaType, sp span, nl string) {
	ct, params := m.Type, m.Params
	if end-bodyStart > p.opts.MaxTextPart {
		p.fail("text part larger than %d bytes", p.opts.MaxTextPart)
		return
	}
	raw, err := readRange(p.s, bodyStart, end)
	if err != nil {
		p.fail("reading a text part: %v", err)
		return
	}
	cteHdr, _ := h.get("Content-Transfer-Encoding")
	cte, _ := message.TransferEncoding(cteHdr)
	if cte == "" {
		cte = "7bit"
	}
	content, ok := decodeCTE(cte, raw)
	if !ok {
		p.fail("unknown Content-Transfer-Encoding %q", cteHdr)
		return
	}
	label := params["charset"]
	enc := lookupCharset(label)
	if enc == nil {
		p.fail("unknown charset %q", label)
		return
	}
	if w := message.UnmarkedWidth(label); w > 0 {
		// utf-16 without a byte order mark in the byte order its text
		// shows, as the scanner and mail clients read it: read
		// big-endian, a little-endian part would be turned into CJK.
		enc, _ = message.SniffByteOrder(w, content)
	}
	html := ct == "text/html"

	// The candidates, best first: the exact text in the part's charset, the
	// text with the dash folded (not for HTML, which writes the dash as a
	// character reference, nor with StrictText), the part in UTF-8.
	type candidate struct {
		variant int // index into p.plain (text/plain)
		toUTF8  bool
	}
	var cands []candidate
	if asciiCompatible(enc) {
		cands = append(cands, candidate{0, false})
		if !html && !p.opts.StrictText {
			cands = append(cands, candidate{1, false})
		}
	}
	cands = append(cands, candidate{0, true})

	for _, c := range cands {
		body, newCTE, charset := content, cte, ""
		if c.toUTF8 && enc != unicode.UTF8 {
			u, ok := toUTF8(enc, content)
			if !ok {
				continue
			}
			body, charset = u, "utf-8"
		}
		peol := lineEnd(body, p.eol)
		text := p.html + peol
		if !html {
			text = strings.Join(p.plain[c.variant], peol) + peol + peol
		}
		var bannerBytes []byte
		if c.toUTF8 {
			bannerBytes = []byte(text)
			if cte == "7bit" && (hasNonASCII(bannerBytes) || hasNonASCII(body)) {
				newCTE = "quoted-printable"
			}
		} else {
			b, ok := encodeText(enc, text)
			if !ok || (cte == "7bit" && hasNonASCII(b)) {
				continue
			}
			bannerBytes = b
		}
		var out []byte
		if html {
			at := bodyTagEnd(body)
			out = make([]byte, 0, len(body)+len(bannerBytes))
			out = append(out, body[:at]...)
			if at > 0 && body[at-1] != '\n' {
				out = append(out, peol...)
			}
			out = append(out, bannerBytes...)
			out = append(out, body[at:]...)
		} else {
			out = append(append(make([]byte, 0, len(body)+len(bannerBytes)), bannerBytes...), body...)
		}
		encoded := encodeCTE(newCTE, out, p.eol)
		if bytes.HasSuffix(raw, []byte("\n")) && !bytes.HasSuffix(encoded, []byte("\n")) {
			encoded = append(encoded, p.eol...)
		}
		p.commit(h, bodyStart, end, top, m, charset, cte, newCTE, encoded, sp, nl)
		p.banners++
		return
	}
	p.fail("the banner cannot be written in charset %q", label)
}

// commit records the new part: body only when the header stays, header
// and body when the charset or the transfer encoding changed. For the
// top-level part the header changes become header edits. Inside a
// multipart, the line end before the next delimiter is rewritten as the
// multipart's own (nl), which a part that was empty may have lacked.
func (p *prepender) commit(h hdr, bodyStart, end int64, top bool, m message.MediaType, charset, oldCTE, newCTE string, body []byte, sp span, nl string) {
	if !top && sp.next >= 0 && nl != "" {
		body = append(body, nl...)
		end = sp.next
	}
	newCT := ""
	if charset != "" {
		// Parameters in an RFC 2231 charset are written anew in UTF-8
		// (FormatMediaType labels every non-ASCII value utf-8).
		np := make(map[string]string, len(m.Params)+1)
		for k := range m.Params {
			np[k] = m.Text(k)
		}
		np["charset"] = charset
		newCT = mime.FormatMediaType(m.Type, np)
		if newCT == "" {
			newCT = m.Type + "; charset=" + charset
		}
	}
	cteChanged := newCTE != oldCTE
	if top {
		if newCT != "" {
			p.topEdits = append(p.topEdits, setHeader(p.top, "Content-Type", newCT))
		}
		if cteChanged {
			p.topEdits = append(p.topEdits, setHeader(p.top, "Content-Transfer-Encoding", newCTE))
		}
		if len(p.topEdits) > 0 {
			if _, ok := p.top.get("MIME-Version"); !ok {
				p.topEdits = append(p.topEdits, message.HeaderEdit{Op: message.OpAdd, Name: "MIME-Version", Value: "1.0"})
			}
		}
		p.reps = append(p.reps, replacement{bodyStart, end, body})
		return
	}
	if newCT == "" && !cteChanged {
		if !h.blank {
			// The part had no blank line after its header: the body
			// needs one.
			body = append([]byte(p.eol), body...)
		}
		p.reps = append(p.reps, replacement{bodyStart, end, body})
		return
	}
	// Rebuild the part header: raw fields kept, the changed ones replaced
	// in place (or added at the end).
	var hb bytes.Buffer
	doneCT, doneCTE := newCT == "", !cteChanged
	for _, f := range h.fields {
		switch {
		case strings.EqualFold(f.name, "Content-Type") && newCT != "":
			if !doneCT {
				hb.WriteString(message.HeaderField("Content-Type", newCT, p.eol))
				doneCT = true
			}
			continue
		case strings.EqualFold(f.name, "Content-Transfer-Encoding") && cteChanged:
			if !doneCTE {
				hb.WriteString(message.HeaderField("Content-Transfer-Encoding", newCTE, p.eol))
				doneCTE = true
			}
			continue
		}
		raw, err := readRange(p.s, f.start, f.end)
		if err != nil {
			p.fail("reading a part header: %v", err)
			return
		}
		hb.Write(raw)
	}
	if !doneCT {
		hb.WriteString(message.HeaderField("Content-Type", newCT, p.eol))
	}
	if !doneCTE {
		hb.WriteString(message.HeaderField("Content-Transfer-Encoding", newCTE, p.eol))
	}
	hb.WriteString(p.eol)
	hb.Write(body)
	p.reps = append(p.reps, replacement{h.start, end, hb.Bytes()})
}

// setHeader is the edit that gives the first name header the value v:
// a change when there is one, an add otherwise.
func setHeader(h hdr, name, v string) message.HeaderEdit {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return message.HeaderEdit{Op: message.OpChange, Name: f.name, Index: 1, Value: v}
		}
	}
	return message.HeaderEdit{Op: message.OpAdd, Name: name, Value: v}
}

// bodyTagEnd is the offset just after the <body ...> start tag of an HTML
// document (ASCII-compatible bytes), or 0 when it has none.
func bodyTagEnd(b []byte) int {
	lower := bytes.ToLower(b)
	for from := 0; ; {
		i := bytes.Index(lower[from:], []byte("<body"))
		if i < 0 {
			return 0
		}
		i += from
		j := i + len("<body")
		if j < len(b) && (b[j] == '>' || b[j] == '/' || b[j] == ' ' || b[j] == '\t' || b[j] == '\r' || b[j] == '\n') {
			var quote byte
			for k := j; k < len(b); k++ {
				switch c := b[k]; {
				case quote != 0:
					if c == quote {
						quote = 0
					}
				case c == '"' || c == '\'':
					quote = c
				case c == '>':
					return k + 1
				}
			}
			return 0
		}
		from = j
	}
}

// htmlBanner is the banner of text/html parts: the lines HTML-escaped, with
// every non-ASCII character as a numeric reference so that it fits any
// ASCII-compatible charset without folding the dash.
func htmlBanner(code string, lines []string, link string) string {
	var b strings.Builder
	b.WriteString(`<div data-nz-secure-warning="` + html.EscapeString(code) + `" style="border:2px solid #b00000;background:#fff3f3;color:#000000;padding:8px;margin:0 0 12px 0;font-family:Arial,Helvetica,sans-serif;font-size:14px">`)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("<br>")
		}
		if i == 0 {
			b.WriteString("<strong>" + asciiHTML(l) + "</strong>")
			continue
		}
		lk := oneLine(link)
		if u, err := url.Parse(lk); err == nil && lk != "" && (u.Scheme == "http" || u.Scheme == "https") && strings.HasSuffix(l, lk) {
			intro := strings.TrimSuffix(l, lk)
			b.WriteString(asciiHTML(intro) + `<a href="` + asciiHTML(lk) + `">` + asciiHTML(lk) + `</a>`)
			continue
		}
		b.WriteString(asciiHTML(l))
	}
	b.WriteString("</div>")
	return b.String()
}

// asciiHTML escapes s for HTML text or a quoted attribute and writes
// non-ASCII characters as numeric character references.
func asciiHTML(s string) string {
	e := html.EscapeString(s)
	var b strings.Builder
	for _, r := range e {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
	}
	return b.String()
}
