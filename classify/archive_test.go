package classify

import (
	"bytes"
	"strings"
	"testing"
)

func attachCtx(t testing.TB) *scanCtx {
	ctx := testCtx(t)
	ctx.opts.ScanAttachments = true
	return ctx
}

// scanArchive runs an archive stage over data, in chunks of size (0: one
// write), and returns the result.
func scanArchive(t testing.TB, data []byte, size int) Result {
	ctx := attachCtx(t)
	a := newArchiveStage(ctx, "a.zip")
	if size <= 0 {
		a.write(data)
	} else {
		for p := data; len(p) > 0; {
			n := min(len(p), size)
			a.write(p[:n])
			p = p[n:]
		}
	}
	a.close()
	if ctx.arc.buffered != 0 || ctx.arc.nest != 0 {
		t.Fatalf("archive state not restored: %+v", ctx.arc)
	}
	return ctx.col.result()
}

func TestBinHexTables(t *testing.T) {
	if len(binhexAlphabet) != 64 {
		t.Fatalf("BinHex alphabet has %d characters", len(binhexAlphabet))
	}
	// The check value of CRC-16/XMODEM (the catalogue of parametrised CRC
	// algorithms; Python's binascii.crc_hqx(b"123456789", 0)).
	if got := crcXMODEM(0, []byte("123456789")); got != 0x31C3 {
		t.Fatalf("crcXMODEM = %#x, want 0x31c3", got)
	}
}

func TestUUDecodeLine(t *testing.T) {
	// "Cat" in the example of POSIX uuencode: "#0V%T".
	got, ok := uuDecodeLine([]byte("#0V%T"), nil)
	if !ok || string(got) != "Cat" {
		t.Fatalf("got %q %v", got, ok)
	}
	// Trailing spaces stripped in transit decode as zero bits.
	got, ok = uuDecodeLine([]byte("\"0V$"), nil)
	if !ok || string(got) != "Ca" {
		t.Fatalf("stripped: got %q %v", got, ok)
	}
	for _, bad := range []string{"", "hello world", "M" + strings.Repeat("a", 60), "#0V"} {
		if _, ok := uuDecodeLine([]byte(bad), nil); ok {
			t.Errorf("%q decoded as uuencode", bad)
		}
	}
}

// TestInlinePassThrough: the text around and inside a block reaches the
// text path unchanged, whatever the chunking.
func TestInlinePassThrough(t *testing.T) {
	in := "a\r\nbegin 644 x.txt\r\n" + strings.ReplaceAll(uuencode("x.txt", []byte("[SECRET]")), "\n", "\r\n")[len("begin 644 x.txt\n")+1:] + "tail [IN-CONFIDENCE]"
	for _, size := range []int{1, 2, 5, 1000} {
		ctx := attachCtx(t)
		var out collect
		s := newInlineStage(ctx, "body", &out)
		feed(s, []byte(in), size)
		if out.b.String() != in || !out.closed {
			t.Fatalf("size %d: text changed:\n%q\n%q", size, out.b.String(), in)
		}
		res := ctx.col.result()
		if len(res.Markings) != 1 || res.Markings[0].Word != "SECRET" || res.Markings[0].Where != "body / attachment x.txt" || !res.Readable() {
			t.Fatalf("size %d: %+v", size, res)
		}
	}
}

func TestArchiveLimits(t *testing.T) {
	for _, tc := range []struct {
		name, why string
		data      []byte
		want      string
	}{
		{"bomb", "compression ratio", zipBomb(), ""},
		{"entries", "more than 2000 entries", manyEntries(), ""},
		{"declared size", "decompresses to more than", declaredHuge(), ""},
		{"corrupt", "not a readable zip", []byte("PK\x03\x04 not really"), ""},
		{"empty", "not a readable zip", nil, ""},
		{"nested", "nested deeper than 3", nestedZips(4, func(i int) string { return "[RESTRICTED]" }), "RESTRICTED"},
		{"encrypted", "encrypted", mkzip(zentry{name: "x.txt", body: "[SECRET]", flags: 1}), ""},
		{"corrupt deflate", "corrupt data", func() []byte {
			z := mkzip(zentry{name: "x.txt", body: strings.Repeat("[SECRET] ", 1000), deflate: true})
			i := bytes.Index(z, []byte("x.txt")) + 5 + 20 // inside the deflate stream
			z[i] ^= 0xFF
			z[i+1] ^= 0xFF
			return z
		}(), ""},
	} {
		res := scanArchive(t, tc.data, 0)
		if res.Readable() || !strings.Contains(strings.Join(res.Unreadable, "|"), tc.why) {
			t.Errorf("%s: unreadable %q, want %q", tc.name, res.Unreadable, tc.why)
		}
		if tc.want != "" && res.Classification != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, res.Classification, tc.want)
		}
	}
}

// TestArchiveBuffered: an archive over MaxArchiveSize is unreadable, and
// its buffer is released.
func TestArchiveBuffered(t *testing.T) {
	ctx := attachCtx(t)
	a := newArchiveStage(ctx, "big.zip")
	chunk := make([]byte, 1<<20)
	for i := 0; i <= MaxArchiveSize>>20; i++ {
		a.write(chunk)
	}
	if a.buf != nil || ctx.arc.buffered != 0 {
		t.Fatalf("buffer kept: %d bytes", ctx.arc.buffered)
	}
	a.close()
	res := ctx.col.result()
	if res.Readable() || !strings.Contains(res.Unreadable[0], "archive larger than") {
		t.Fatalf("%+v", res)
	}
}

// TestUnpackedBudget: the unpacking budget of a message is shared by its
// archives; past it, what is left is unreadable.
func TestUnpackedBudget(t *testing.T) {
	ctx := attachCtx(t)
	ctx.arc.unpacked = MaxUnpackedTotal - 10
	a := newArchiveStage(ctx, "a.zip")
	a.write(mkzip(zentry{name: "x.txt", body: strings.Repeat("x", 100) + "[SECRET]"}))
	a.close()
	res := ctx.col.result()
	if res.Readable() || !strings.Contains(res.Unreadable[0], "unpack to more than") {
		t.Fatalf("%+v", res)
	}
}

func TestXMLTextEncoding(t *testing.T) {
	part := "<?xml version=\"1.0\" encoding=\"windows-1252\"?><w:document " + nsW + "><w:body>" + wp("caf\xe9 [SECRET]") + "</w:body></w:document>"
	res := scanArchive(t, mkzip(zentry{name: "[Content_Types].xml", body: "<Types/>"}, zentry{name: "word/document.xml", body: part}), 0)
	if res.Classification != "SECRET" || !res.Readable() {
		t.Fatalf("%+v", res)
	}
	part = strings.Replace(part, "windows-1252", "x-bogus", 1)
	res = scanArchive(t, mkzip(zentry{name: "[Content_Types].xml", body: "<Types/>"}, zentry{name: "word/document.xml", body: part}), 0)
	if res.Readable() || !strings.Contains(res.Unreadable[0], "x-bogus") {
		t.Fatalf("%+v", res)
	}
}

func TestXMLTextUnreadable(t *testing.T) {
	res := scanArchive(t, docx("t", `<w:p><w:r><w:t>[SECRET]</w:t></w:r></w:p><w:p><w:t>&bogus;</w:t>`), 0)
	if res.Classification != "SECRET" || res.Readable() || !strings.Contains(res.Unreadable[0], "word/document.xml") {
		t.Fatalf("%+v", res)
	}
}

func TestInlineBlocks(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
		unreadable       bool
	}{
		{"uuencode", uuencode("a.txt", []byte("[SECRET]")), "SECRET", false},
		{"uuencode no end", strings.TrimSuffix(uuencode("a.txt", []byte("[SECRET]")), "end\n"), "SECRET", false},
		{"uuencode bad line", "begin 644 a.txt\n" + strings.SplitN(uuencode("a.txt", []byte(strings.Repeat("x", 50)+"[SECRET]")), "\n", 3)[1] + "\nnot uuencode\n", "", true},
		{"base64", "begin-base64 644 a.html\nPGI+W1NFQ1JFVF08L2I+\n====\n", "SECRET", false},
		{"base64 cut", "begin-base64 644 a.html\nPGI+W1NFQ1JFVF08L2I+\n", "SECRET", true},
		{"yEnc", yencode("a.txt", []byte("[TOP SECRET]")), "TOP SECRET", false},
		{"yEnc cut", strings.SplitN(yencode("a.txt", []byte(strings.Repeat("y", 70)+"[TOP SECRET]")), "\n", 3)[0] + "\n" + strings.SplitN(yencode("a.txt", []byte(strings.Repeat("y", 70)+"[TOP SECRET]")), "\n", 3)[1] + "\n", "", true},
		{"yEnc short", strings.Replace(yencode("a.txt", []byte("[TOP SECRET]")), "=yend size=12", "=yend size=99", 1), "TOP SECRET", true},
		{"BinHex", binhexEncode("a.rtf", []byte(`{\rtf1 \'5bSECRET\'5d}`)), "SECRET", false},
		{"BinHex cut in header", binhexEncode("a.txt", []byte("[SECRET]"))[:60] + "\n", "", true},
		{"BinHex cut in data", binhexEncode("a.txt", []byte(strings.Repeat("abcdefghij", 10)+"[SECRET]"))[:140] + "\n", "", true},
		{"BinHex bad character", func() string {
			enc := binhexEncode("a.txt", []byte(strings.Repeat("abcdefghij", 10)+"[SECRET]"))
			i := strings.Index(enc, ":") + 60
			return enc[:i] + "~" + enc[i:]
		}(), "", true},
		{"BinHex image", binhexEncode("a.png", []byte("[SECRET]")), "", false},
		{"uuencode image", uuencode("a.gif", []byte("[SECRET]")), "", false},
	} {
		ctx := attachCtx(t)
		s := newInlineStage(ctx, "body", discard{})
		feed(s, []byte(tc.text), 7)
		res := ctx.col.result()
		want := tc.want
		if want == "" {
			want = Unclassified
		}
		if res.Classification != want || res.Readable() == tc.unreadable {
			t.Errorf("%s: %s unreadable %q, want %s %v", tc.name, res.Classification, res.Unreadable, want, tc.unreadable)
		}
	}
}

// TestInlineDepth: a block inside a block inside ... is bounded.
func TestInlineDepth(t *testing.T) {
	text := "[SECRET]\n"
	for range MaxArchiveDepth + 1 {
		text = uuencode("a.txt", []byte(text))
	}
	ctx := attachCtx(t)
	s := newInlineStage(ctx, "body", discard{})
	feed(s, []byte(text), 1000)
	res := ctx.col.result()
	if res.Readable() || !strings.Contains(res.Unreadable[0], "nested deeper") || res.Classification != Unclassified {
		t.Fatalf("%+v", res)
	}
}

func FuzzOOXML(f *testing.F) {
	for i, s := range [][]byte{
		docx("[RESTRICTED]", wp("[SEC", "RET]")),
		xlsx(`<si><t>[TOP SECRET]</t></si>`, `<row><c t="s"><v>0</v></c></row>`),
		pptx(`<a:p><a:r><a:t>[CONFIDENTIAL]</a:t></a:r></a:p>`, ""),
		odt(`<text:p>[SENS<text:span>ITIVE]</text:span><text:s text:c="3"/></text:p>`),
		nestedZips(4, func(int) string { return "[SECRET]" }),
		mkzip(zentry{name: "a.txt", body: "[SECRET]", flags: 1}, zentry{name: "b.eml", body: "Subject: [SECRET]\r\n\r\nx"}),
	} {
		f.Add(s, uint64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		whole := scanArchive(t, in, 0)
		parts := scanArchive(t, in, 1+int(seed%4096))
		if a, b := canonical(whole), canonical(parts); a != b {
			t.Fatalf("chunking changed the result:\n%s\n%s", a, b)
		}
		if len(whole.Markings) > MaxMarkings || len(whole.Unreadable) > MaxProblems+1 {
			t.Fatalf("unbounded result: %+v", whole)
		}
	})
}

func FuzzUUEncode(f *testing.F) {
	for _, s := range []string{
		uuencode("a.txt", []byte("[SECRET] and more text\r\n")),
		"x\n" + yencode("a.txt", []byte{0, '\n', '\r', '=', 0xD6, '[', 'S', ']'}) + "y\n",
		binhexEncode("a.txt", []byte("[CONFIDENTIAL] \x90\x90\x90\x90 ----------")),
		"begin-base64 644 a.txt\nW1NFQ1JFVF0=\n====\n",
		"begin 644 a.eml\n" + "(This file must be converted with BinHex 4.0)\n:!!:\n=ybegin size=3 name=a.zip\n",
		uuencode("a.docx", docx("", wp("[SECRET]"))),
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		run := func(chunks bool) (string, Result) {
			ctx := attachCtx(t)
			var out collect
			s := newInlineStage(ctx, "body", &out)
			if chunks {
				chunked(in, seed, s.write)
			} else {
				s.write(in)
			}
			s.close()
			return out.b.String(), ctx.col.result()
		}
		text, whole := run(false)
		text2, parts := run(true)
		if text != string(in) || text2 != string(in) {
			t.Fatalf("the text path did not get the input unchanged")
		}
		if a, b := canonical(whole), canonical(parts); a != b {
			t.Fatalf("chunking changed the result:\n%s\n%s", a, b)
		}
	})
}
