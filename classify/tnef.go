package classify

import (
	"encoding/binary"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// TNEF ([MS-OXTNEF]), Outlook's application/ms-tnef body (winmail.dat).
// The stream is a 4-byte signature and a 2-byte key, then attributes:
// level (1 byte), attribute id (4: type in the high word), length (4),
// data, and a checksum (2: the sum of the data bytes). The message text
// is in attBody, or among the MAPI properties of attMAPIProps: PR_BODY
// (8-bit or UTF-16LE), PR_HTML, and most often PR_RTF_COMPRESSED, which
// is compressed RTF (lzfu.go). All little endian. Everything is parsed
// streaming; other attributes (attachments) are skipped by length.
const (
	tnefSignature   = 0x223E9F78
	tnefLevelMsg    = 0x01
	attBody         = 0x0002800C
	attMAPIProps    = 0x00069003
	prBodyA         = 0x1000001E
	prBodyW         = 0x1000001F
	prRTFCompressed = 0x10090102
	prHTML          = 0x10130102
)

const (
	tnSig = iota
	tnAttrHdr
	tnAttrData
	tnChecksum
	tnDead
)

// tnefStage parses a TNEF stream.
type tnefStage struct {
	ctx   *scanCtx
	where string

	st   int
	buf  [24]byte // a fixed-size field being assembled
	nbuf int

	level  byte
	id     uint32
	remain uint32 // data bytes left in this attribute
	sum    uint16
	sink   stage      // attBody text
	props  *mapiProps // attMAPIProps parser
	badSum bool
}

func newTNEFStage(ctx *scanCtx, where string) *tnefStage {
	return &tnefStage{ctx: ctx, where: where}
}

// fill assembles an n-byte field from p; it returns the rest of p and
// whether the field is complete.
func fill(buf []byte, have *int, n int, p []byte) ([]byte, bool) {
	k := copy(buf[*have:n], p)
	*have += k
	return p[k:], *have == n
}

func (t *tnefStage) write(p []byte) {
	for len(p) > 0 {
		var ok bool
		switch t.st {
		case tnSig:
			if p, ok = fill(t.buf[:], &t.nbuf, 6, p); ok {
				t.nbuf = 0
				if binary.LittleEndian.Uint32(t.buf[:]) != tnefSignature {
					t.ctx.col.unreadable("%s: not a TNEF stream (bad signature), not readable", t.where)
					t.st = tnDead
					continue
				}
				t.st = tnAttrHdr
			}
		case tnAttrHdr:
			if p, ok = fill(t.buf[:], &t.nbuf, 9, p); ok {
				t.nbuf = 0
				t.level = t.buf[0]
				t.id = binary.LittleEndian.Uint32(t.buf[1:])
				t.remain = binary.LittleEndian.Uint32(t.buf[5:])
				t.sum = 0
				t.startAttr()
				t.st = tnAttrData
				if t.remain == 0 {
					t.endAttr()
				}
			}
		case tnAttrData:
			n := min(uint32(len(p)), t.remain)
			data := p[:n]
			p = p[n:]
			for _, c := range data {
				t.sum += uint16(c)
			}
			switch {
			case t.props != nil:
				t.props.write(data)
			case t.sink != nil:
				t.sink.write(data)
			}
			t.remain -= n
			if t.remain == 0 {
				t.endAttr()
			}
		case tnChecksum:
			if p, ok = fill(t.buf[:], &t.nbuf, 2, p); ok {
				t.nbuf = 0
				// A wrong checksum stays readable: every byte of the
				// attribute was read all the same.
				if binary.LittleEndian.Uint16(t.buf[:]) != t.sum && !t.badSum {
					t.badSum = true
					t.ctx.col.problem("%s: TNEF checksum mismatch", t.where)
				}
				t.st = tnAttrHdr
			}
		case tnDead:
			return
		}
	}
}

func (t *tnefStage) startAttr() {
	if t.level != tnefLevelMsg {
		return
	}
	switch t.id {
	case attBody:
		t.sink = newTransformStage(charmap.Windows1252.NewDecoder(), newMatcher(t.ctx, t.where+" text"))
	case attMAPIProps:
		t.props = newMAPIProps(t.ctx, t.where)
	}
}

func (t *tnefStage) endAttr() {
	if t.sink != nil {
		t.sink.close()
		t.sink = nil
	}
	if t.props != nil {
		t.props.close()
		t.props = nil
	}
	t.st = tnChecksum
}

func (t *tnefStage) close() {
	if t.st != tnAttrHdr || t.nbuf != 0 {
		if t.st != tnDead {
			t.ctx.col.unreadable("%s: TNEF stream truncated", t.where)
		}
		if t.sink != nil {
			t.sink.close()
			t.sink = nil
		}
		if t.props != nil {
			t.props.close()
			t.props = nil
		}
	}
	t.st = tnDead
}

// mapiProps parses the property list of attMAPIProps, streaming:
// a count, then for each property a tag (type in the low word, id in the
// high word), for a named property (id >= 0x8000) a GUID, a kind and an
// id or a UTF-16 name, and the value(s). Variable-size types (strings,
// binary, object) and multi-valued types carry a count of values; each
// variable-size value has a length and is padded to 4 bytes. Fixed-size
// values are padded to 4 bytes too.
type mapiProps struct {
	ctx   *scanCtx
	where string

	st   int
	buf  [24]byte
	nbuf int

	left   uint32 // properties left
	tag    uint32
	values uint32 // values left in this property
	fixed  int    // size of a fixed value, 0 for variable size
	skip   uint32 // bytes to skip (name, padding, unused data)
	data   uint32 // value bytes left
	pad    uint32 // padding after the value
	sink   stage
	broken bool
}

const (
	mpCount = iota
	mpTag
	mpNameHead // GUID + kind
	mpNameID
	mpNameLen
	mpSkip // then mpValues
	mpValueCount
	mpValues // dispatch the next value
	mpValueLen
	mpValueData
	mpPad
	mpDone
)

func newMAPIProps(ctx *scanCtx, where string) *mapiProps {
	return &mapiProps{ctx: ctx, where: where}
}

// fixedSize returns the encoded size of a fixed-size MAPI type, 0 for a
// variable-size type, -1 for an unknown type.
func fixedSize(typ uint32) int {
	switch typ &^ 0x1000 { // the multi-value flag
	case 0x0002, 0x0003, 0x0004, 0x000A, 0x000B: // I2, LONG, R4, ERROR, BOOLEAN
		return 4
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // DOUBLE, CURRENCY, APPTIME, I8, SYSTIME
		return 8
	case 0x0048: // CLSID
		return 16
	case 0x000D, 0x001E, 0x001F, 0x0102, 0x00FB, 0x00FD, 0x00FE: // OBJECT, STRING8, UNICODE, BINARY, SVREID, SRESTRICT, ACTIONS
		return 0
	}
	return -1
}

func (m *mapiProps) write(p []byte) {
	for len(p) > 0 {
		var ok bool
		switch m.st {
		case mpCount:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				m.left = binary.LittleEndian.Uint32(m.buf[:])
				m.next()
			}
		case mpTag:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				m.tag = binary.LittleEndian.Uint32(m.buf[:])
				m.fixed = fixedSize(m.tag & 0xFFFF)
				if m.fixed < 0 {
					m.fail("unknown MAPI property type %#04x", m.tag&0xFFFF)
					continue
				}
				if m.tag>>16 >= 0x8000 {
					m.st = mpNameHead
				} else {
					m.startValues()
				}
			}
		case mpNameHead:
			if p, ok = fill(m.buf[:], &m.nbuf, 20, p); ok {
				m.nbuf = 0
				if binary.LittleEndian.Uint32(m.buf[16:]) == 0 {
					m.st = mpNameID
				} else {
					m.st = mpNameLen
				}
			}
		case mpNameID:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				m.startValues()
			}
		case mpNameLen:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				n := binary.LittleEndian.Uint32(m.buf[:])
				m.skip = n + pad4(n)
				switch {
				case m.skip < n:
					m.fail("MAPI property name too long")
				case m.skip == 0:
					m.startValues()
				default:
					m.st = mpSkip
				}
			}
		case mpSkip:
			n := min(uint32(len(p)), m.skip)
			p = p[n:]
			m.skip -= n
			if m.skip == 0 {
				m.startValues()
			}
		case mpValueCount:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				m.values = binary.LittleEndian.Uint32(m.buf[:])
				m.st = mpValues
				m.nextValue()
			}
		case mpValueLen:
			if p, ok = fill(m.buf[:], &m.nbuf, 4, p); ok {
				m.nbuf = 0
				m.data = binary.LittleEndian.Uint32(m.buf[:])
				m.pad = pad4(m.data)
				m.sink = m.valueSink()
				m.st = mpValueData
				if m.data == 0 {
					m.endValue()
				}
			}
		case mpValueData:
			n := min(uint32(len(p)), m.data)
			if m.sink != nil {
				m.sink.write(p[:n])
			}
			p = p[n:]
			m.data -= n
			if m.data == 0 {
				m.endValue()
			}
		case mpPad:
			n := min(uint32(len(p)), m.pad)
			p = p[n:]
			m.pad -= n
			if m.pad == 0 {
				m.st = mpValues
				m.nextValue()
			}
		case mpValues:
			m.nextValue()
		case mpDone:
			return
		}
	}
}

func pad4(n uint32) uint32 { return (4 - n%4) % 4 }

func (m *mapiProps) fail(format string, args ...any) {
	m.ctx.col.unreadable(m.where+": TNEF: "+format+", the rest not read", args...)
	m.broken = true
	m.st = mpDone
}

// next starts the next property, or ends the list.
func (m *mapiProps) next() {
	if m.left == 0 {
		m.st = mpDone
		return
	}
	m.left--
	m.st = mpTag
}

// startValues begins the value(s) of the current property.
func (m *mapiProps) startValues() {
	if m.fixed == 0 || m.tag&0x1000 != 0 {
		m.st = mpValueCount
		return
	}
	m.values = 1
	m.st = mpValues
	m.nextValue()
}

// nextValue dispatches the next value of the current property.
func (m *mapiProps) nextValue() {
	if m.values == 0 {
		m.next()
		return
	}
	m.values--
	if m.fixed > 0 { // skipped like padding; then the next value
		m.st, m.pad = mpPad, uint32(m.fixed)
		return
	}
	m.st = mpValueLen
}

// valueSink returns where the current value's data goes.
func (m *mapiProps) valueSink() stage {
	if m.tag&0x1000 != 0 {
		return nil
	}
	switch m.tag {
	case prRTFCompressed:
		return newLZFuStage(m.ctx, m.where+" rtf", newRTFText(newMatcher(m.ctx, m.where+" rtf")))
	case prBodyA:
		return newTransformStage(charmap.Windows1252.NewDecoder(), newMatcher(m.ctx, m.where+" text"))
	case prBodyW:
		return newTransformStage(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder(), newMatcher(m.ctx, m.where+" text"))
	case prHTML:
		return newHTMLText(newMatcher(m.ctx, m.where+" html"))
	}
	return nil
}

func (m *mapiProps) endValue() {
	if m.sink != nil {
		m.sink.close()
		m.sink = nil
	}
	if m.pad > 0 {
		m.st = mpPad
		return
	}
	m.st = mpValues
	m.nextValue()
}

func (m *mapiProps) close() {
	if m.sink != nil {
		m.sink.close()
		m.sink = nil
	}
	if m.st != mpDone && !m.broken {
		m.ctx.col.unreadable("%s: TNEF property list truncated", m.where)
	}
	m.st = mpDone
}
