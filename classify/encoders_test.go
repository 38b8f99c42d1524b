package classify

// Encoders used only by the tests to build fixtures: UTF-7 (RFC 2152),
// compressed RTF ([MS-OXRTFCP] section 3.2, LZFu and MELA) and TNEF
// ([MS-OXTNEF]). They are written from the specifications, independently
// of the decoders they test.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

// utf7Encode encodes s in UTF-7. Characters of RFC 2152 Set D, space, tab,
// CR and LF are written directly; everything else (Set O included, so '['
// and ']' are encoded) goes into base64 shift sequences, each closed with
// an explicit '-'.
func utf7Encode(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	direct := func(r rune) bool {
		return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' ||
			strings.ContainsRune("'(),-./:? \t\r\n", r)
	}
	var out strings.Builder
	var bits uint32
	var nbits uint
	shifted := false
	end := func() {
		if nbits > 0 {
			out.WriteByte(alphabet[bits<<(6-nbits)&0x3F])
		}
		bits, nbits = 0, 0
		out.WriteByte('-')
		shifted = false
	}
	for _, r := range s {
		if direct(r) || r == '+' {
			if shifted {
				end()
			}
			if r == '+' {
				out.WriteString("+-")
			} else {
				out.WriteRune(r)
			}
			continue
		}
		if !shifted {
			out.WriteByte('+')
			shifted = true
		}
		for _, u := range utf16.Encode([]rune{r}) {
			bits = bits<<16 | uint32(u)
			nbits += 16
			for nbits >= 6 {
				nbits -= 6
				out.WriteByte(alphabet[bits>>nbits&0x3F])
			}
			bits &= 1<<nbits - 1
		}
	}
	if shifted {
		end()
	}
	return out.String()
}

// lzfuCompress compresses RTF as [MS-OXRTFCP] section 3.2 describes: for
// each input position, the longest match (at most 17 bytes) in the
// 4096-byte dictionary, searched from the oldest byte; matches may run
// into the bytes being written. The output ends with a reference to the
// write position.
func lzfuCompress(raw []byte) []byte {
	var dict [4096]byte
	copy(dict[:], lzfuPrebuf)
	wpos, size := len(lzfuPrebuf), len(lzfuPrebuf)
	add := func(b byte) {
		dict[wpos] = b
		wpos = (wpos + 1) % 4096
		size = min(size+1, 4096)
	}
	// longest finds the best match for in and adds its bytes (or the
	// literal) to the dictionary, as the specification's algorithm does.
	longest := func(in []byte) (off, n int) {
		final := wpos
		mo := 0
		if size == 4096 {
			mo = (wpos + 1) % 4096
		}
		for {
			limit := min(17, len(in))
			l, d := 0, mo
			for l < limit && dict[d] == in[l] {
				l++
				if l > n {
					add(in[l-1])
				}
				d = (d + 1) % 4096
			}
			if l > n {
				off, n = mo, l
			}
			mo = (mo + 1) % 4096
			if mo == final || n == 17 {
				break
			}
		}
		if n == 0 {
			add(in[0])
		}
		return off, n
	}
	out := make([]byte, lzfuHeaderSize, lzfuHeaderSize+len(raw)+len(raw)/8+4)
	in := 0
	for done := false; !done; {
		var ctrl byte
		var run []byte
		for bit := 0; bit < 8; bit++ {
			if in >= len(raw) {
				ref := uint16(wpos) << 4
				run = append(run, byte(ref>>8), byte(ref))
				ctrl |= 1 << bit
				done = true
				break
			}
			off, n := longest(raw[in:])
			if n >= 2 {
				ref := uint16(off)<<4 | uint16(n-2)
				run = append(run, byte(ref>>8), byte(ref))
				ctrl |= 1 << bit
				in += n
			} else {
				run = append(run, raw[in])
				in++
			}
		}
		out = append(out, ctrl)
		out = append(out, run...)
	}
	binary.LittleEndian.PutUint32(out[0:], uint32(len(out)-4))
	binary.LittleEndian.PutUint32(out[4:], uint32(len(raw)))
	binary.LittleEndian.PutUint32(out[8:], lzfuCompressed)
	binary.LittleEndian.PutUint32(out[12:], lzfuCRC(out[lzfuHeaderSize:]))
	return out
}

// lzfuCRC is the CRC of [MS-OXRTFCP] section 3.1.3.2: the CRC-32 table,
// initial value 0 and no final inversion.
func lzfuCRC(b []byte) uint32 {
	tab := crc32.MakeTable(crc32.IEEE)
	var crc uint32
	for _, c := range b {
		crc = tab[byte(crc)^c] ^ crc>>8
	}
	return crc
}

// lzfuStore wraps raw RTF in the uncompressed "MELA" form.
func lzfuStore(raw []byte) []byte {
	out := make([]byte, lzfuHeaderSize, lzfuHeaderSize+len(raw))
	binary.LittleEndian.PutUint32(out[0:], uint32(len(raw)+12))
	binary.LittleEndian.PutUint32(out[4:], uint32(len(raw)))
	binary.LittleEndian.PutUint32(out[8:], lzfuUncompressed)
	return append(out, raw...)
}

// tnefWriter writes a TNEF stream.
type tnefWriter struct{ b bytes.Buffer }

func newTNEFWriter() *tnefWriter {
	w := &tnefWriter{}
	w.u32(tnefSignature)
	w.u16(0x0001) // legacy key
	return w
}

func (w *tnefWriter) u16(v uint16) { w.b.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func (w *tnefWriter) u32(v uint32) { w.b.Write(binary.LittleEndian.AppendUint32(nil, v)) }

// attr writes one attribute with its checksum.
func (w *tnefWriter) attr(level byte, id uint32, data []byte) {
	w.b.WriteByte(level)
	w.u32(id)
	w.u32(uint32(len(data)))
	w.b.Write(data)
	var sum uint16
	for _, c := range data {
		sum += uint16(c)
	}
	w.u16(sum)
}

// propList builds the data of attMAPIProps or attAttachment.
type propList struct {
	n int
	b bytes.Buffer
}

func (p *propList) u32(v uint32) { p.b.Write(binary.LittleEndian.AppendUint32(nil, v)) }

func (p *propList) pad() {
	for p.b.Len()%4 != 0 {
		p.b.WriteByte(0)
	}
}

// fixed adds a fixed-size property (value padded to 4 bytes).
func (p *propList) fixed(tag uint32, val []byte) {
	p.n++
	p.u32(tag)
	p.b.Write(val)
	p.pad()
}

// variable adds a variable-size (or multi-valued variable-size) property.
func (p *propList) variable(tag uint32, vals ...[]byte) {
	p.n++
	p.u32(tag)
	p.values(vals)
}

func (p *propList) values(vals [][]byte) {
	p.u32(uint32(len(vals)))
	for _, v := range vals {
		p.u32(uint32(len(v)))
		p.b.Write(v)
		p.pad()
	}
}

// mvFixed adds a multi-valued fixed-size property: a count, then each
// value padded to 4 bytes.
func (p *propList) mvFixed(tag uint32, vals ...[]byte) {
	p.n++
	p.u32(tag)
	p.u32(uint32(len(vals)))
	for _, v := range vals {
		p.b.Write(v)
		p.pad()
	}
}

// namedString adds a named property (id >= 0x8000) with a string name.
func (p *propList) namedString(tag uint32, name string, vals ...[]byte) {
	p.n++
	p.u32(tag)
	p.b.Write(bytes.Repeat([]byte{0x42}, 16)) // GUID
	p.u32(1)                                  // MNID_STRING
	n := utf16le(name + "\x00")
	p.u32(uint32(len(n)))
	p.b.Write(n)
	p.pad()
	p.values(vals)
}

// namedID adds a named property with a numeric id and a fixed value.
func (p *propList) namedID(tag, id uint32, val []byte) {
	p.n++
	p.u32(tag)
	p.b.Write(bytes.Repeat([]byte{0x17}, 16))
	p.u32(0) // MNID_ID
	p.u32(id)
	p.b.Write(val)
	p.pad()
}

func (p *propList) bytes() []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(p.n)), p.b.Bytes()...)
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

func utf32le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return b
}

func utf16be(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

// b64Lines encodes b as base64 in CRLF-terminated lines of 76 characters.
func b64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	out.WriteString(s + "\r\n")
	return out.String()
}

// winmail builds a typical Outlook winmail.dat: version, code page,
// message class, the message's MAPI properties (with rtf as
// PR_RTF_COMPRESSED, built by compress), and one attachment whose data
// must not be scanned as the body.
func winmail(rtfProp []byte, extra func(*propList)) []byte {
	w := newTNEFWriter()
	w.attr(1, 0x00089006, []byte{0, 0, 1, 0})                    // attTnefVersion
	w.attr(1, 0x00069007, []byte{0xE4, 0x04, 0, 0, 0, 0, 0, 0})  // attOemCodepage 1252
	w.attr(1, 0x00078008, []byte("IPM.Microsoft Mail.Note\x00")) // attMessageClass
	var p propList
	p.fixed(0x0E070003, []byte{0x01, 0, 0, 0})                               // PR_MESSAGE_FLAGS
	p.fixed(0x00390040, []byte{0, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01}) // PR_CLIENT_SUBMIT_TIME
	p.namedString(0x8001001F, "x-classification-note", utf16le("see body\x00"))
	p.namedID(0x80020003, 0x8503, []byte{1, 0, 0, 0})
	p.mvFixed(0x68001003)                                         // a multi-valued LONG without values
	p.fixed(0x0E1F000B, []byte{1, 0})                             // PR_RTF_IN_SYNC
	p.mvFixed(0x68011003, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}) // a multi-valued LONG
	p.mvFixed(0x68021002, []byte{1, 2})                           // a multi-valued SHORT, padded
	if extra != nil {
		extra(&p)
	}
	p.variable(prRTFCompressed, rtfProp)
	w.attr(1, attMAPIProps, p.bytes())
	// An attachment: skipped by length.
	w.attr(2, 0x00069002, []byte{1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0}) // attAttachRendData
	w.attr(2, 0x00018010, []byte("notes.txt\x00"))                                      // attAttachTitle
	w.attr(2, 0x0006800F, []byte("[TOP SECRET] attachment data, not the body\r\n"))     // attAttachData
	var a propList
	a.variable(0x3707001F, utf16le("notes.txt\x00")) // PR_ATTACH_LONG_FILENAME
	a.variable(0x37010102, []byte("[TOP SECRET] again"))
	w.attr(2, 0x00069005, a.bytes()) // attAttachment
	return w.b.Bytes()
}
