package message

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestDecodeQP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"[SEC=\r\nRET]", "[SECRET]"},        // soft line break inside a word
		{"soft=  \r\nbreak", "softbreak"},    // transport padding before the break
		{"bare=\nLF", "bareLF"},              // LF line ends
		{"lone=\rCR", "loneCR"},              // a lone CR is a line break
		{"=5BTOP SECRET=5d", "[TOP SECRET]"}, // either case
		{"caf=E9\r\n", "caf\xe9\r\n"},        // hard line breaks kept
		{"bad=ZZ =3", "bad=ZZ =3"},           // malformed escapes literal
		{"a= \tx", "a= \tx"},                 // "= x" is not a break; its blanks kept
		{"end=", "end"},                      // a trailing "=" is a soft break
		{"trailing  \r\n", "trailing  \r\n"}, // text as it is (notify deletes padding first)
		{"==41", "=A"},                       // "=" then an escape
	} {
		if got := string(DecodeQP([]byte(c.in))); got != c.want {
			t.Errorf("DecodeQP(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestQPDecoderReportsMalformed(t *testing.T) {
	var out bytes.Buffer
	var at []int // output length at each report
	d := NewQPDecoder(func(p []byte) { out.Write(p) }, func() { at = append(at, out.Len()) })
	d.Write([]byte("ok =ZZ x=4"))
	d.Write([]byte("g"))
	d.Close()
	if out.String() != "ok =ZZ x=4g" {
		t.Fatalf("decoded %q", out.String())
	}
	// Each report comes after the text decoded before the fault.
	if len(at) != 2 || at[0] != 3 || at[1] != 8 {
		t.Errorf("reports at %v, want [3 8]", at)
	}
}

func TestDecodeBase64(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct{ in, want string }{
		{enc("[SECRET] text"), "[SECRET] text"},
		{enc("[SEC") + "\r\n" + enc("RET]"), "[SECRET]"},          // encodings back to back resume after "="
		{"W1NF Q1JF\r\nVF0=\r\n", "[SECRET]"},                     // white space ignored
		{"W1NFQ1JFVF0", "[SECRET]"},                               // no padding
		{"W1NFQ1JFVF0=trailing", "[SECRET]\xb6\xb6\xa2\x96)\xe0"}, // data after the padding decoded
	} {
		if got := string(DecodeBase64([]byte(c.in))); got != c.want {
			t.Errorf("DecodeBase64(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	var out bytes.Buffer
	junk := 0
	d := NewBase64Decoder(func(p []byte) { out.Write(p) }, func() { junk++ })
	d.Write([]byte("W1NF!!Q1JF\r\nVF0=\r\n!"))
	d.Close()
	if out.String() != "[SECRET]" || junk != 1 {
		t.Errorf("junk: %q, %d reports, want [SECRET] and 1", out.String(), junk)
	}
}

// FuzzTransferDecoders: streamed in chunks of any size, both decoders give
// what they give in one write, and nothing panics.
func FuzzTransferDecoders(f *testing.F) {
	f.Add([]byte("[SEC=\r\nRET] =5b =ZZ = \tx end="), uint8(1))
	f.Add([]byte("W1NF!!Q1JF\r\nVF0=\r\nW1JTVlBEUl0="), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		if len(in) > 1<<16 {
			return
		}
		n := int(chunk%64) + 1
		stream := func(w func([]byte), c func()) {
			for p := in; len(p) > 0; {
				k := min(n, len(p))
				w(p[:k])
				p = p[k:]
			}
			c()
		}
		var qp bytes.Buffer
		q := NewQPDecoder(func(p []byte) { qp.Write(p) }, nil)
		stream(q.Write, q.Close)
		if want := DecodeQP(in); !bytes.Equal(qp.Bytes(), want) {
			t.Fatalf("QP in chunks of %d: %q, in one write: %q", n, qp.Bytes(), want)
		}
		var b64 bytes.Buffer
		b := NewBase64Decoder(func(p []byte) { b64.Write(p) }, nil)
		stream(b.Write, b.Close)
		if want := DecodeBase64(in); !bytes.Equal(b64.Bytes(), want) {
			t.Fatalf("base64 in chunks of %d: %q, in one write: %q", n, b64.Bytes(), want)
		}
	})
}

// Content-Transfer-Encoding as mail clients read it: a comment or a
// trailing parameter does not make base64 unknown (the scanner would then
// read the undecoded text, and miss what the reader sees).
func TestTransferEncoding(t *testing.T) {
	for _, c := range []struct {
		in, mech string
		exact    bool
	}{
		{"base64", "base64", true},
		{" BASE64 ", "base64", true},
		{"Quoted-Printable", "quoted-printable", true},
		{"base64 (yes)", "base64", false},
		{"(enc) base64", "base64", false},
		{"base64 (nested (comment))", "base64", false},
		{"base64; x=y", "base64", false},
		{"base64;", "base64", false},
		{"quoted-printable\r\n (folded)", "quoted-printable", false},
		{"8bit junk", "8bit", false},
		{"base64 (unclosed", "base64", false},
		{"", "", true},
		{"(only a comment)", "", false},
		{"x-uuencode", "x-uuencode", true},
	} {
		mech, exact := TransferEncoding(c.in)
		if mech != c.mech || exact != c.exact {
			t.Errorf("TransferEncoding(%q) = %q, %v; want %q, %v", c.in, mech, exact, c.mech, c.exact)
		}
	}
}
