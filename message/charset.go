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
