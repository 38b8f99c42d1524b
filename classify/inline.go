package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path"
	"strconv"
	"strings"
)

// Inline encoded files in a text part (R34, issue 11 point 7): uuencode
// (POSIX uuencode: "begin MODE NAME" ... "end", and "begin-base64 MODE
// NAME" ... "===="), yEnc 1.3 ("=ybegin ... name=NAME" ... "=yend") and
// BinHex 4.0 ("(This file must be converted with BinHex 4.0)", then
// ":" ... ":"). Mail clients show such a block as an attachment, so with
// Options.ScanAttachments its decoded content is scanned as an attachment
// of its name (kindByName: text, HTML, RTF, a message, a docx or zip).
//
// The stage passes every byte on to the text path unchanged (the text
// around a block, and the block itself, are still scanned as text) and
// looks at whole lines only where a block may start or is open, so plain
// text costs one bytes.IndexByte per line. Decoding is streaming, line by
// line; a block cut short after it started to decode (content lost) is
// unreadable; a "begin" line that is not followed by uuencoded data is
// prose, not a block.

// maxInlineLine bounds a line looked at; block lines are short (uuencode
// 61, BinHex 64, yEnc usually 128 or 256 characters).
const maxInlineLine = 8 << 10

// Inline states.
const (
	ilText       = iota
	ilUU         // uuencode lines
	ilB64        // uuencode -m (base64) lines
	ilYEnc       // yEnc lines
	ilBinHexWait // after the BinHex header line, before the ':'
	ilBinHex     // BinHex data
)

const binhexTag = "(This file must be converted with BinHex"

type inlineStage struct {
	ctx   *scanCtx
	where string
	next  stage
	level int // nesting level of the text (scanCtx.arc.nest)

	bol  bool // at the beginning of a line
	cand bool // the current line is collected in line
	line []byte
	long bool // the current line is longer than maxInlineLine

	st  int
	blk *inlineBlock
}

// inlineBlock is one encoded file being decoded.
type inlineBlock struct {
	format  string // "uuencode", "yEnc", "BinHex"
	where   string
	sink    stage // nil: the content is not scanned
	deep    bool  // nested past MaxArchiveDepth
	lost    bool  // a limit was hit: the rest is not scanned
	n       int64 // decoded bytes
	lines   int   // content lines decoded
	zero    bool  // uuencode: the zero-length line was seen
	ysize   int64 // yEnc: declared size (of this part)
	ypart   bool
	crc     uint32 // yEnc: CRC-32 of the decoded bytes
	bh      *binhex
	pending []byte // decoded bytes not yet passed to sink
}

func newInlineStage(ctx *scanCtx, where string, next stage) *inlineStage {
	return &inlineStage{ctx: ctx, where: where, next: next, level: ctx.arc.nest, bol: true}
}

// mayStart reports whether a line starting with p may start a block; with
// fewer than 5 bytes known it may.
func mayStart(p []byte) bool {
	switch p[0] {
	case 'b', '=', '(':
	default:
		return false
	}
	if len(p) < 5 {
		return true
	}
	switch string(p[:5]) {
	case "begin", "=ybeg", "(This":
		return true
	}
	return false
}

func (s *inlineStage) write(p []byte) {
	for len(p) > 0 {
		if s.bol {
			s.bol = false
			s.cand = s.st != ilText || mayStart(p)
			s.line, s.long = s.line[:0], false
		}
		if !s.cand {
			// Pass on the lines up to the next one that may start a
			// block, in one write.
			i := 0
			for {
				j := bytes.IndexByte(p[i:], '\n')
				if j < 0 {
					s.next.write(p)
					return
				}
				i += j + 1
				if i == len(p) || mayStart(p[i:]) {
					break
				}
			}
			s.next.write(p[:i])
			p = p[i:]
			s.bol = true
			continue
		}
		j := bytes.IndexByte(p, '\n')
		end := len(p)
		if j >= 0 {
			end = j + 1
		}
		s.next.write(p[:end])
		seg := p[:end]
		if j >= 0 {
			seg = seg[:j]
		}
		if len(s.line)+len(seg) > maxInlineLine {
			s.long = true
		} else {
			s.line = append(s.line, seg...)
		}
		p = p[end:]
		if j >= 0 {
			s.endLine()
			s.bol = true
		}
	}
}

func (s *inlineStage) close() {
	if s.cand && !s.bol && (len(s.line) > 0 || s.long) {
		s.endLine()
	}
	if s.st != ilText {
		s.endBlock(true, "")
	}
	s.next.close()
}

// endLine acts on a complete line.
func (s *inlineStage) endLine() {
	line := s.line
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if s.long {
		if s.st != ilText {
			s.endBlock(true, fmt.Sprintf("a line longer than %d bytes", maxInlineLine))
		}
		return
	}
	if s.st == ilText {
		s.textLine(line)
		return
	}
	switch s.st {
	case ilUU:
		s.uuLine(line)
	case ilB64:
		if string(bytes.TrimRight(line, " \t")) == "====" {
			s.endBlock(false, "")
			return
		}
		s.feed(line)
	case ilYEnc:
		s.yencLine(line)
	case ilBinHexWait:
		t := bytes.TrimLeft(line, " \t")
		switch {
		case len(bytes.TrimSpace(t)) == 0:
		case t[0] == ':':
			s.st = ilBinHex
			s.binhexLine(t[1:])
		default:
			s.ctx.col.problem("%s: BinHex header line without BinHex data, read as text", s.where)
			s.abort()
			s.textLine(line)
		}
	case ilBinHex:
		s.binhexLine(line)
	}
}

// textLine looks for the first line of a block.
func (s *inlineStage) textLine(line []byte) {
	if !bytes.HasPrefix(line, []byte("begin")) && !bytes.HasPrefix(line, []byte("=ybegin ")) && !bytes.HasPrefix(line, []byte(binhexTag)) {
		return
	}
	l := string(line)
	switch {
	case strings.HasPrefix(l, "begin "), strings.HasPrefix(l, "begin-base64 "):
		f := strings.SplitN(l, " ", 3)
		if len(f) < 3 || len(f[1]) < 3 || len(f[1]) > 4 || strings.Trim(f[1], "01234567") != "" || strings.TrimSpace(f[2]) == "" {
			return
		}
		s.open("uuencode", strings.TrimSpace(f[2]))
		s.st = ilUU
		if f[0] == "begin-base64" {
			s.st = ilB64
			if s.blk.sink != nil {
				s.blk.sink = newTransferStage(s.ctx, "base64", s.blk.where, s.blk.sink)
			}
		}
	case strings.HasPrefix(l, "=ybegin ") && strings.Contains(l, " size=") && strings.Contains(l, " name="):
		kv := yencParams(l[len("=ybegin "):])
		s.open("yEnc", kv["name"])
		s.blk.ysize, _ = strconv.ParseInt(kv["size"], 10, 64)
		s.blk.ypart = kv["part"] != ""
		s.st = ilYEnc
	case strings.HasPrefix(l, binhexTag):
		s.open("BinHex", "")
		s.blk.bh = &binhex{}
		s.st = ilBinHexWait
	}
}

// open starts a block for a file of the given name (BinHex names it later,
// in its header).
func (s *inlineStage) open(format, name string) {
	s.blk = &inlineBlock{format: format, where: s.where + " / attachment (" + format + ")"}
	if format != "BinHex" {
		s.name(name)
	}
}

// name names the block's file and chooses the stage for its content.
func (s *inlineStage) name(name string) {
	b := s.blk
	name = cleanName(name)
	label := name
	if label == "" {
		label = "(" + b.format + ")"
	}
	b.where = s.where + " / attachment " + label
	kind := kindByName(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if kind == kOther {
		return // not text: skipped, as such an attachment is (R34)
	}
	if s.level+1 > MaxArchiveDepth {
		b.deep = true
		return
	}
	saved := s.ctx.arc.nest
	s.ctx.arc.nest = s.level + 1
	b.sink = entryStage(s.ctx, kind, b.where)
	s.ctx.arc.nest = saved
}

// feed passes decoded bytes to the block's content stage, within the
// limits.
func (s *inlineStage) feed(p []byte) {
	b := s.blk
	if len(p) == 0 {
		return
	}
	b.lines++
	if b.deep && !b.lost {
		b.lost = true
		s.ctx.col.unreadable("%s: %s block nested deeper than %d levels, not read", b.where, b.format, MaxArchiveDepth)
	}
	if b.sink == nil || b.lost {
		return
	}
	arc := &s.ctx.arc
	switch {
	case b.n+int64(len(p)) > MaxEntrySize:
		b.lost = true
		s.ctx.col.unreadable("%s: %s block %v", b.where, b.format, errEntrySize)
		return
	case arc.unpacked+int64(len(p)) > MaxUnpackedTotal:
		b.lost = true
		s.ctx.col.unreadable("%s: not read: %v", b.where, errUnpacked)
		return
	}
	b.n += int64(len(p))
	arc.unpacked += int64(len(p))
	saved := arc.nest
	arc.nest = s.level + 1
	b.sink.write(p)
	arc.nest = saved
}

// endBlock ends the open block; cut says that it ended before its end
// line (why, when not the end of the text).
func (s *inlineStage) endBlock(cut bool, why string) {
	b := s.blk
	if b == nil {
		s.st = ilText
		return
	}
	if b.bh != nil {
		s.flushBinHex()
		if !cut && b.bh.st != bhDone {
			cut, why = true, "shorter than its header says"
		}
	}
	if b.zero {
		cut = false // uuencode: the data ended with its zero-length line
	}
	// Content is lost when a block that is scanned was cut after its
	// data began, or when a BinHex block was cut inside its header,
	// before the name said what the file is.
	inHeader := b.bh != nil && b.bh.started && b.bh.st == bhHeader
	if cut && (b.lines > 0 && b.sink != nil || inHeader) && !b.lost {
		if why == "" {
			why = "not terminated"
		}
		s.ctx.col.unreadable("%s: %s block cut short (%s): content lost", b.where, b.format, why)
	}
	if b.sink != nil {
		saved := s.ctx.arc.nest
		s.ctx.arc.nest = s.level + 1
		b.sink.close()
		s.ctx.arc.nest = saved
	}
	s.blk = nil
	s.st = ilText
}

// abort drops a block that turned out not to be one (nothing decoded).
func (s *inlineStage) abort() {
	s.blk.lines = 0
	s.endBlock(false, "")
}

// uuLine decodes one uuencode line (POSIX.1-2017 uuencode, "Encoded
// file format"): a length character, then groups of four characters of
// 6 bits each ((c - 0x20) & 0x3F; 0x60 "`" is zero too).
func (s *inlineStage) uuLine(line []byte) {
	t := bytes.TrimRight(line, " \t")
	if string(t) == "end" {
		s.endBlock(false, "")
		return
	}
	if s.blk.zero {
		// The zero-length line ended the data; "end" is missing, but
		// nothing was lost. The line is text again.
		s.endBlock(false, "")
		s.textLine(line)
		return
	}
	if len(t) == 0 || string(t) == "`" {
		s.blk.zero = true
		return
	}
	out, ok := uuDecodeLine(line, nil)
	if !ok {
		if s.blk.lines == 0 {
			// "begin 644 x" followed by prose: not a block.
			s.abort()
		} else {
			s.endBlock(true, "malformed line")
		}
		s.textLine(line)
		return
	}
	s.feed(out)
}

// uuDecodeLine appends the bytes of one uuencoded line to dst; ok is false
// when the line is not uuencode.
func uuDecodeLine(line, dst []byte) ([]byte, bool) {
	if len(line) == 0 || line[0] < 0x20 || line[0] > 0x60 {
		return dst, false
	}
	n := int(line[0]-0x20) & 0x3F
	data := line[1:]
	if need := (n + 2) / 3 * 4; len(data) > need {
		data = data[:need] // a trailing check character is ignored
	}
	// A trailing space (zero bits) may have been stripped in transit.
	if len(data) < (n*4+2)/3-1 {
		return dst, false
	}
	var q [4]byte
	for i := 0; n > 0; i += 4 {
		for k := range q {
			c := byte(' ')
			if i+k < len(data) {
				c = data[i+k]
			}
			if c < 0x20 || c > 0x60 {
				return dst, false
			}
			q[k] = (c - 0x20) & 0x3F
		}
		b := [3]byte{q[0]<<2 | q[1]>>4, q[1]<<4 | q[2]>>2, q[2]<<6 | q[3]}
		k := min(n, 3)
		dst = append(dst, b[:k]...)
		n -= k
	}
	return dst, true
}

// yencParams parses "key=value" pairs of a yEnc control line; name is the
// rest of the line (it may hold spaces).
func yencParams(l string) map[string]string {
	kv := map[string]string{}
	if i := strings.Index(l, "name="); i >= 0 {
		kv["name"] = strings.TrimSpace(l[i+len("name="):])
		l = l[:i]
	}
	for _, f := range strings.Fields(l) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[strings.ToLower(k)] = v
		}
	}
	return kv
}

// yencLine decodes one yEnc line (yEnc 1.3: each byte is (c + 42) mod
// 256; "=" escapes the next one, which is (c + 64) mod 256 more; CR and LF
// are line ends).
func (s *inlineStage) yencLine(line []byte) {
	b := s.blk
	l := string(line)
	switch {
	case strings.HasPrefix(l, "=ypart "):
		return
	case strings.HasPrefix(l, "=yend"):
		kv := yencParams(strings.TrimPrefix(l, "=yend"))
		size, err := strconv.ParseInt(kv["size"], 10, 64)
		if err != nil {
			size = b.ysize
		}
		if b.sink != nil && !b.lost && b.n < size {
			s.ctx.col.unreadable("%s: yEnc block of %d bytes decoded to %d: content lost", b.where, size, b.n)
		}
		want := kv["pcrc32"]
		if want == "" && !b.ypart {
			want = kv["crc32"]
		}
		if v, err := strconv.ParseUint(want, 16, 32); err == nil && b.sink != nil && !b.lost && uint32(v) != b.crc {
			s.ctx.col.problem("%s: yEnc CRC-32 mismatch", b.where)
		}
		s.endBlock(false, "")
		return
	}
	out := b.pending[:0]
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '=' {
			if i++; i == len(line) {
				s.ctx.col.problem("%s: yEnc escape at the end of a line", b.where)
				break
			}
			c = line[i] - 64
		}
		out = append(out, c-42)
	}
	b.crc = crc32.Update(b.crc, crc32.IEEETable, out)
	s.feed(out)
	b.pending = out[:0]
}

// BinHex 4.0 (RFC 1741 appendix, "BinHex 4.0 Definition"): 6-bit
// characters from binhexAlphabet between two colons; the bytes are
// run-length encoded (0x90 repeats the previous byte; 0x90 0x00 is 0x90
// itself); the stream is a header (name length, name, version, type,
// creator, flags, data fork length, resource fork length, CRC), the data
// fork and its CRC, the resource fork and its CRC. CRCs are CRC-16/XMODEM.
// The data fork is the file scanned.
const binhexAlphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"

var binhexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(binhexAlphabet); i++ {
		t[binhexAlphabet[i]] = byte(i)
	}
	return t
}()

// BinHex stream states.
const (
	bhHeader = iota
	bhData
	bhDataCRC
	bhDone
)

type binhex struct {
	started bool // the data started (a ':' was read)
	ended   bool // the closing ':' was read
	bits    uint32
	nbits   uint
	marker  bool // the last byte was the RLE marker 0x90
	last    byte
	st      int
	hdr     []byte
	remain  uint32 // data fork bytes to come
	crc     uint16
	fileCRC [2]byte
	ncrc    int
}

func crcXMODEM(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func (s *inlineStage) binhexLine(line []byte) {
	h := s.blk.bh
	h.started = true
	for _, c := range line {
		if c == ':' {
			h.ended = true
			s.endBlock(false, "")
			return
		}
		v := binhexValue[c]
		if v == 0xFF {
			if c == ' ' || c == '\t' {
				continue
			}
			s.endBlock(true, "a character outside the BinHex alphabet")
			return
		}
		if h.st == bhDone || s.blk.lost {
			continue // the resource fork, or past a limit: not decoded
		}
		h.bits = h.bits<<6 | uint32(v)
		h.nbits += 6
		if h.nbits >= 8 {
			h.nbits -= 8
			s.binhexRLE(byte(h.bits >> h.nbits))
			h.bits &= 1<<h.nbits - 1
		}
	}
	s.flushBinHex()
}

func (s *inlineStage) binhexRLE(b byte) {
	h := s.blk.bh
	switch {
	case h.marker:
		h.marker = false
		if b == 0 {
			s.binhexByte(0x90)
			h.last = 0x90
			return
		}
		for i := 1; i < int(b) && h.st != bhDone && !s.blk.lost; i++ {
			s.binhexByte(h.last)
		}
	case b == 0x90:
		h.marker = true
	default:
		s.binhexByte(b)
		h.last = b
	}
}

// binhexByte takes one byte of the decoded stream.
func (s *inlineStage) binhexByte(c byte) {
	b := s.blk
	h := b.bh
	switch h.st {
	case bhHeader:
		h.hdr = append(h.hdr, c)
		n := int(h.hdr[0])
		if len(h.hdr) < n+22 {
			return
		}
		// name, 0, type(4), creator(4), flags(2), data length(4),
		// resource length(4), CRC(2)
		s.name(string(h.hdr[1 : 1+n]))
		if crcXMODEM(0, h.hdr[:n+20]) != binary.BigEndian.Uint16(h.hdr[n+20:]) {
			s.ctx.col.problem("%s: BinHex header CRC mismatch", b.where)
		}
		h.remain = binary.BigEndian.Uint32(h.hdr[n+12:])
		h.hdr = nil
		h.st = bhData
		switch {
		case b.deep:
			b.lost = true
			s.ctx.col.unreadable("%s: BinHex block nested deeper than %d levels, not read", b.where, MaxArchiveDepth)
			h.st = bhDone
		case b.sink == nil:
			h.st = bhDone // not text: not decoded further
		case h.remain > MaxEntrySize:
			b.lost = true
			s.ctx.col.unreadable("%s: BinHex data fork %v", b.where, errEntrySize)
			h.st = bhDone
		case h.remain == 0:
			h.st = bhDataCRC
		}
	case bhData:
		b.pending = append(b.pending, c)
		h.crc = crcXMODEM(h.crc, []byte{c})
		if len(b.pending) >= 4096 {
			s.flushBinHex()
		}
		if h.remain--; h.remain == 0 {
			s.flushBinHex()
			h.st = bhDataCRC
		}
	case bhDataCRC:
		h.fileCRC[h.ncrc] = c
		if h.ncrc++; h.ncrc == 2 {
			if binary.BigEndian.Uint16(h.fileCRC[:]) != h.crc {
				s.ctx.col.problem("%s: BinHex data CRC mismatch", b.where)
			}
			h.st = bhDone
		}
	}
}

func (s *inlineStage) flushBinHex() {
	b := s.blk
	if len(b.pending) > 0 {
		s.feed(b.pending)
		b.pending = b.pending[:0]
	}
}
