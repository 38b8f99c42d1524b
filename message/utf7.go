package message

import (
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// UTF7 is the UTF-7 encoding of RFC 2152 (decoding only; encoding returns
// an error). R33 names UTF-7 explicitly: Outlook and older clients send
// bodies and encoded words (RFC 2047) in it.
var UTF7 encoding.Encoding = utf7Encoding{}

type utf7Encoding struct{}

func (utf7Encoding) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: &utf7Decoder{}}
}

func (utf7Encoding) NewEncoder() *encoding.Encoder {
	return &encoding.Encoder{Transformer: utf7NoEncoder{}}
}

func (utf7Encoding) String() string { return "UTF-7" }

type utf7NoEncoder struct{ transform.NopResetter }

func (utf7NoEncoder) Transform(dst, src []byte, atEOF bool) (int, int, error) {
	if len(src) == 0 {
		return 0, 0, nil
	}
	return 0, 0, errUTF7Encode
}

var errUTF7Encode = transformError("message: UTF-7 encoding is not supported")

type transformError string

func (e transformError) Error() string { return string(e) }

// utf7Base64 maps the RFC 2152 "Set B" (the base64 alphabet of RFC 2045
// without '=') to its 6-bit values; 0xFF elsewhere.
var utf7Base64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// utf7Decoder is a streaming RFC 2152 decoder. State: whether a '+' shift
// sequence is open, the pending bits, and a pending high surrogate.
type utf7Decoder struct {
	shifted bool
	fresh   bool // just after '+': "+-" is a literal '+'
	bits    uint32
	nbits   uint
	high    rune // pending high surrogate, or 0
}

func (d *utf7Decoder) Reset() { *d = utf7Decoder{} }

// Transform decodes UTF-7 into UTF-8. Ill-formed input (bytes above 0x7F,
// unpaired surrogates) decodes to U+FFFD; it never fails.
func (d *utf7Decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		// The most one input byte produces is a U+FFFD for an unpaired
		// surrogate plus a 4-byte rune.
		if len(dst)-nDst < 8 {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		nSrc++
		if !d.shifted {
			switch {
			case c == '+':
				d.shifted, d.fresh, d.bits, d.nbits = true, true, 0, 0
			case c < utf8.RuneSelf:
				dst[nDst] = c
				nDst++
			default:
				nDst += utf8.EncodeRune(dst[nDst:], utf8.RuneError)
			}
			continue
		}
		if v := utf7Base64[c]; v != 0xFF {
			d.fresh = false
			d.bits = d.bits<<6 | uint32(v)
			d.nbits += 6
			if d.nbits >= 16 {
				d.nbits -= 16
				unit := rune(d.bits >> d.nbits & 0xFFFF)
				d.bits &= 1<<d.nbits - 1
				nDst += d.unit(dst[nDst:], unit)
			}
			continue
		}
		// Any other character ends the shift sequence; a '-' is absorbed
		// (and "+-" is '+').
		fresh := d.fresh
		d.shifted, d.fresh, d.bits, d.nbits = false, false, 0, 0
		nDst += d.flushHigh(dst[nDst:])
		if c == '-' {
			if fresh {
				dst[nDst] = '+'
				nDst++
			}
			continue
		}
		nSrc-- // reprocess c as a direct character
	}
	if atEOF {
		if len(dst)-nDst < 3 && d.high != 0 {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += d.flushHigh(dst[nDst:])
		d.shifted, d.fresh, d.bits, d.nbits = false, false, 0, 0
	}
	return nDst, nSrc, nil
}

// unit handles one decoded UTF-16 code unit.
func (d *utf7Decoder) unit(dst []byte, u rune) int {
	switch {
	case utf16.IsSurrogate(u) && u < 0xDC00: // high
		n := d.flushHigh(dst)
		d.high = u
		return n
	case utf16.IsSurrogate(u): // low
		if d.high == 0 {
			return utf8.EncodeRune(dst, utf8.RuneError)
		}
		r := utf16.DecodeRune(d.high, u)
		d.high = 0
		return utf8.EncodeRune(dst, r)
	default:
		n := d.flushHigh(dst)
		return n + utf8.EncodeRune(dst[n:], u)
	}
}

func (d *utf7Decoder) flushHigh(dst []byte) int {
	if d.high == 0 {
		return 0
	}
	d.high = 0
	return utf8.EncodeRune(dst, utf8.RuneError)
}
