package classify

import (
	"bytes"
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// scanCtx is shared by all the stages of one scan.
type scanCtx struct {
	opts Options
	dict *dictionary
	col  *collector
	arc  arcState // archives and inline blocks (archive.go)
	// inBoundary counts the multipart parts being closed at a delimiter
	// (rather than at the end of the content around them).
	inBoundary int
	// open are the multiparts being read, outermost first: a line that
	// starts with one's boundary may be the delimiter of one nested in it.
	open []*multipart
}

// expired reports whether Options.Deadline has passed.
func (ctx *scanCtx) expired() bool {
	return !ctx.opts.Deadline.IsZero() && time.Now().After(ctx.opts.Deadline)
}

// decodeWords decodes RFC 2047 encoded words (Q and B, any charset we
// know, UTF-7 included) as mail clients do (charset.go).
func (ctx *scanCtx) decodeWords(s string) string { return ctx.decodeRFC2047(s) }

// Header limits. A field longer than maxField is truncated, except the
// Subject, which is scanned in pieces.
const (
	maxField    = 16 << 10
	maxNameLine = 256
)

// Header parser states.
const (
	hLineStart  = iota // at the start of a header line
	hName              // in a field name
	hNameWS            // white space between a name and ':' (obsolete syntax)
	hValueStart        // after ':', skipping white space
	hValue             // in a field value
	hFoldWS            // leading white space of a continuation line
	hBlankCR           // CR at the start of a line
	hSkipLine          // an mbox "From " line or junk
)

// Field kinds worth keeping.
const (
	fOther = iota
	fContentType
	fEncoding
	fDisposition
	fSubject
)

// entity is one MIME entity (RFC 2045, RFC 2046): a header block, then a
// body handled by a stage chosen from the header. The top-level message
// and every embedded message/rfc822 are entities with message set; the
// parts of a multipart are entities too.
type entity struct {
	ctx     *scanCtx
	depth   int
	path    string // part number ("" for the top-level message)
	message bool   // a message: its Subject is scanned (R32)
	digest  bool   // a part of multipart/digest: default type message/rfc822
	// alternative: a part of multipart/alternative, one form of the text
	// a client shows as the message (whatever its Content-Disposition).
	alternative bool
	attach      string // label of the enclosing scanned attachment, if any

	hst     int
	lines   int
	raw     []byte // the start of a line that may not be a header
	kind    int    // kind of the current field
	field   []byte // the current field's value, unfolded
	trunc   bool
	subject *matcher

	ctype, cte, disp string
	dups             []string // MIME fields given twice with different values
	body             stage
}

func newEntity(ctx *scanCtx, depth int, path string, message, digest bool, attach string) *entity {
	return &entity{ctx: ctx, depth: depth, path: path, message: message, digest: digest, attach: attach}
}

func (e *entity) write(p []byte) {
	if e.body == nil {
		p = e.headers(p)
		if e.body == nil {
			return
		}
	}
	if len(p) > 0 {
		e.body.write(p)
	}
}

func (e *entity) close() {
	if e.body == nil {
		raw := e.raw
		if e.hst != hName && e.hst != hNameWS {
			raw = nil
		}
		e.startBody()
		if len(raw) > 0 {
			e.body.write(raw)
		}
	}
	e.body.close()
}

// headers parses the header block (RFC 5322 section 2.2: lines ending in
// CRLF or a bare LF, continuation lines starting with white space) and
// returns what follows it once the body has started.
func (e *entity) headers(p []byte) []byte {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch e.hst {
		case hLineStart:
			switch c {
			case '\r':
				e.hst = hBlankCR
			case '\n':
				e.startBody()
				return p[i+1:]
			case ' ', '\t':
				if e.lines == 0 {
					e.hst = hSkipLine
				} else {
					e.fold()
					e.hst = hFoldWS
				}
			default:
				e.endField()
				e.raw = append(e.raw[:0], c)
				e.hst = hName
			}
		case hName:
			switch {
			case c == ':':
				e.startField()
			case c == ' ' || c == '\t':
				e.raw = append(e.raw, c)
				e.hst = hNameWS
			case c > ' ' && c < 0x7F && len(e.raw) < maxNameLine:
				e.raw = append(e.raw, c)
			default:
				return e.notHeader(p[i:])
			}
		case hNameWS:
			switch {
			case c == ':':
				e.startField()
			case (c == ' ' || c == '\t') && len(e.raw) < maxNameLine:
				e.raw = append(e.raw, c)
			case e.lines == 0 && bytes.HasPrefix(e.raw, []byte("From ")):
				e.hst = hSkipLine // an mbox separator line
			default:
				return e.notHeader(p[i:])
			}
		case hValueStart:
			if c == ' ' || c == '\t' {
				continue
			}
			e.hst = hValue
			i--
		case hValue:
			j := bytes.IndexByte(p[i:], '\n')
			end := len(p)
			if j >= 0 {
				end = i + j
			}
			e.value(p[i:end])
			i = end
			if j >= 0 {
				e.lines++
				e.hst = hLineStart
			}
		case hFoldWS:
			switch c {
			case ' ', '\t', '\r':
			case '\n':
				e.lines++
				e.hst = hLineStart
			default:
				e.hst = hValue
				i--
			}
		case hBlankCR:
			e.startBody()
			if c == '\n' {
				return p[i+1:]
			}
			return p[i:] // a lone CR ended the header block
		case hSkipLine:
			if j := bytes.IndexByte(p[i:], '\n'); j >= 0 {
				i += j
				e.lines++
				e.hst = hLineStart
			} else {
				i = len(p)
			}
		}
	}
	return nil
}

// notHeader handles a line that is not a header field: the header block
// ends (it was missing its blank line, or there was none) and the line
// belongs to the body.
func (e *entity) notHeader(rest []byte) []byte {
	if e.lines > 0 {
		e.ctx.col.problem("%s: header block ended without a blank line", e.where("", ""))
	}
	raw := e.raw
	e.raw = nil
	e.startBody()
	e.body.write(raw)
	return rest
}

// startField starts a field whose name is in e.raw.
func (e *entity) startField() {
	name := strings.ToLower(strings.TrimRight(string(e.raw), " \t"))
	e.raw = e.raw[:0]
	e.field = e.field[:0]
	e.trunc = false
	e.hst = hValueStart
	switch name {
	case "content-type":
		e.kind = fContentType
	case "content-transfer-encoding":
		e.kind = fEncoding
	case "content-disposition":
		e.kind = fDisposition
	case "subject":
		e.kind = fOther
		if e.message {
			e.kind = fSubject
			e.subject = newMatcher(e.ctx, e.subjectWhere())
		}
	default:
		e.kind = fOther
	}
}

// value appends part of a field's line (without its LF).
func (e *entity) value(b []byte) {
	if e.kind == fOther {
		return
	}
	for _, c := range b {
		if c == '\r' {
			continue
		}
		if len(e.field) >= maxField {
			if e.kind == fSubject {
				e.flushSubject(false)
			} else {
				if !e.trunc {
					e.trunc = true
					e.ctx.col.problem("%s: header field longer than %d bytes truncated", e.where("", ""), maxField)
				}
				return
			}
		}
		e.field = append(e.field, c)
	}
}

// fold handles a line fold: folding white space reads as one space, so
// "[TOP\r\n SECRET]" in a Subject is "[TOP SECRET]".
func (e *entity) fold() {
	if e.kind == fOther {
		return
	}
	e.field = bytes.TrimRight(e.field, " \t")
	if len(e.field) < maxField {
		e.field = append(e.field, ' ')
	}
}

// flushSubject scans the Subject collected so far: all of it at the end
// of the field, else up to its last space (an overlong Subject is scanned
// in pieces; the matcher keeps a marking split between pieces).
func (e *entity) flushSubject(final bool) {
	b := e.field
	if !final {
		if i := bytes.LastIndexAny(b, " \t"); i > 0 {
			b = b[:i]
		}
	}
	e.subject.write([]byte(e.ctx.decodeWords(string(b))))
	e.field = e.field[:copy(e.field, e.field[len(b):])]
	if final {
		e.subject.close()
		e.subject = nil
	}
}

// endField acts on a complete field.
func (e *entity) endField() {
	v := string(bytes.TrimSpace(e.field))
	switch e.kind {
	case fContentType:
		if e.ctype == "" {
			e.ctype = v
		} else if !sameMedia(e.ctype, v) {
			e.dupField("Content-Type")
		}
	case fEncoding:
		if e.cte == "" {
			e.cte = v
		} else if !sameTransferEncoding(e.cte, v) {
			e.dupField("Content-Transfer-Encoding")
		}
	case fDisposition:
		if e.disp == "" {
			e.disp = v
		} else if !sameMedia(e.disp, v) {
			e.dupField("Content-Disposition")
		}
	case fSubject:
		e.flushSubject(true)
	}
	e.kind = fOther
	e.field = e.field[:0]
}

// dupField notes a MIME field given twice with different values: the
// scanner reads the first, but clients differ on which one wins (some
// take the last), so what the reader sees may be what the scanner did not
// read (issue 11 point 1). Reported once the body starts.
func (e *entity) dupField(name string) {
	if !slices.Contains(e.dups, name) {
		e.dups = append(e.dups, name)
	}
}

// sameMedia reports whether two Content-Type or Content-Disposition
// values lead to the same reading: the same type and the same values of
// the parameters that change how the content is read (a missing charset
// is US-ASCII, RFC 2045 section 5.2), so that a harmless repetition such
// as "text/plain" then "text/plain; charset=us-ascii" is not a conflict.
func sameMedia(a, b string) bool {
	ma, mb := message.ParseMediaType(a), message.ParseMediaType(b)
	if ma.Type != mb.Type {
		return false
	}
	for _, k := range []string{"boundary", "charset", "format", "delsp", "smime-type", "filename", "name"} {
		va, vb := ma.Params[k], mb.Params[k]
		if k == "charset" {
			va, vb = cmp.Or(va, "us-ascii"), cmp.Or(vb, "us-ascii")
		}
		if k == "boundary" || k == "filename" || k == "name" {
			if va != vb {
				return false
			}
		} else if !strings.EqualFold(va, vb) {
			return false
		}
	}
	return true
}

func (e *entity) subjectWhere() string {
	switch {
	case e.attach != "":
		return e.attach + " subject"
	case e.path == "":
		return "subject"
	}
	return "message/rfc822 subject (part " + e.path + ")"
}

// leafPath is the part number of this entity's content when it is not
// a multipart: "" for the top-level message (named "body"), P.1 for the
// body of a message embedded at part P.
func (e *entity) leafPath() string {
	if e.message && e.path != "" {
		return e.path + ".1"
	}
	return e.path
}

// where names this entity's content for markings and problems; label is
// the name of an attachment when this entity is one.
func (e *entity) where(mt, label string) string {
	if label != "" {
		return label
	}
	local := "body"
	if p := e.leafPath(); p != "" {
		local = "part " + p
		if mt != "" {
			local += " (" + mt + ")"
		}
		if e.attach == "" {
			local = "body/" + local
		}
	}
	if e.attach != "" {
		return e.attach + " " + local
	}
	return local
}

// Content kinds.
const (
	kOther = iota
	kText
	kHTML
	kRTF
	kTNEF
	kMessage
	kMultipart
	kPKCS7     // S/MIME application/pkcs7-mime (RFC 8551 section 3.2)
	kEncrypted // PGP/MIME multipart/encrypted (RFC 3156 section 4)
	kCalendar  // iCalendar and vCard: folded lines and escapes (unfold.go)
)

func kindOf(mt string) int {
	switch mt {
	case "text/html", "application/xhtml+xml", "text/enriched", "text/richtext":
		return kHTML
	case "text/rtf", "application/rtf", "application/x-rtf":
		return kRTF
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return kTNEF
	case "message/rfc822", "message/global", "message/news":
		return kMessage
	case "message/delivery-status", "message/disposition-notification", "message/global-delivery-status",
		"message/global-disposition-notification", "message/global-headers":
		// Text fields (RFC 3464, RFC 8098, RFC 6533) that clients show
		// inline: text a sender could put a marking in.
		return kText
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return kPKCS7
	case "multipart/encrypted", "application/pgp-encrypted":
		return kEncrypted
	case "text/calendar", "text/vcard", "text/x-vcard", "text/directory", "application/ics":
		return kCalendar
	}
	if isArchiveType(mt) {
		return kArchive
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return kMultipart
	case strings.HasPrefix(mt, "text/"):
		return kText
	}
	return kOther
}

// kindByName guesses the kind of a generic attachment from its name.
func kindByName(name string) int {
	if strings.EqualFold(name, "winmail.dat") {
		return kTNEF
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".txt", ".text", ".csv", ".log", ".md":
		return kText
	case ".htm", ".html", ".xhtml":
		return kHTML
	case ".rtf":
		return kRTF
	case ".eml":
		return kMessage
	case ".p7m": // S/MIME sent as application/octet-stream (RFC 8551 section 3.2.1)
		return kPKCS7
	case ".ics", ".vcs", ".vcf":
		return kCalendar
	}
	if isArchiveName(name) {
		return kArchive
	}
	return kOther
}

// startBody chooses the body stage from the header (RFC 2045, 2046, 2183).
func (e *entity) startBody() {
	e.endField()
	e.raw = nil
	e.field = nil
	e.body = e.bodyStage()
}

func (e *entity) bodyStage() stage {
	ctx := e.ctx
	ct := message.ParseMediaType(e.ctype)
	mt, params := ct.Type, ct.Params
	if mt == "" || !strings.Contains(mt, "/") {
		if e.ctype != "" {
			// RFC 2045 section 5.2: the default, as mail clients read it.
			ctx.col.problem("%s: unparsable Content-Type %q, read as text/plain", e.where("", ""), message.Clip(e.ctype, 60))
		}
		mt, params, ct.Dups = "text/plain", nil, nil
		if e.digest {
			mt = "message/rfc822"
		}
	}
	cd := message.ParseMediaType(e.disp)
	disp := cd.Type
	name := cd.Text("filename")
	if name == "" {
		name = ct.Text("name")
	}
	decodedName := ctx.decodeWords(name)
	name = cleanName(decodedName)
	if decodedName != "" {
		// A reader sees an attachment's file name in the message, whatever
		// R34 says of its content: "[SECRET] plan.pdf" is a marking.
		m := newMatcher(ctx, "attachment name "+name)
		m.write([]byte(decodedName))
		m.close()
	}
	attachment := disp == "attachment"
	kind := kindOf(mt)
	byName := false
	if kind == kArchive {
		attachment = true // a zip or a document is an attachment however it is sent (R34)
	}
	if kind == kOther {
		if kind = kindByName(name); kind != kOther {
			byName = true
			// A .p7m named smime.p7m is the S/MIME message itself
			// (RFC 8551 section 3.2.1), whatever its disposition; any
			// other .p7m file is an attachment.
			if kind != kTNEF && !(kind == kPKCS7 && strings.EqualFold(name, "smime.p7m")) {
				attachment = true
			}
		}
	}
	if kind == kPKCS7 && byName && mt != "application/octet-stream" {
		kind, byName = kOther, false
	}
	smime := kind == kPKCS7 && (!byName || strings.EqualFold(name, "smime.p7m"))
	if attachment && !byName && (kind == kText || kind == kHTML || kind == kRTF) && (e.message || e.alternative) {
		// The text of a message (its whole body) or one form of it in a
		// multipart/alternative is what a client shows as the message,
		// "attachment" or not: read as body, else a sender could hide a
		// marking from the scanner with one header field (fail safe).
		ctx.col.problem("%s: Content-Disposition attachment on the message's text, read as its body", e.where(mt, ""))
		attachment = false
	}

	// Reported even for a part not scanned: with another reading of the
	// field it might be.
	for _, f := range e.dups {
		ctx.col.unreadable("%s: %s given twice with different values (read with the first)", e.where(mt, ""), f)
	}

	// R34: attachments are scanned only when the agency asks for it.
	// TNEF is the message body in Outlook's format and always scanned; so
	// is an application/pkcs7-mime part (Outlook sends its opaque-signed
	// or encrypted body as an attachment named smime.p7m), and a
	// message/rfc822 part whatever its disposition: a forwarded message is
	// the sender's content (issue 11 point 6, README). A PGP/MIME
	// multipart/encrypted body is never skipped (it is unreadable).
	label := ""
	if attachment && kind != kTNEF && kind != kMultipart && !(kind == kEncrypted && mt == "multipart/encrypted") {
		always := smime || (kind == kMessage && !byName)
		if !always && (kind == kOther || !ctx.opts.ScanAttachments) {
			return discard{}
		}
		if !smime {
			if name != "" {
				label = "attachment " + name
			} else {
				label = "attachment " + strings.TrimPrefix(e.where(mt, ""), "body/")
			}
			if e.attach != "" {
				label = e.attach + " / " + label
			}
		}
	}
	where := e.where(mt, label)

	// Issue 11 point 1: a parameter given twice with differing values may
	// be read either way by a client, so what the scanner reads with the
	// first one may not be what the reader sees.
	for _, k := range ct.Dups {
		switch k {
		case "boundary", "charset", "format", "delsp", "smime-type":
			ctx.col.unreadable("%s: Content-Type parameter %q given twice with different values (read with the first)", where, k)
		}
	}

	if mt == "message/partial" && !attachment {
		// RFC 2046 section 5.2.2: one fragment of a message split across
		// several; the whole is never in one message, so it cannot be
		// judged. The fragment's text is still read.
		ctx.col.unreadable("%s: message/partial, a fragment of a message that cannot be read whole", where)
		kind = kText
	}
	if (kind == kMultipart || kind == kMessage || kind == kPKCS7) && e.depth >= MaxDepth {
		ctx.col.unreadable("%s: nested deeper than %d levels, read as plain text", where, MaxDepth)
		kind = kText
	}
	switch kind {
	case kMultipart:
		boundary := params["boundary"]
		switch {
		case boundary == "":
			ctx.col.unreadable("%s: multipart without a boundary parameter, read as plain text", where)
			return e.textStage(kText, "", where)
		case len(boundary) > MaxBoundary:
			ctx.col.unreadable("%s: multipart boundary longer than %d bytes, read as plain text", where, MaxBoundary)
			return e.textStage(kText, "", where)
		}
		return newTransferStage(ctx, e.cte, where, newMultipart(e, where, boundary, mt == "multipart/digest", mt == "multipart/alternative"))
	case kMessage:
		p := e.path
		if p == "" {
			p = "1"
		}
		attach := e.attach
		if label != "" {
			attach = label
		}
		return newTransferStage(ctx, e.cte, where, newEntity(ctx, e.depth+1, p, true, false, attach))
	case kTNEF:
		return newTransferStage(ctx, e.cte, where, newTNEFStage(ctx, where))
	case kPKCS7:
		switch st := strings.ToLower(params["smime-type"]); st {
		case "enveloped-data", "authenveloped-data":
			// RFC 8551 section 3.2.2: encrypted; nothing can be read.
			ctx.col.unreadable("%s: S/MIME %s (encrypted), content not readable", where, params["smime-type"])
			return discard{}
		}
		attach := e.attach
		if label != "" {
			attach = label
		}
		return newTransferStage(ctx, e.cte, where, newPKCS7Stage(ctx, where, newEntity(ctx, e.depth+1, e.leafPath(), false, false, attach)))
	case kEncrypted:
		// RFC 3156 section 4: the content is OpenPGP ciphertext.
		ctx.col.unreadable("%s: PGP encrypted, content not readable", where)
		return discard{}
	case kArchive:
		return newTransferStage(ctx, e.cte, where, newArchiveStage(ctx, where))
	case kText, kHTML, kRTF, kCalendar:
		if kind == kText && strings.EqualFold(params["format"], "flowed") {
			return e.flowedStage(params, where)
		}
		return e.textStage(kind, params["charset"], where)
	}
	return discard{}
}

// textStage decodes a text part (transfer encoding, charset, HTML or RTF
// rendering) into a matcher.
func (e *entity) textStage(kind int, charset, where string) stage {
	ctx := e.ctx
	var s stage = newPGPDetect(ctx, where, newMatcher(ctx, where))
	switch kind {
	case kHTML:
		s = newCharsetStage(ctx, charset, where, newHTMLText(s))
	case kRTF:
		s = newRTFText(s) // RTF is 7-bit; its escapes name the code page
	case kCalendar:
		s = newCharsetStage(ctx, charset, where, newUnfoldStage(s))
	default:
		s = newCharsetStage(ctx, charset, where, s)
	}
	if kind == kText && ctx.opts.ScanAttachments {
		// Inline uuencode, yEnc and BinHex files (inline.go, R34), read
		// before the charset: yEnc is 8-bit.
		s = newInlineStage(ctx, where, s)
	}
	return newTransferStage(ctx, e.cte, where, s)
}

// flowedStage decodes text/plain; format=flowed (RFC 3676): the soft
// line breaks are joined after charset decoding.
func (e *entity) flowedStage(params map[string]string, where string) stage {
	ctx := e.ctx
	var s stage = newFlowedStage(strings.EqualFold(params["delsp"], "yes"), newPGPDetect(ctx, where, newMatcher(ctx, where)))
	s = newCharsetStage(ctx, params["charset"], where, s)
	if ctx.opts.ScanAttachments {
		s = newInlineStage(ctx, where, s) // encoded files, before the lines are joined (inline.go, R34)
	}
	return newTransferStage(ctx, e.cte, where, s)
}

// cleanName makes an attachment name safe and short for reports.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return message.Clip(strings.TrimSpace(s), 100)
}

// Multipart states.
const (
	msPreamble = iota
	msPart
	msEpilogue
)

// multipart splits a multipart body at its boundary (RFC 2046 section
// 5.1.1) with message.Splitter, the warning rewriter's splitter too:
// content is passed on as it arrives, only a possible delimiter at the end
// of a chunk is held back (a bounded carry). Each part is an entity of its
// own; nested multiparts split again inside their part, so the nesting
// depth is bounded by MaxDepth and every level holds a bounded amount of
// state.
type multipart struct {
	parent      *entity
	where       string
	digest      bool
	alternative bool // multipart/alternative: its parts are forms of the text
	sp          *message.Splitter
	st          int
	child       *entity
	n           int
	eol         int  // after a delimiter: 1 skip CR or LF, 2 skip LF
	text        bool // the preamble held more than white space
	// outside reads the preamble, then the epilogue, for trigger words:
	// RFC 2046 section 5.1.1 says to ignore them, but they are in the
	// message for anyone who reads its source (and some clients show
	// them), so a marking there counts (fail safe).
	outside   stage
	delim     []byte   // "--" + boundary
	near      [][]byte // near-delimiter lines (judgeNear)
	capture   []byte   // the near-delimiter line being taken (captureNear)
	capturing bool
	inner     [][]byte // delimiters of the multiparts nested in this one
}

// readOutside passes preamble or epilogue text to a matcher of its own.
func (m *multipart) readOutside(p []byte) {
	if len(p) == 0 {
		return
	}
	if m.outside == nil {
		what := " (preamble)"
		if m.st == msEpilogue {
			what = " (epilogue)"
		}
		ctx := m.parent.ctx
		m.outside = newCharsetStage(ctx, "", m.where+what, newMatcher(ctx, m.where+what))
	}
	m.outside.write(p)
}

// endOutside closes the preamble's or epilogue's matcher.
func (m *multipart) endOutside() {
	if m.outside != nil {
		m.outside.close()
		m.outside = nil
	}
}

func newMultipart(parent *entity, where, boundary string, digest, alternative bool) *multipart {
	m := &multipart{parent: parent, where: where, digest: digest, alternative: alternative, delim: []byte("--" + boundary)}
	m.sp = message.NewSplitter(boundary, m.emit, func(_, _ int64, closing bool) { m.boundary(closing) })
	m.sp.Epilogue = m.readOutside
	m.sp.NearDelimiter = m.nearDelimiter
	for _, outer := range parent.ctx.open {
		if len(outer.inner) < maxInner {
			outer.inner = append(outer.inner, m.delim)
		}
	}
	parent.ctx.open = append(parent.ctx.open, m)
	return m
}

// Near-delimiter lines (message.Splitter.NearDelimiter): a line starts
// with our boundary but is not our delimiter ("--b" + "x"). Unless it is
// the delimiter of a multipart nested in ours (boundaries "b" and
// "b_alt"), mail programs may split there (OpenSSL's MIME parser matches
// the boundary as a prefix) and show as parts what we read as the text of
// one: unreadable (fail safe, issue 11). The line is taken from the
// content that follows the call (emit), whole whatever the chunks; nested
// multiparts may be declared only after it has passed (the splitters hold
// back the end of a chunk), so the lines are judged when the multipart
// closes.
const (
	maxNearLines = 4   // near-delimiter lines kept per multipart
	maxNearLine  = 256 // bytes kept of each
	maxInner     = 256 // delimiters of nested multiparts kept
)

func (m *multipart) nearDelimiter([]byte) {
	if len(m.near) < maxNearLines && !m.capturing {
		m.capturing, m.capture = true, nil
	}
}

// captureNear takes the near-delimiter line from the content p that
// starts with it or continues it.
func (m *multipart) captureNear(p []byte) {
	end := bytes.IndexAny(p, "\r\n")
	if end < 0 {
		end = len(p)
	}
	m.capture = append(m.capture, p[:min(end, maxNearLine-len(m.capture))]...)
	if end < len(p) || len(m.capture) >= maxNearLine {
		m.endCapture()
	}
}

func (m *multipart) endCapture() {
	if m.capturing {
		m.near = append(m.near, m.capture)
		m.capturing, m.capture = false, nil
	}
}

// judgeNear marks the multipart unreadable if a near-delimiter line in
// it is not the delimiter of a multipart nested in it.
func (m *multipart) judgeNear() {
	for _, line := range m.near {
		explained := false
		for _, d := range m.inner {
			if st, _ := message.MatchDelimiter(line, d, false); st != message.NoDelimiter {
				explained = true
				break
			}
		}
		if !explained {
			m.parent.ctx.col.unreadable("%s: a line starts with the multipart boundary %q but is not its delimiter; mail programs differ on where such a part ends",
				m.where, message.Clip(string(m.delim[2:]), 70))
			return
		}
	}
}

func (m *multipart) write(p []byte) {
	if m.st != msEpilogue || m.sp.Done() {
		m.sp.Write(p) // after the close delimiter: the epilogue, to readOutside
	}
}

func (m *multipart) emit(p []byte) {
	if m.capturing {
		m.captureNear(p)
	}
	if m.st != msPart {
		if m.st == msPreamble && !m.text && len(bytes.TrimSpace(p)) > 0 {
			m.text = true
		}
		m.readOutside(p)
		return
	}
	for m.eol > 0 && len(p) > 0 {
		switch {
		case m.eol == 1 && p[0] == '\r':
			m.eol = 2
			p = p[1:]
		case p[0] == '\n':
			m.eol = 0
			p = p[1:]
		default:
			m.eol = 0
		}
	}
	if len(p) > 0 {
		m.child.write(p)
	}
}

func (m *multipart) boundary(closing bool) {
	if m.st == msPreamble {
		m.endOutside()
	}
	if m.child != nil {
		// The part ends at this delimiter: a multipart nested in it that
		// is still open lost nothing (see close).
		m.parent.ctx.inBoundary++
		m.child.close()
		m.parent.ctx.inBoundary--
		m.child = nil
	}
	if closing {
		m.st = msEpilogue
		return
	}
	m.n++
	path := strconv.Itoa(m.n)
	if m.parent.path != "" {
		path = m.parent.path + "." + path
	}
	m.child = newEntity(m.parent.ctx, m.parent.depth+1, path, false, m.digest, m.parent.attach)
	m.child.alternative = m.alternative
	m.st, m.eol = msPart, 1
}

func (m *multipart) close() {
	if m.st != msEpilogue {
		m.sp.Close()
	}
	defer m.judgeNear()
	m.endCapture()
	if open := m.parent.ctx.open; len(open) > 0 {
		if i := slices.Index(open, m); i >= 0 {
			m.parent.ctx.open = slices.Delete(open, i, i+1)
		}
	}
	m.endOutside()
	if m.child != nil {
		m.child.close()
		m.child = nil
	}
	if m.st != msEpilogue {
		// Issue 11 point 1. Without any delimiter the whole body was
		// preamble, which is not read: the boundary the scanner uses is
		// not the one the content has, so a client may well show what the
		// scanner skipped. A multipart ended by its enclosing multipart's
		// delimiter lost nothing (clients end it there too). One that ends
		// with the message, or with the content of an encoding around it,
		// is truncated.
		col := m.parent.ctx.col
		switch {
		case m.n == 0 && m.text:
			col.unreadable("%s: no line matches the multipart boundary, its content not read", m.where)
		case m.n == 0:
			col.problem("%s: empty multipart", m.where)
		case m.parent.ctx.inBoundary > 0:
			col.problem("%s: multipart without its closing boundary", m.where)
		default:
			col.unreadable("%s: multipart without its closing boundary (truncated)", m.where)
		}
		m.st = msEpilogue
	}
}
