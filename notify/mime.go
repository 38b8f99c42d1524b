package notify

// Low-level MIME handling for the warning modes: random access to the
// original message, header blocks with byte offsets, multipart splitting
// that keeps every byte it does not rewrite, transfer encodings and
// charsets. Nothing here panics or gives up on malformed input: a part that
// cannot be read is left as it is.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// maxHeaderBlock bounds one header block (top level or part), as
// policy.ReadHeaders does.
const maxHeaderBlock = 1 << 20

// src is the original message with random access: a bytes.Reader,
// strings.Reader, io.SectionReader, *os.File, or a concatenation of them.
type src interface {
	io.ReaderAt
	Size() int64
}

// toSrc gives random access to r without copying when r already has it
// (bytes.Reader, strings.Reader, io.SectionReader, os.File); anything else
// is read into memory.
func toSrc(r io.Reader) (src, error) {
	switch v := r.(type) {
	case src:
		return v, nil
	case *os.File:
		st, err := v.Stat()
		if err == nil && st.Mode().IsRegular() {
			off, err := v.Seek(0, io.SeekCurrent)
			if err == nil {
				return io.NewSectionReader(v, off, st.Size()-off), nil
			}
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the original message: %w", err)
	}
	return bytes.NewReader(b), nil
}

// concatSrc is several sources one after the other (a header block made
// from the milter's header list, then the spooled body).
type concatSrc struct {
	parts []src
	offs  []int64
	size  int64
}

func newConcat(parts ...src) *concatSrc {
	c := &concatSrc{}
	for _, p := range parts {
		c.parts = append(c.parts, p)
		c.offs = append(c.offs, c.size)
		c.size += p.Size()
	}
	return c
}

func (c *concatSrc) Size() int64 { return c.size }

func (c *concatSrc) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	n := 0
	for i, part := range c.parts {
		if len(p) == 0 {
			break
		}
		start, sz := c.offs[i], part.Size()
		if off+int64(n) >= start+sz {
			continue
		}
		rel := off + int64(n) - start
		want := p
		if int64(len(want)) > sz-rel {
			want = want[:sz-rel]
		}
		m, err := part.ReadAt(want, rel)
		n += m
		p = p[m:]
		if err != nil && err != io.EOF {
			return n, err
		}
		if m < len(want) {
			return n, io.ErrUnexpectedEOF
		}
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// section is the bytes [from, to) of s as a reader.
func section(s src, from, to int64) io.Reader {
	if to <= from {
		return bytes.NewReader(nil)
	}
	return io.NewSectionReader(s, from, to-from)
}

// readRange returns the bytes [from, to) of s.
func readRange(s src, from, to int64) ([]byte, error) {
	if to <= from {
		return nil, nil
	}
	b := make([]byte, to-from)
	n, err := s.ReadAt(b, from)
	if n == len(b) {
		return b, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return b[:n], err
}

// field is one header field: its name as written, its value with folds
// removed (the white space after each fold kept) and leading blanks
// trimmed, and where its raw bytes are.
type field struct {
	name, value string
	folded      string // the value as the milter sees it: folds kept as "\n"
	start, end  int64  // raw bytes, including the line end(s)
	raw         []byte
}

// hdr is a header block.
type hdr struct {
	fields     []field
	start, end int64  // end is the first byte of the body
	eol        string // the line end of the first line: "\r\n" or "\n"
	// blank is true when the block ends with its blank line; false when
	// it ran to the end of the part (no body, not even a separator).
	blank bool
}

// get returns the first value of name (any case).
func (h hdr) get(name string) (string, bool) {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// readHdr reads the header block that starts at start and cannot go past
// limit, with message.ScanHeaderBlock (the rules of the engine's header
// reader, with blanks before a colon allowed). It stops at the blank line
// (included in the block) or at limit. A line that is neither a field nor
// a continuation is an error.
func readHdr(s src, start, limit int64) (hdr, error) {
	n := min(limit-start, maxHeaderBlock+2)
	br := bufio.NewReaderSize(io.NewSectionReader(s, start, n), 4096)
	sc, err := message.ScanHeaderBlock(br, message.ScanOptions{Limit: maxHeaderBlock, LenientNames: true})
	h := hdr{start: start, end: start + sc.Size, eol: sc.EOL, blank: sc.Blank}
	if err != nil {
		if errors.Is(err, message.ErrMalformedHeader) {
			err = fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return h, err
	}
	h.fields = make([]field, len(sc.Fields))
	for i, f := range sc.Fields {
		// The value as the milter sees it, then with the folds removed
		// (the white space after each fold kept).
		folded := strings.TrimLeft(f.Value, " \t")
		h.fields[i] = field{name: f.Name, value: strings.ReplaceAll(folded, "\n", ""), folded: folded,
			start: start + f.Start, end: start + f.End}
	}
	return h, nil
}

// fillRaw loads the raw bytes of every field.
func (h *hdr) fillRaw(s src) error {
	for i := range h.fields {
		b, err := readRange(s, h.fields[i].start, h.fields[i].end)
		if err != nil {
			return err
		}
		h.fields[i].raw = b
	}
	return nil
}

// span is one part of a multipart body: its bytes are [start, end); next
// is where the following delimiter line starts (the bytes [end, next) are
// the line end that belongs to that delimiter), or -1 for an unterminated
// last part.
type span struct{ start, end, next int64 }

// errMixedDelimiterEOL: delimiter lines ending in CRLF and in LF in one
// multipart, which readers split differently.
var errMixedDelimiterEOL = fmt.Errorf("%w: multipart delimiter lines end in both CRLF and LF", ErrMalformed)

// splitMultipart returns the parts (header and body, without the line end
// that belongs to the next delimiter, RFC 2046 section 5.1.1) of the
// multipart body [start, end) with boundary, and the line end of its first
// delimiter line ("\r\n" or "\n"): parsers (Go's mime/multipart among
// them) expect that line end before every later delimiter. The preamble
// and epilogue are not parts. A body without a closing delimiter ends its
// last part at end. The delimiters are the scanner's (message.Splitter),
// so the rewriter finds the parts that were scanned.
func splitMultipart(s src, start, end int64, boundary string) ([]span, string, error) {
	nl := ""
	var parts []span
	var ferr error
	partStart := int64(-1) // where the open part's content starts; -1: none open
	var delimiter func(from, to int64, closing bool)
	sp := message.NewSplitter(boundary, func([]byte) {}, func(from, to int64, closing bool) { delimiter(from, to, closing) })
	delimiter = func(from, to int64, closing bool) {
		if ferr != nil {
			return
		}
		from, to = start+from, start+to
		// The delimiter's own line break: CRLF, LF, or none at the end. A
		// bare CR breaks the line for the scanner but not for a reader of
		// lines: the two readings would differ, so it is an error (prepend
		// then wraps, fail safe).
		after, _ := readRange(s, to, min(to+2, end))
		eol := 0
		switch {
		case bytes.HasPrefix(after, []byte("\r\n")):
			eol = 2
		case bytes.HasPrefix(after, []byte("\n")):
			eol = 1
		case len(after) > 0:
			ferr = fmt.Errorf("%w: multipart delimiter line broken by a bare CR", ErrMalformed)
			return
		}
		first := nl == ""
		if first {
			nl = "\r\n"
			if eol == 1 {
				nl = "\n"
			}
		} else if eol != 0 && eol != len(nl) {
			// Delimiter lines ending in CRLF and in LF: Go's
			// mime/multipart, go-message and others take the ones that
			// differ from the first for content, this scanner for
			// delimiters. A banner put by one reading is missed by the
			// other (fail safe: prepend wraps instead).
			ferr = errMixedDelimiterEOL
			return
		}
		if partStart >= 0 {
			// The line end before the delimiter is the delimiter's.
			next := from
			cr := false
			if b, _ := readRange(s, from, from+1); len(b) == 1 && b[0] == '\r' {
				next++ // from is the CR of a CRLF
				cr = true
			}
			if !first && nl == "\r\n" && !cr {
				// "\n--boundary" where the multipart's delimiters
				// follow CRLF: not a delimiter to readers that look for
				// "\r\n--boundary".
				ferr = errMixedDelimiterEOL
				return
			}
			next++ // the LF; the delimiter line starts after it
			parts = append(parts, span{partStart, max(from, partStart), next})
		}
		partStart = -1
		if !closing {
			partStart = to + int64(eol)
		}
	}
	br := io.NewSectionReader(s, start, end-start)
	buf := make([]byte, 8*1024)
	for !sp.Done() && ferr == nil {
		n, err := br.Read(buf)
		sp.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return parts, nl, err
		}
	}
	if ferr == nil && !sp.Done() {
		sp.Close()
	}
	if ferr != nil {
		return parts, nl, ferr
	}
	if partStart >= 0 {
		parts = append(parts, span{partStart, end, -1})
	}
	return parts, nl, nil
}

// decodeCTE decodes a part body by its Content-Transfer-Encoding (lower
// case, "" is 7bit) with the scanner's decoders (message.DecodeQP,
// message.DecodeBase64), so that the banner goes in front of the text
// that was scanned. ok is false for an unknown encoding.
func decodeCTE(cte string, raw []byte) ([]byte, bool) {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return raw, true
	case "quoted-printable":
		return message.DecodeQP(deleteTrailingBlanks(raw)), true
	case "base64":
		return message.DecodeBase64(raw), true
	}
	return nil, false
}

// deleteTrailingBlanks removes the blanks at the end of every line of a
// quoted-printable body before it is decoded: transport padding a decoder
// must delete (RFC 2045 section 6.7 rule 3), which the rewritten part
// would otherwise carry as "=20".
func deleteTrailingBlanks(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		line, rest, found := bytes.Cut(raw, []byte("\n"))
		raw = rest
		eol := ""
		if found {
			eol = "\n"
			if l, ok := bytes.CutSuffix(line, []byte("\r")); ok {
				line, eol = l, "\r\n"
			}
		}
		out = append(append(out, bytes.TrimRight(line, " \t")...), eol...)
	}
	return out
}

// encodeCTE encodes a part body; eol is the line end of the message.
func encodeCTE(cte string, data []byte, eol string) []byte {
	switch cte {
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write(data)
		_ = w.Close()
		out := b.Bytes()
		if eol == "\n" {
			out = bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n"))
		}
		return out
	case "base64":
		enc := base64.StdEncoding.EncodeToString(data)
		var b bytes.Buffer
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString(eol)
			enc = enc[76:]
		}
		b.WriteString(enc)
		if len(data) > 0 {
			b.WriteString(eol)
		}
		return b.Bytes()
	}
	return data
}

// lookupCharset finds a charset as the scanner does
// (message.LookupCharset), so that the rewriter and the scanner agree. It
// returns nil for an unknown charset.
func lookupCharset(label string) encoding.Encoding {
	enc, _ := message.LookupCharset(label)
	return enc
}

// encodeText encodes s (UTF-8) in enc; ok is false when a character of s
// has no representation there.
func encodeText(enc encoding.Encoding, s string) ([]byte, bool) {
	if enc == unicode.UTF8 {
		return []byte(s), true
	}
	if enc == message.ASCII {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, false
			}
		}
		return []byte(s), true
	}
	b, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return nil, false
	}
	return b, true
}

// asciiCompatible reports whether ASCII text encodes to the same bytes in
// enc, so that an ASCII banner can be put in front of the content and
// HTML markup can be found in it without decoding (not so for UTF-16).
func asciiCompatible(enc encoding.Encoding) bool {
	const probe = "Az09 <>/=&;#:.,-[]()\"'\r\n"
	b, ok := encodeText(enc, probe)
	return ok && string(b) == probe
}

// toUTF8 decodes content in enc to UTF-8.
func toUTF8(enc encoding.Encoding, content []byte) ([]byte, bool) {
	if enc == unicode.UTF8 {
		return content, true
	}
	out, err := enc.NewDecoder().Bytes(content)
	if err != nil {
		return nil, false
	}
	return out, true
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// lineEnd is the line end used in content: CRLF if it has one, LF if it
// has only those, def otherwise.
func lineEnd(content []byte, def string) string {
	if i := bytes.IndexByte(content, '\n'); i >= 0 {
		if i > 0 && content[i-1] == '\r' {
			return "\r\n"
		}
		return "\n"
	}
	return def
}
