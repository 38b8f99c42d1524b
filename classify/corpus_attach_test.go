package classify

// Golden fixtures of attachments read with ScanAttachments (R34, issue 11
// point 7): Office Open XML and OpenDocument files, zip archives and
// their limits, inline uuencode, yEnc and BinHex blocks. The documents
// are built here with archive/zip (fixed times, so that they are
// reproducible); the inline encoders are written from the formats'
// definitions (POSIX uuencode, yEnc 1.3, BinHex 4.0 of RFC 1741).

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

var zipTime = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

// zentry is one file of a test archive. Deflated entries depend on
// compress/flate's output, which is stable for a Go release; most
// entries are stored.
type zentry struct {
	name, body string
	deflate    bool
	flags      uint16
}

func mkzip(entries ...zentry) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Store, Modified: zipTime, Flags: e.flags}
		if e.deflate {
			fh.Method = zip.Deflate
		}
		f, err := w.CreateHeader(fh)
		if err != nil {
			panic(err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

const xmlDecl = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\r\n"

const nsW = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

// wp is a Word paragraph of runs, one <w:r><w:t> each, the odd one bold.
func wp(runs ...string) string {
	var b strings.Builder
	b.WriteString("<w:p><w:pPr><w:pStyle w:val=\"Normal\"/></w:pPr>")
	for i, r := range runs {
		b.WriteString("<w:r>")
		if i%2 == 1 {
			b.WriteString("<w:rPr><w:b/></w:rPr>")
		}
		fmt.Fprintf(&b, `<w:t xml:space="preserve">%s</w:t></w:r>`, r)
	}
	b.WriteString("</w:p>")
	return b.String()
}

// docx builds a Word document whose body is paragraphs; extra parts follow.
func docx(title, body string, extra ...zentry) []byte {
	e := []zentry{
		{name: "[Content_Types].xml", body: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
		{name: "_rels/.rels", body: xmlDecl + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`},
		{name: "word/document.xml", deflate: true, body: xmlDecl + `<w:document ` + nsW + `><w:body>` + body +
			`<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>`},
		{name: "docProps/core.xml", body: xmlDecl + `<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" ` +
			`xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>` + title + `</dc:title><dc:creator>Alice</dc:creator></cp:coreProperties>`},
	}
	return mkzip(append(e, extra...)...)
}

func xlsx(shared, sheet string) []byte {
	return mkzip(
		zentry{name: "[Content_Types].xml", body: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>`},
		zentry{name: "xl/workbook.xml", body: xmlDecl + `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets><sheet name="Budget [RESTRICTED]" sheetId="1" r:id="rId1" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"/></sheets></workbook>`},
		zentry{name: "xl/sharedStrings.xml", deflate: true, body: xmlDecl + `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3">` + shared + `</sst>`},
		zentry{name: "xl/worksheets/sheet1.xml", deflate: true, body: xmlDecl + `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` + sheet + `</sheetData></worksheet>`},
	)
}

func pptx(slide, notes string) []byte {
	ns := `xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"`
	sp := func(paras string) string {
		return `<p:cSld><p:spTree><p:sp><p:txBody><a:bodyPr/>` + paras + `</p:txBody></p:sp></p:spTree></p:cSld>`
	}
	return mkzip(
		zentry{name: "[Content_Types].xml", body: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>`},
		zentry{name: "ppt/presentation.xml", body: xmlDecl + `<p:presentation ` + ns + `/>`},
		zentry{name: "ppt/slides/slide1.xml", deflate: true, body: xmlDecl + `<p:sld ` + ns + `>` + sp(slide) + `</p:sld>`},
		zentry{name: "ppt/notesSlides/notesSlide1.xml", body: xmlDecl + `<p:notes ` + ns + `>` + sp(notes) + `</p:notes>`},
		zentry{name: "ppt/media/image1.png", body: "\x89PNG\r\n\x1a\n[TOP SECRET] is not text in an image"},
	)
}

func odt(content string) []byte {
	ns := `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"`
	return mkzip(
		zentry{name: "mimetype", body: "application/vnd.oasis.opendocument.text"},
		zentry{name: "META-INF/manifest.xml", body: xmlDecl + `<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>`},
		zentry{name: "content.xml", deflate: true, body: xmlDecl + `<office:document-content ` + ns + `><office:body><office:text>` + content + `</office:text></office:body></office:document-content>`},
		zentry{name: "meta.xml", body: xmlDecl + `<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><dc:title>Staff</dc:title><dc:subject>[IN-CONFIDENCE:STAFF]</dc:subject></office:meta></office:document-meta>`},
	)
}

// withAttachment is a message with a text body and one base64 attachment.
func withAttachment(id, body, ctype, disp string, data []byte) string {
	m := head(id) + "Subject: " + id + "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n" +
		"--zz\nContent-Type: text/plain; charset=utf-8\n\n" + body + "\n" +
		"--zz\nContent-Type: " + ctype + "\n"
	if disp != "" {
		m += "Content-Disposition: " + disp + "\n"
	}
	return m + "Content-Transfer-Encoding: base64\n\n" + b64Lines(data) + "--zz--\n"
}

// zipBomb is one entry of 8 MiB of spaces, deflated about 1000 to 1, with
// a marking at its very end.
func zipBomb() []byte {
	return mkzip(zentry{name: "big.txt", deflate: true, body: strings.Repeat(" ", 8<<20) + "[SECRET]\n"})
}

// manyEntries is an archive of MaxArchiveEntries+1 empty files.
func manyEntries() []byte {
	e := make([]zentry, MaxArchiveEntries+1)
	for i := range e {
		e[i] = zentry{name: "a"}
	}
	return mkzip(e...)
}

// nestedZips nests zips n deep; level i holds level-i.txt with text(i).
func nestedZips(n int, text func(i int) string) []byte {
	var inner []byte
	for i := n; i >= 1; i-- {
		e := []zentry{{name: fmt.Sprintf("level-%d.txt", i), body: text(i)}}
		if inner != nil {
			e = append(e, zentry{name: fmt.Sprintf("level-%d.zip", i+1), body: string(inner)})
		}
		inner = mkzip(e...)
	}
	return inner
}

// declaredHuge is an archive whose one entry declares a decompressed size
// over MaxEntrySize.
func declaredHuge() []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	body := []byte("[SECRET]\n")
	f, err := w.CreateRaw(&zip.FileHeader{Name: "huge.txt", Method: zip.Store, Modified: zipTime,
		CRC32: crc32.ChecksumIEEE(body), CompressedSize64: uint64(len(body)), UncompressedSize64: MaxEntrySize + 1})
	if err != nil {
		panic(err)
	}
	f.Write(body)
	w.Close()
	return b.Bytes()
}

// uuencode encodes a file as uuencode(1) does: lines of 45 bytes, "`" for
// zero.
func uuencode(name string, data []byte) string {
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + 0x20
	}
	var b strings.Builder
	fmt.Fprintf(&b, "begin 644 %s\n", name)
	for len(data) > 0 {
		n := min(len(data), 45)
		line := data[:n]
		data = data[n:]
		b.WriteByte(enc(byte(n)))
		for i := 0; i < n; i += 3 {
			var g [3]byte
			copy(g[:], line[i:min(i+3, n)])
			b.WriteByte(enc(g[0] >> 2))
			b.WriteByte(enc((g[0]<<4 | g[1]>>4) & 0x3F))
			b.WriteByte(enc((g[1]<<2 | g[2]>>6) & 0x3F))
			b.WriteByte(enc(g[2] & 0x3F))
		}
		b.WriteByte('\n')
	}
	b.WriteString("`\nend\n")
	return b.String()
}

// yencode encodes a file in yEnc 1.3, escaping NUL, LF, CR and "=".
func yencode(name string, data []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "=ybegin line=64 size=%d name=%s\n", len(data), name)
	col := 0
	for _, c := range data {
		e := c + 42
		switch e {
		case 0, '\n', '\r', '=':
			b.WriteByte('=')
			e += 64
			col++
		}
		b.WriteByte(e)
		if col++; col >= 64 {
			b.WriteByte('\n')
			col = 0
		}
	}
	fmt.Fprintf(&b, "\n=yend size=%d crc32=%08x\n", len(data), crc32.ChecksumIEEE(data))
	return b.String()
}

// binhexEncode encodes a file in BinHex 4.0: header, data fork, empty
// resource fork, each with its CRC, run-length encoded, 6-bit characters in
// lines of 64.
func binhexEncode(name string, data []byte) string {
	var raw []byte
	hdr := []byte{byte(len(name))}
	hdr = append(hdr, name...)
	hdr = append(hdr, 0)
	hdr = append(hdr, "TEXTttxt"...)
	hdr = append(hdr, 0, 0)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(data)))
	hdr = binary.BigEndian.AppendUint32(hdr, 0)
	raw = binary.BigEndian.AppendUint16(append(raw, hdr...), crcXMODEM(0, hdr))
	raw = binary.BigEndian.AppendUint16(append(raw, data...), crcXMODEM(0, data))
	raw = binary.BigEndian.AppendUint16(raw, 0)
	// Run-length encoding: a run of 3 or more is the byte, 0x90, the count.
	var rle []byte
	for i := 0; i < len(raw); {
		c := raw[i]
		n := 1
		for i+n < len(raw) && raw[i+n] == c && n < 255 {
			n++
		}
		lit := []byte{c}
		if c == 0x90 {
			lit = []byte{0x90, 0}
		}
		rle = append(rle, lit...)
		if n >= 3 {
			rle = append(rle, 0x90, byte(n))
		} else {
			for k := 1; k < n; k++ {
				rle = append(rle, lit...)
			}
		}
		i += n
	}
	var b strings.Builder
	b.WriteString("(This file must be converted with BinHex 4.0)\n:")
	col := 1
	var bits uint32
	var nbits uint
	put := func(v byte) {
		b.WriteByte(binhexAlphabet[v])
		if col++; col == 64 {
			b.WriteByte('\n')
			col = 0
		}
	}
	for _, c := range rle {
		bits = bits<<8 | uint32(c)
		nbits += 8
		for nbits >= 6 {
			nbits -= 6
			put(byte(bits>>nbits) & 0x3F)
		}
		bits &= 1<<nbits - 1
	}
	if nbits > 0 {
		put(byte(bits<<(6-nbits)) & 0x3F)
	}
	b.WriteString(":\n")
	return b.String()
}

// spaceUU is uuencode with spaces for zero bits in its data lines, as
// old encoders write it.
func spaceUU(name string, data []byte) string {
	lines := strings.Split(uuencode(name, data), "\n")
	for i := 1; i < len(lines)-3; i++ {
		lines[i] = strings.ReplaceAll(lines[i], "`", " ")
	}
	return strings.Join(lines, "\n")
}

func textMsg(id, ctype, body string) string {
	return head(id) + "Subject: " + id + "\nMIME-Version: 1.0\nContent-Type: " + ctype + "\nContent-Transfer-Encoding: 8bit\n\n" + body
}

const (
	ctDocx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	ctXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	ctOdt  = "application/vnd.oasis.opendocument.text"
)

func init() {
	splitDocx := docx("[RESTRICTED] minutes",
		wp("Minutes of the meeting. This paper is ", "[SEC", "RET]", " until released.")+
			// Across paragraphs a marking does not join.
			wp("[TOP SEC")+wp("RET] is two paragraphs"),
		zentry{name: "word/header1.xml", body: xmlDecl + `<w:hdr ` + nsW + `>` + wp("[IN-CON", "FIDENCE]") + `</w:hdr>`})
	uuText := "Kia ora,\nthe minutes are below.\n\n" +
		uuencode("minutes.txt", []byte("Minutes of the meeting held on Tuesday.\r\nThis paper is [SECRET] until released.\r\n")) +
		"Regards,\nAlice\n"
	truncatedUU := uuencode("minutes.txt", []byte("Minutes of the meeting held on Tuesday, 4 March.\r\nThis paper is [SECRET] until released.\r\n"))
	truncatedUU = truncatedUU[:strings.Index(truncatedUU, "\n")+1+62]
	yData := append([]byte("Notes: [TOP SECRET] budget figures\r\n"), 0x13, 0xD6, 0xE0, 0xE3, '\r', '\n')

	fixtures = append(fixtures,
		fixture{name: "attach-docx", want: "UNCLASSIFIED", wantAttach: "SECRET",
			msg: withAttachment("attach-docx", "The minutes are attached.", ctDocx+"; name=\"minutes.docx\"", "attachment; filename=\"minutes.docx\"", splitDocx)},
		fixture{name: "attach-docx-hidden", want: "UNCLASSIFIED", wantAttach: "TOP SECRET",
			msg: withAttachment("attach-docx-hidden", "Hidden runs.", ctDocx+"; name=\"hidden.docx\"", "attachment; filename=\"hidden.docx\"",
				docx("Hidden", `<w:p><w:r><w:t>[TOP SE</w:t></w:r><w:r><w:rPr><w:vanish/></w:rPr><w:t>x</w:t></w:r><w:r><w:t>CRET] shown, x hidden</w:t></w:r></w:p>`+
					`<w:p><w:r><w:rPr><w:vanish/></w:rPr><w:t>[CONFIDENTIAL] hidden</w:t></w:r></w:p>`+
					`<w:p><w:r><w:rPr><w:vanish w:val="0"/></w:rPr><w:t>[IN</w:t><w:noBreakHyphen/><w:t>CONFIDENCE] not hidden</w:t></w:r></w:p>`))},
		fixture{name: "attach-docx-inline", want: "UNCLASSIFIED", wantAttach: "TOP SECRET",
			msg: withAttachment("attach-docx-inline", "No Content-Disposition: a document is an attachment all the same.", ctDocx, "",
				docx("Plan", wp("Plan: [TOP SECRET]")))},
		fixture{name: "attach-docx-unmarked", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED",
			msg: withAttachment("attach-docx-unmarked", "An unmarked document.", ctDocx+"; name=\"lunch.docx\"", "attachment; filename=\"lunch.docx\"",
				docx("Lunch", wp("Sandwiches [draft] on Friday.")+wp("[Secret] santa, [SECRETARIAT]")))},
		fixture{name: "attach-xlsx", want: "UNCLASSIFIED", wantAttach: "TOP SECRET",
			msg: withAttachment("attach-xlsx", "Budget attached.", ctXlsx+"; name=\"budget.xlsx\"", "attachment; filename=\"budget.xlsx\"",
				xlsx(`<si><t>Item</t></si><si><r><rPr><b/></rPr><t xml:space="preserve">[TOP </t></r><r><t>SECRET]</t></r></si><si><t>[SEC</t></si>`,
					`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>`+
						`<row r="2"><c r="A2" t="inlineStr"><is><t>[CONFIDENTIAL]</t></is></c><c r="B2" t="s"><v>2</v></c><c r="C2" t="inlineStr"><is><t>RET]</t></is></c></row>`))},
		fixture{name: "attach-pptx", want: "UNCLASSIFIED", wantAttach: "CONFIDENTIAL",
			msg: withAttachment("attach-pptx", "Slides attached (sent as octet-stream).", "application/octet-stream; name=\"deck.pptx\"", "attachment; filename=\"deck.pptx\"",
				pptx(`<a:p><a:r><a:t>Briefing </a:t></a:r><a:r><a:rPr b="1"/><a:t>[CONFI</a:t></a:r><a:r><a:t>DENTIAL]</a:t></a:r></a:p>`,
					`<a:p><a:r><a:t>Speaker notes [IN-CONFIDENCE]</a:t></a:r></a:p>`))},
		fixture{name: "attach-odt", want: "UNCLASSIFIED", wantAttach: "TOP SECRET",
			msg: withAttachment("attach-odt", "OpenDocument attached.", ctOdt+"; name=\"staff.odt\"", "attachment; filename=\"staff.odt\"",
				odt(`<text:h text:outline-level="1">Staff</text:h><text:p>Review: [SENS<text:span text:style-name="T1">ITIVE]</text:span></text:p>`+
					`<text:p>Plan: [TOP<text:s/>SECRET] (text:s is a space)</text:p>`))},
		fixture{name: "attach-zip", want: "UNCLASSIFIED", wantAttach: "SECRET",
			msg: withAttachment("attach-zip", "Files attached.", "application/zip; name=\"files.zip\"", "attachment; filename=\"files.zip\"",
				mkzip(
					zentry{name: "notes/notes.txt", body: "Notes [RESTRICTED]\r\n", deflate: true},
					zentry{name: "notes/", body: ""},
					zentry{name: "page.html", body: "<p>[SEC<b></b>RET]</p>"},
					zentry{name: "photo.png", body: "\x89PNG [TOP SECRET] is not text"},
					zentry{name: "report.docx", body: string(docx("Report", wp("[CONFIDENTIAL]")))},
					zentry{name: "fwd.eml", body: "Subject: [IN-CONFIDENCE] old\r\n\r\nold body\r\n"},
					zentry{name: "notepad.txt", body: string(append([]byte{0xFF, 0xFE}, utf16le("Saved as Unicode: [SENSITIVE]\r\n")...))},
				))},
		fixture{name: "attach-zip-bomb", want: "IN-CONFIDENCE", wantAttach: "IN-CONFIDENCE", unreadableAttach: true,
			msg: withAttachment("attach-zip-bomb", "[IN-CONFIDENCE] a small zip that inflates 1000 to 1.", "application/zip; name=\"bomb.zip\"", "attachment; filename=\"bomb.zip\"", zipBomb())},
		fixture{name: "attach-zip-entries", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true,
			msg: withAttachment("attach-zip-entries", "Many entries.", "application/zip; name=\"many.zip\"", "attachment; filename=\"many.zip\"", manyEntries())},
		fixture{name: "attach-zip-nested", want: "UNCLASSIFIED", wantAttach: "IN-CONFIDENCE", unreadableAttach: true,
			msg: withAttachment("attach-zip-nested", "Zips in zips.", "application/zip; name=\"level-1.zip\"", "attachment; filename=\"level-1.zip\"",
				nestedZips(MaxArchiveDepth+1, func(i int) string {
					switch i {
					case MaxArchiveDepth:
						return "[IN-CONFIDENCE] the deepest level read\r\n"
					case MaxArchiveDepth + 1:
						return "[SECRET] too deep to be read\r\n"
					}
					return "level\r\n"
				}))},
		fixture{name: "attach-zip-corrupt", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true,
			msg: withAttachment("attach-zip-corrupt", "A cut document.", ctDocx+"; name=\"cut.docx\"", "attachment; filename=\"cut.docx\"",
				func() []byte { d := docx("Cut", wp("[SECRET]")); return d[:len(d)*2/3] }())},
		fixture{name: "attach-zip-encrypted", want: "UNCLASSIFIED", wantAttach: "RESTRICTED", unreadableAttach: true,
			msg: withAttachment("attach-zip-encrypted", "Password protected.", "application/x-zip-compressed; name=\"locked.zip\"", "attachment; filename=\"locked.zip\"",
				mkzip(zentry{name: "readme.txt", body: "[RESTRICTED] the password is on the phone\r\n"},
					zentry{name: "secret.jpg", body: "\x8a\x13\xf0 ciphertext", flags: 0x1}))},
		fixture{name: "attach-docx-password", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true,
			msg: withAttachment("attach-docx-password", "A password-protected document is an OLE2 file.", ctDocx+"; name=\"locked.docx\"", "attachment; filename=\"locked.docx\"",
				append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 504)...))},
		fixture{name: "attach-zip-entry-size", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true,
			msg: withAttachment("attach-zip-entry-size", "An entry declared huge.", "application/zip; name=\"huge.zip\"", "attachment; filename=\"huge.zip\"", declaredHuge())},
		fixture{name: "attach-uuencode", want: "UNCLASSIFIED", wantAttach: "SECRET",
			msg: textMsg("attach-uuencode", "text/plain; charset=us-ascii", uuText)},
		fixture{name: "attach-uuencode-docx", want: "UNCLASSIFIED", wantAttach: "RESTRICTED",
			msg: textMsg("attach-uuencode-docx", "text/plain", "Document below.\n"+uuencode("report.docx", docx("Report", wp("[RESTRIC", "TED]")))+"End.\n")},
		fixture{name: "attach-uuencode-truncated", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true,
			msg: textMsg("attach-uuencode-truncated", "text/plain", "Cut short:\n"+truncatedUU)},
		fixture{name: "attach-uuencode-prose", want: "IN-CONFIDENCE", wantAttach: "IN-CONFIDENCE",
			msg: textMsg("attach-uuencode-prose", "text/plain", "Notes:\nbegin 755 readme.txt\nPlease read the attached file first.\n=ybegin is how yEnc starts\n[IN-CONFIDENCE] Thanks.\n")},
		fixture{name: "attach-uuencode-flowed", want: "UNCLASSIFIED", wantAttach: "CONFIDENTIAL",
			msg: textMsg("attach-uuencode-flowed", "text/plain; charset=utf-8; format=flowed", "Flowed text (Thunderbird); an old encoder writes zero bits as a space,\n"+
				"so a uuencode line may end in one, which is no soft line break:\n"+spaceUU("a.txt", []byte("[CONFIDENTIAL] x"))+"-- \nAlice\n")},
		fixture{name: "attach-yenc", want: "UNCLASSIFIED", wantAttach: "TOP SECRET",
			msg: textMsg("attach-yenc", "text/plain; charset=iso-8859-1", "Posted with yEnc:\n"+yencode("notes.txt", yData)+"Bye.\n")},
		fixture{name: "attach-binhex", want: "UNCLASSIFIED", wantAttach: "CONFIDENTIAL",
			msg: textMsg("attach-binhex", "text/plain", "From a Mac:\n\n"+binhexEncode("memo.txt", []byte("Memo\r---------------------\r[CONFIDENTIAL] \x90 release\r"))+"\n")},
	)
}
