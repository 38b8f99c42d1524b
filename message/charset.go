package message

import (
	"errors"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
	"golang.org/x/text/transform"
)

// charsetQuirks are the labels that golang.org/x/text's indexes do not
// read as mail needs: US-ASCII and its aliases (RFC 2046 section 4.1.2;
// the indexes give no encoder that refuses 8-bit bytes), the UTF-8
// spellings, utf-16 which honours a byte order mark and defaults to big
// endian (RFC 2781 section 4.3; a BOM is also honoured for utf-16le/be,
// where it is strong evidence), UTF-32 likewise, and UTF-7 (RFC 2152),
// which R33 names and the indexes lack.
var charsetQuirks = map[string]encoding.Encoding{
	"":                  ASCII, // RFC 2045 section 5.2: no charset is us-ascii
	"us-ascii":          ASCII,
	"ascii":             ASCII,
	"ansi_x3.4-1968":    ASCII,
	"iso646-us":         ASCII,
	"us":                ASCII,
	"cp367":             ASCII,
	"ibm367":            ASCII,
	"csascii":           ASCII,
	"utf-8":             unicode.UTF8,
	"utf8":              unicode.UTF8,
	"x-utf_8j":          unicode.UTF8,
	"ansi_x3.110-1983":  charmap.ISO8859_1,
	"utf-16":            unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16be":          unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16le":          unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"unicode":           unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"ucs-2":             unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-32":            utf32.UTF32(utf32.BigEndian, utf32.UseBOM),
	"utf-32be":          utf32.UTF32(utf32.BigEndian, utf32.UseBOM),
	"utf-32le":          utf32.UTF32(utf32.LittleEndian, utf32.UseBOM),
	"utf-7":             UTF7,
	"utf7":              UTF7,
	"unicode-1-1-utf-7": UTF7,
	"csunicode11utf7":   UTF7,
	"x-unicode20utf7":   UTF7,
}

// LookupCharset returns the encoding a MIME charset label names (RFC 2046
// section 4.1.2, RFC 2047, RFC 2231): the quirks above, then the IANA
// registry's MIME names, its other names, the "cs" aliases and last the
// WHATWG index (what mail clients accept), so that the scanner and the
// warning rewriter read every part alike. The label is compared without
// case, surrounding white space or quotes. ok is false for an unknown
// label; enc is never nil when ok is true. US-ASCII is ASCII and UTF-8 is
// unicode.UTF8, so a caller can tell both apart from the others.
func LookupCharset(label string) (enc encoding.Encoding, ok bool) {
	name := strings.ToLower(strings.Trim(label, " \t\"'"))
	if e, found := charsetQuirks[name]; found {
		return e, true
	}
	for _, try := range []func() (encoding.Encoding, error){
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding(name) },
		func() (encoding.Encoding, error) { return ianaindex.IANA.Encoding(name) },
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding("cs" + name) },
		func() (encoding.Encoding, error) { return htmlindex.Get(name) },
	} {
		if e, err := try(); err == nil && e != nil {
			return e, true
		}
	}
	return nil, false
}

// ASCII is US-ASCII. Its encoder refuses anything above 0x7F, so text that
// does not fit is noticed; its decoder reads 8-bit bytes as Windows-1252,
// as the WHATWG Encoding Standard reads the us-ascii label (a part
// labelled ASCII that has such bytes was written by a client that meant
// its own 8-bit charset).
var ASCII encoding.Encoding = asciiEnc{}

type asciiEnc struct{}

func (asciiEnc) NewDecoder() *encoding.Decoder { return charmap.Windows1252.NewDecoder() }
func (asciiEnc) NewEncoder() *encoding.Encoder { return &encoding.Encoder{Transformer: asciiOnly{}} }
func (asciiEnc) String() string                { return "US-ASCII" }

// asciiOnly passes ASCII through and refuses anything else.
type asciiOnly struct{ transform.NopResetter }

func (asciiOnly) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if src[nSrc] >= 0x80 {
			return nDst, nSrc, ErrNotASCII
		}
		if nDst >= len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		dst[nDst] = src[nSrc]
		nDst++
		nSrc++
	}
	return nDst, nSrc, nil
}

// ErrNotASCII is returned by ASCII's encoder for a byte above 0x7F.
var ErrNotASCII = errors.New("not representable in US-ASCII")

// UnmarkedWidth is 2 for the labels utf-16 and ucs-2 and 4 for utf-32 (in
// any case, blanks and quotes around them), whose byte order a byte order
// mark gives, and else 0. Without a mark RFC 2781 makes them big-endian,
// but Windows and the WHATWG Encoding Standard, and so mail clients, read
// them little-endian: SniffByteOrder decides.
func UnmarkedWidth(label string) int {
	switch strings.ToLower(strings.Trim(label, " \t\"'")) {
	case "utf-16", "ucs-2":
		return 2
	case "utf-32":
		return 4
	}
	return 0
}

// SniffByteOrder returns the decoder for UTF-16 (width 2) or UTF-32
// (width 4) text b in the byte order it shows: a byte order mark decides
// (RFC 2781 section 3.2); without one, the zero bytes where the high bytes
// of ASCII and Latin text would be. Text that shows neither (CJK
// throughout, or nothing) gets little-endian, as mail clients read it,
// and evident false; an empty b is evident (nothing to misread).
func SniffByteOrder(width int, b []byte) (enc encoding.Encoding, evident bool) {
	le16, be16 := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	le, be := le16, be16
	if width == 4 {
		le, be = utf32.UTF32(utf32.LittleEndian, utf32.UseBOM), utf32.UTF32(utf32.BigEndian, utf32.UseBOM)
	}
	switch {
	case width == 4 && len(b) >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0:
		return le, true
	case width == 4 && len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF:
		return be, true
	case width == 2 && len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		return le, true
	case width == 2 && len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		return be, true
	}
	n := len(b) - len(b)%width
	if n == 0 {
		return le, true
	}
	var hiBE, hiLE int // zero bytes where a big- or little-endian high byte would be
	for i := 0; i < n; i += width {
		if b[i] == 0 {
			hiBE++
		}
		if b[i+width-1] == 0 {
			hiLE++
		}
	}
	switch {
	case hiLE > hiBE:
		return le, true
	case hiBE > hiLE:
		return be, true
	}
	return le, false
}
