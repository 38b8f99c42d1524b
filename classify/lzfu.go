package classify

import (
	"encoding/binary"
	"hash/crc32"
)

// Compressed RTF ([MS-OXRTFCP]), the form of PR_RTF_COMPRESSED in TNEF.
// A 16-byte header (COMPSIZE, RAWSIZE, COMPTYPE, CRC, little endian) is
// followed by either the RTF itself (COMPTYPE "MELA", CRC 0) or an LZ77
// stream (COMPTYPE "LZFu"): a control byte whose bits, least significant
// first, say whether each of the next 8 items is a literal byte (0) or a
// 2-byte big-endian dictionary reference (1): a 12-bit offset into a
// 4096-byte circular dictionary and a 4-bit length (plus 2). The
// dictionary starts with lzfuPrebuf at offset 0 and the write position at
// its end; a reference to the write position itself ends the stream. The
// CRC (section 3.1.3.2) is CRC-32 without the initial and final inversion
// over the bytes after the header.
const (
	lzfuCompressed   = 0x75465A4C // "LZFu"
	lzfuUncompressed = 0x414C454D // "MELA"
	lzfuHeaderSize   = 16
)

// lzfuPrebuf is the initial dictionary of [MS-OXRTFCP] section 3.1.2.1.
const lzfuPrebuf = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}" +
	"{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript " +
	"\\fdecor MS Sans SerifSymbolArialTimes New RomanCourier" +
	"{\\colortbl\\red0\\green0\\blue0\r\n\\par " +
	"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

// lzfuStage decompresses compressed RTF, streaming, into next.
type lzfuStage struct {
	ctx   *scanCtx
	where string
	next  stage
	out   []byte

	hdr      [lzfuHeaderSize]byte
	nhdr     int
	typ      uint32
	rawSize  uint32
	crc      uint32
	remain   int64  // compressed bytes still expected after the header
	crcState uint32 // crc32.Update state (inverted)
	produced uint32

	dict     [4096]byte
	wpos     int
	ctrl     byte
	bit      int // next bit of ctrl; 8 means a control byte is due
	half     byte
	haveHalf bool
	done     bool // end reference seen, or the stream is unusable
}

func newLZFuStage(ctx *scanCtx, where string, next stage) *lzfuStage {
	z := &lzfuStage{ctx: ctx, where: where, next: next, out: make([]byte, 0, outBufSize), bit: 8, crcState: 0xFFFFFFFF}
	copy(z.dict[:], lzfuPrebuf)
	z.wpos = len(lzfuPrebuf)
	return z
}

func (z *lzfuStage) write(p []byte) {
	if z.nhdr < lzfuHeaderSize {
		n := copy(z.hdr[z.nhdr:], p)
		z.nhdr += n
		p = p[n:]
		if z.nhdr < lzfuHeaderSize {
			return
		}
		z.header()
	}
	if int64(len(p)) > z.remain {
		p = p[:z.remain]
	}
	z.remain -= int64(len(p))
	if z.typ == lzfuCompressed {
		z.crcState = crc32.Update(z.crcState, crc32.IEEETable, p)
	}
	if z.done || len(p) == 0 {
		return
	}
	if z.typ == lzfuUncompressed {
		z.emitRaw(p)
	} else {
		z.inflate(p)
	}
	z.flushOut()
}

func (z *lzfuStage) header() {
	compSize := binary.LittleEndian.Uint32(z.hdr[0:])
	z.rawSize = binary.LittleEndian.Uint32(z.hdr[4:])
	z.typ = binary.LittleEndian.Uint32(z.hdr[8:])
	z.crc = binary.LittleEndian.Uint32(z.hdr[12:])
	// COMPSIZE counts the bytes after itself: 12 header bytes and the data.
	z.remain = int64(compSize) - 12
	if z.remain < 0 {
		z.remain = 0
	}
	switch z.typ {
	case lzfuCompressed:
	case lzfuUncompressed:
		if z.remain > int64(z.rawSize) {
			z.remain = int64(z.rawSize)
		}
	default:
		z.ctx.col.unreadable("%s: compressed RTF of unknown type %#08x, not read", z.where, z.typ)
		z.done = true
	}
}

func (z *lzfuStage) emitRaw(p []byte) {
	for len(p) > 0 {
		if len(z.out) == cap(z.out) {
			z.flushOut()
		}
		n := min(len(p), cap(z.out)-len(z.out))
		z.out = append(z.out, p[:n]...)
		p = p[n:]
	}
}

func (z *lzfuStage) put(b byte) {
	if z.produced >= z.rawSize {
		if z.produced == z.rawSize {
			z.ctx.col.unreadable("%s: compressed RTF longer than its RAWSIZE, the rest not read", z.where)
		}
		z.produced = z.rawSize + 1
		z.done = true
		return
	}
	z.produced++
	z.dict[z.wpos] = b
	z.wpos = (z.wpos + 1) & 0xFFF
	if len(z.out) == cap(z.out) {
		z.flushOut()
	}
	z.out = append(z.out, b)
}

func (z *lzfuStage) inflate(p []byte) {
	for _, c := range p {
		if z.done {
			return
		}
		if z.bit == 8 {
			z.ctrl, z.bit = c, 0
			continue
		}
		if z.ctrl&(1<<z.bit) == 0 {
			z.bit++
			z.put(c)
			continue
		}
		if !z.haveHalf {
			z.half, z.haveHalf = c, true
			continue
		}
		z.haveHalf = false
		z.bit++
		ref := int(z.half)<<8 | int(c)
		off, n := ref>>4, ref&0xF+2
		if off == z.wpos {
			z.done = true
			return
		}
		// Byte by byte: a reference may cross the write position
		// (section 3.1.3.2, example 2).
		for i := 0; i < n && !z.done; i++ {
			z.put(z.dict[(off+i)&0xFFF])
		}
	}
}

func (z *lzfuStage) flushOut() {
	if len(z.out) > 0 {
		z.next.write(z.out)
		z.out = z.out[:0]
	}
}

// close reports a stream that could not be read in full as unreadable
// (issue 11 point 1). A CRC mismatch counts too: Outlook refuses RTF
// whose CRC is wrong ([MS-OXRTFCP] section 3.2) and shows something else
// (the plain-text body or nothing), not what the scanner decompressed.
func (z *lzfuStage) close() {
	switch {
	case z.nhdr < lzfuHeaderSize:
		z.ctx.col.unreadable("%s: compressed RTF truncated in its header", z.where)
	case z.remain > 0:
		z.ctx.col.unreadable("%s: compressed RTF truncated", z.where)
	case z.typ == lzfuCompressed && ^z.crcState != z.crc:
		z.ctx.col.unreadable("%s: compressed RTF CRC mismatch", z.where)
	}
	z.flushOut()
	z.next.close()
}
