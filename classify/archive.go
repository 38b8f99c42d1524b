package classify

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Archives (R34, issue 11 point 7): with Options.ScanAttachments, zip
// attachments are opened and the text-like entries inside are scanned as
// attachments of their names; Office Open XML (docx, xlsx, pptx, ECMA-376
// Part 2, the Open Packaging Conventions) and OpenDocument (odt, ods, odp,
// ODF 1.2 Part 3) files are zip packages whose XML parts hold the text
// (ooxml.go). An archive cannot be read streaming (its directory is at
// the end), so the decoded attachment is buffered, up to a bound, and
// read when it closes. Every limit below ends in Result.Unreadable with
// the reason, never in a crash and never in a silent pass (fail safe).
const (
	// MaxArchiveSize bounds the bytes of archives buffered at once (an
	// archive and the archives nested in it share it); a larger archive
	// is unreadable.
	MaxArchiveSize = 32 << 20
	// MaxArchiveEntries bounds the entries of one archive (central
	// directory records). A package of a few hundred slides or sheets
	// stays well under it; it keeps the directory that archive/zip holds
	// in memory small.
	MaxArchiveEntries = 2000
	// MaxEntrySize bounds the decompressed size of one entry.
	MaxEntrySize = 32 << 20
	// MaxUnpackedTotal bounds, per message, the bytes decompressed from
	// archives and decoded from inline uuencode, yEnc and BinHex blocks:
	// the time a scan may spend unpacking.
	MaxUnpackedTotal = 128 << 20
	// MaxCompressionRatio bounds decompressed/compressed bytes of an entry
	// once it has produced more than ratioGrace bytes: a zip bomb. Deflate
	// reaches about 1030:1; the text of a real document compresses 5 to
	// 20:1 and a very repetitive one (a docx of one paragraph pasted over
	// and over) 230:1, so Apache POI's 100:1 (ZipSecureFile) is too tight
	// for a gateway that holds what it refuses.
	MaxCompressionRatio = 300
	// MaxArchiveDepth bounds the nesting of containers: an attachment
	// archive or inline block is level 1, a docx or zip inside it level 2,
	// and so on. Deeper ones are unreadable.
	MaxArchiveDepth = 3
)

// ratioGrace is the output below which the compression ratio is not
// judged: small, repetitive XML parts compress well.
const ratioGrace = 4 << 20

// Kinds added by this file. kArchive is outside mime.go's iota block, so
// that kinds added there cannot collide with it.
const kArchive = 64

// Errors of the archive limits; the unreadable reasons wrap them.
var (
	errEntrySize   = fmt.Errorf("decompresses to more than %d bytes", MaxEntrySize)
	errRatio       = fmt.Errorf("compression ratio over %d (a zip bomb?)", MaxCompressionRatio)
	errUnpacked    = fmt.Errorf("archives and encoded blocks of the message unpack to more than %d bytes", MaxUnpackedTotal)
	errCorruptData = errors.New("corrupt data")
)

// arcState is the archive state of one scan (scanCtx.arc).
type arcState struct {
	nest     int   // level of the container whose content is being fed now
	buffered int64 // bytes held by open archive buffers
	unpacked int64 // bytes unpacked so far (MaxUnpackedTotal)
}

// isArchiveType reports whether a media type is a zip archive or a zip
// package (OOXML, ODF).
func isArchiveType(mt string) bool {
	switch mt {
	case "application/zip", "application/x-zip", "application/x-zip-compressed", "multipart/x-zip":
		return true
	}
	return strings.HasPrefix(mt, "application/vnd.openxmlformats-officedocument.") ||
		strings.HasPrefix(mt, "application/vnd.oasis.opendocument.") ||
		// Macro-enabled OOXML: docm, xlsm, pptm.
		strings.HasPrefix(mt, "application/vnd.ms-word.") && strings.HasSuffix(mt, ".macroenabled.12") ||
		strings.HasPrefix(mt, "application/vnd.ms-excel.") && strings.HasSuffix(mt, ".macroenabled.12") ||
		strings.HasPrefix(mt, "application/vnd.ms-powerpoint.") && strings.HasSuffix(mt, ".macroenabled.12")
}

// isArchiveName reports whether a file name names a zip archive or a zip
// package, for attachments sent as application/octet-stream.
func isArchiveName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".zip",
		".docx", ".docm", ".dotx", ".dotm",
		".xlsx", ".xlsm", ".xltx", ".xltm",
		".pptx", ".pptm", ".potx", ".potm", ".ppsx", ".ppsm",
		".odt", ".ott", ".ods", ".ots", ".odp", ".otp", ".odg", ".odf":
		return true
	}
	return false
}

// archiveStage buffers an archive and scans it when it closes.
type archiveStage struct {
	ctx   *scanCtx
	where string
	level int
	buf   []byte
	over  bool // the buffer limit was hit
}

func newArchiveStage(ctx *scanCtx, where string) *archiveStage {
	return &archiveStage{ctx: ctx, where: where, level: ctx.arc.nest + 1}
}

func (a *archiveStage) write(p []byte) {
	if a.over || a.level > MaxArchiveDepth || len(p) == 0 {
		return
	}
	arc := &a.ctx.arc
	if arc.buffered+int64(len(p)) > MaxArchiveSize {
		a.over = true
		a.free()
		return
	}
	if need := len(a.buf) + len(p); need > cap(a.buf) {
		// Grow by doubling, within what the limit still allows.
		c := min(max(2*cap(a.buf), need, 4096), len(a.buf)+int(MaxArchiveSize-arc.buffered))
		nb := make([]byte, len(a.buf), c)
		copy(nb, a.buf)
		a.buf = nb
	}
	a.buf = append(a.buf, p...)
	arc.buffered += int64(len(p))
}

func (a *archiveStage) free() {
	a.ctx.arc.buffered -= int64(len(a.buf))
	a.buf = nil
}

func (a *archiveStage) close() {
	defer a.free()
	col := a.ctx.col
	switch {
	case a.level > MaxArchiveDepth:
		col.unreadable("%s: archives nested deeper than %d levels, not read", a.where, MaxArchiveDepth)
		return
	case a.over:
		col.unreadable("%s: archive larger than %d bytes, not read", a.where, MaxArchiveSize)
		return
	}
	// archive/zip holds every directory record in memory; count them
	// first. Each record starts with this signature, so the count bounds
	// what the reader would hold (APPNOTE.TXT 4.3.12).
	if n := bytes.Count(a.buf, []byte("PK\x01\x02")); n > MaxArchiveEntries {
		col.unreadable("%s: archive with more than %d entries, not read", a.where, MaxArchiveEntries)
		return
	}
	if bytes.HasPrefix(a.buf, oleSignature) {
		col.unreadable("%s: an OLE2 compound file (a password-protected Office document, or a legacy one under a new name), not read", a.where)
		return
	}
	zr, err := zip.NewReader(bytes.NewReader(a.buf), int64(len(a.buf)))
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		col.unreadable("%s: not a readable zip archive (%v)", a.where, err)
		return
	}
	pkg := isPackage(zr)
	saved := a.ctx.arc.nest
	a.ctx.arc.nest = a.level
	defer func() { a.ctx.arc.nest = saved }()
	for _, f := range zr.File {
		if !a.entry(f, pkg) {
			return
		}
	}
}

// oleSignature starts an OLE2 compound file ([MS-CFB] 2.2), which is what
// an encrypted OOXML document is ([MS-OFFCRYPTO] 2.3.4.4).
var oleSignature = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// isPackage reports whether an archive is an OOXML package (it has the
// [Content_Types].xml part, ECMA-376 Part 2 section 10.1.2.2) or an
// OpenDocument package (mimetype or content.xml, ODF 1.2 Part 3 section 3).
func isPackage(zr *zip.Reader) bool {
	for _, f := range zr.File {
		switch f.Name {
		case "[Content_Types].xml", "mimetype", "content.xml":
			return true
		}
	}
	return false
}

// entry scans one entry; it returns false when the unpacking budget of the
// message is spent.
func (a *archiveStage) entry(f *zip.File, pkg bool) bool {
	if f.Name == "" || strings.HasSuffix(f.Name, "/") {
		return true
	}
	ctx := a.ctx
	where := a.where + " / " + cleanName(f.Name)
	if f.Flags&0x1 != 0 { // APPNOTE.TXT 4.4.4 bit 0: encrypted
		// Whatever its name says, what is inside cannot be known.
		ctx.col.unreadable("%s: encrypted archive entry", where)
		return true
	}
	xmlPart := pkg && strings.HasSuffix(strings.ToLower(f.Name), ".xml")
	kind := kOther
	if !xmlPart {
		if kind = kindByName(path.Base(f.Name)); kind == kOther {
			return true // not text: skipped, as such an attachment is (R34)
		}
	}
	if f.UncompressedSize64 > MaxEntrySize {
		ctx.col.unreadable("%s: archive entry %v", where, errEntrySize)
		return true
	}
	if ctx.arc.unpacked >= MaxUnpackedTotal {
		ctx.col.unreadable("%s: not read: %v", where, errUnpacked)
		return false
	}
	rc, err := f.Open()
	if err != nil {
		ctx.col.unreadable("%s: archive entry cannot be opened (%v)", where, err)
		return true
	}
	defer rc.Close()
	lr := &limitReader{ctx: ctx, r: rc, comp: f.CompressedSize64}
	if xmlPart {
		err = xmlText(ctx, lr, where, isMetadataPart(f.Name))
	} else {
		err = copyStage(entryStage(ctx, kind, where), lr)
	}
	if lr.err != nil {
		err = lr.err
	}
	if err != nil {
		ctx.col.unreadable("%s: archive entry not read to its end: %v", where, err)
		return !errors.Is(err, errUnpacked)
	}
	return true
}

// entryStage is the stage for the content of an embedded file of the given
// kind (an archive entry, an inline encoded block).
func entryStage(ctx *scanCtx, kind int, where string) stage {
	switch kind {
	case kArchive:
		return newArchiveStage(ctx, where)
	case kMessage:
		return newEntity(ctx, 1, "", true, false, where)
	case kTNEF:
		return newTNEFStage(ctx, where)
	case kText, kHTML:
		return &bomStage{ctx: ctx, kind: kind, where: where}
	case kRTF:
		return (&entity{ctx: ctx}).textStage(kind, "", where)
	}
	return discard{}
}

// bomStage starts the stages of a text file that has no declared charset
// (an archive entry, an inline block): a UTF-16 byte order mark (Windows
// Notepad's "Unicode") says UTF-16, else it is read as ASCII/UTF-8 as an
// undeclared MIME part is.
type bomStage struct {
	ctx   *scanCtx
	kind  int
	where string
	head  [2]byte
	nhead int
	next  stage
}

func (b *bomStage) start() {
	cs := ""
	if h := b.head[:b.nhead]; bytes.Equal(h, []byte{0xFF, 0xFE}) || bytes.Equal(h, []byte{0xFE, 0xFF}) {
		cs = "utf-16" // the BOM decides the byte order (RFC 2781 section 3.2)
	}
	// The stages of a text attachment without a transfer encoding.
	b.next = (&entity{ctx: b.ctx}).textStage(b.kind, cs, b.where)
	b.next.write(b.head[:b.nhead])
}

func (b *bomStage) write(p []byte) {
	if b.next == nil {
		k := copy(b.head[b.nhead:], p)
		b.nhead += k
		if p = p[k:]; b.nhead < len(b.head) {
			return
		}
		b.start()
	}
	if len(p) > 0 {
		b.next.write(p)
	}
}

func (b *bomStage) close() {
	if b.next == nil {
		b.start()
	}
	b.next.close()
}

// copyStage feeds r to s in chunks and closes s.
func copyStage(s stage, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.write(buf[:n])
		}
		if err == io.EOF {
			s.close()
			return nil
		}
		if err != nil {
			s.close()
			return err
		}
	}
}

// limitReader reads an entry within the limits: its size, its compression
// ratio and the unpacking budget of the message. Read errors of the entry
// (a corrupt deflate stream, a CRC-32 mismatch) wrap errCorruptData.
type limitReader struct {
	ctx  *scanCtx
	r    io.Reader
	comp uint64 // compressed size of the entry
	n    uint64
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.n += uint64(n)
	l.ctx.arc.unpacked += int64(n)
	switch {
	case l.n > MaxEntrySize:
		l.err = errEntrySize
	case l.n > ratioGrace && l.n > MaxCompressionRatio*l.comp:
		l.err = errRatio
	case l.ctx.arc.unpacked > MaxUnpackedTotal:
		l.err = errUnpacked
	case err != nil && err != io.EOF:
		l.err = fmt.Errorf("%w: %v", errCorruptData, err)
	}
	if l.err != nil {
		return 0, l.err // the bytes past a limit are not scanned
	}
	return n, err
}
