package classify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/transform"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

func init() {
	// Let the fuzzer and the tests see panics with their stacks.
	panicHook = func(v any) { panic(v) }
}

// collect is a stage that keeps what it is given.
type collect struct {
	b      bytes.Buffer
	closed bool
}

func (c *collect) write(p []byte) { c.b.Write(p) }
func (c *collect) close()         { c.closed = true }

func testCtx(t testing.TB) *scanCtx {
	t.Helper()
	d, err := newDictionary(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &scanCtx{dict: d, col: newCollector(d)}
	return ctx
}

// feed writes in into s in chunks of the given sizes (cycled), then
// closes it.
func feed(s stage, in []byte, sizes ...int) {
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(n, sizes[i%len(sizes)])
		}
		s.write(in[:n])
		in = in[n:]
	}
	s.close()
}

// randomSizes returns chunk sizes between 1 and max.
func randomSizes(r *rand.Rand, max int) []int {
	s := make([]int, 64)
	for i := range s {
		s[i] = 1 + r.IntN(max)
	}
	return s
}

// TestUTF7RFC2152 decodes the examples of RFC 2152 section "Examples" and
// the edge cases of the grammar.
func TestUTF7RFC2152(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A+ImIDkQ.", "A\u2262\u0391."},             // "A<NOT IDENTICAL TO><ALPHA>."
		{"Hi Mom -+Jjo--!", "Hi Mom -\u263A-!"},     // "Hi Mom -<WHITE SMILING FACE>-!"
		{"+ZeVnLIqe-", "\u65E5\u672C\u8A9E"},        // "日本語"
		{"Item 3 is +AKM-1.", "Item 3 is \u00A31."}, // "Item 3 is £1."
		{"+-", "+"},
		{"1 +- 1 = 2", "1 + 1 = 2"},
		{"+AFs-SECRET+AF0-", "[SECRET]"},
		{"+AFsAUwBFAEMAUgBFAFQAXQ-", "[SECRET]"},
		{"+AFsAUwBFAEMAUgBFAFQAXQ", "[SECRET]"}, // shift ended by the end of input
		{"+AFs SECRET]", "[ SECRET]"},           // shift ended by a direct character
		{"+2D3eAA-", "\U0001F600"},              // a surrogate pair
		{"+2D0-x", "\uFFFDx"},                   // an unpaired high surrogate
		{"+3gA-", "\uFFFD"},                     // an unpaired low surrogate
		{"caf\xe9", "caf\uFFFD"},                // 8-bit bytes are not UTF-7
		{"", ""},
	} {
		got, _, err := transform.String(message.UTF7.NewDecoder(), c.in)
		if err != nil || got != c.want {
			t.Errorf("UTF-7 %q = %q, %v; want %q", c.in, got, err, c.want)
		}
		// The same one byte at a time through the streaming stage.
		var out collect
		feed(newTransformStage(message.UTF7.NewDecoder(), &out), []byte(c.in), 1)
		if out.b.String() != c.want {
			t.Errorf("UTF-7 %q by bytes = %q; want %q", c.in, out.b.String(), c.want)
		}
	}
	// Round trip through the test encoder.
	for _, s := range []string{"[TOP SECRET] résumé 日本語 \U0001F600 a+b", "+++", "[IN-CONFIDENCE:STAFF]"} {
		enc := utf7Encode(s)
		got, _, err := transform.String(message.UTF7.NewDecoder(), enc)
		if err != nil || got != s {
			t.Errorf("round trip %q -> %q -> %q, %v", s, enc, got, err)
		}
	}
}

// The two examples of [MS-OXRTFCP] section 3.1.3.
var (
	lzfuExample1 = mustHex("2d0000002b0000004c5a4675f1c5c7a703000a00726370673132354232" +
		"0af32068656c0900206277" + "05b06c647d0a800fa0")
	lzfuExample1Raw = "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
	lzfuExample2    = mustHex("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")
	lzfuExample2Raw = "{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func inflate(t *testing.T, comp []byte, sizes ...int) (string, []string) {
	t.Helper()
	ctx := testCtx(t)
	var out collect
	feed(newLZFuStage(ctx, "test", &out), comp, sizes...)
	return out.b.String(), ctx.col.result().Problems
}

func TestLZFuSpecExamples(t *testing.T) {
	for _, c := range []struct {
		comp []byte
		raw  string
	}{{lzfuExample1, lzfuExample1Raw}, {lzfuExample2, lzfuExample2Raw}} {
		for _, size := range []int{len(c.comp), 1, 3} {
			got, problems := inflate(t, c.comp, size)
			if got != c.raw || len(problems) != 0 {
				t.Errorf("decompress (chunks of %d) = %q %q; want %q", size, got, problems, c.raw)
			}
		}
		// The CRC in the header is the spec's CRC of the data.
		if crc := lzfuCRC(c.comp[16:]); crc != uint32(c.comp[12])|uint32(c.comp[13])<<8|uint32(c.comp[14])<<16|uint32(c.comp[15])<<24 {
			t.Errorf("CRC %#x does not match the example's header", crc)
		}
		// The test compressor follows the spec's algorithm to the byte.
		if got := lzfuCompress([]byte(c.raw)); !bytes.Equal(got, c.comp) {
			t.Errorf("compress %q =\n%x\nwant\n%x", c.raw, got, c.comp)
		}
	}
}

func TestLZFuRoundTripAndErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var raw bytes.Buffer
	raw.WriteString(`{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Calibri;}}\pard `)
	for raw.Len() < 20000 {
		words := []string{"alpha ", "[SECRET] ", "\\par\r\n", "budget ", "x", "{\\b bold}", "WXYZWXYZ"}
		raw.WriteString(words[r.IntN(len(words))])
	}
	raw.WriteString("}")
	comp := lzfuCompress(raw.Bytes())
	if got, problems := inflate(t, comp, randomSizes(r, 100)...); got != raw.String() || len(problems) != 0 {
		t.Fatalf("round trip of %d bytes failed: %d bytes back, %q", raw.Len(), len(got), problems)
	}
	if got, problems := inflate(t, lzfuStore(raw.Bytes()), 7); got != raw.String() || len(problems) != 0 {
		t.Fatalf("MELA round trip failed: %q", problems)
	}

	bad := bytes.Clone(lzfuExample1)
	bad[20] ^= 0x01 // corrupt a data byte: CRC mismatch
	if _, problems := inflate(t, bad); !strings.Contains(strings.Join(problems, ";"), "CRC mismatch") {
		t.Errorf("corrupted data: problems %q, want a CRC mismatch", problems)
	}
	if _, problems := inflate(t, lzfuExample1[:30]); len(problems) != 1 || !strings.Contains(problems[0], "truncated") {
		t.Errorf("truncated data: problems %q", problems)
	}
	if _, problems := inflate(t, lzfuExample1[:10]); len(problems) != 1 || !strings.Contains(problems[0], "header") {
		t.Errorf("truncated header: problems %q", problems)
	}
	odd := bytes.Clone(lzfuExample1)
	copy(odd[8:], "ABCD")
	if got, problems := inflate(t, odd); got != "" || len(problems) != 1 || !strings.Contains(problems[0], "unknown type") {
		t.Errorf("unknown type: %q %q", got, problems)
	}
}

// TestQPChunking feeds quoted-printable one byte at a time and in random
// chunks: the output is the same as from one write (RFC 2045 section
// 6.7 soft line breaks across chunk boundaries).
func TestQPChunking(t *testing.T) {
	in := "[SEC=\r\nRET] =5BTOP SECRET=5D soft=  \r\nbreak caf=E9 =\nbare-LF [IN-=\r\nCONFIDENCE:STA=\r\nFF] bad=ZZ =3 end="
	want := "[SECRET] [TOP SECRET] softbreak caf\xe9 bare-LF [IN-CONFIDENCE:STAFF] bad=ZZ =3 end"
	r := rand.New(rand.NewPCG(3, 4))
	for i, sizes := range [][]int{{len(in)}, {1}, {2}, {3}, randomSizes(r, 5), randomSizes(r, 17)} {
		ctx := testCtx(t)
		var out collect
		feed(newTransferStage(ctx, "quoted-printable", "test", &out), []byte(in), sizes...)
		if out.b.String() != want || !out.closed {
			t.Errorf("run %d: QP decoded %q, want %q", i, out.b.String(), want)
		}
		// And through the whole scanner: the markings across soft breaks.
		ctx = testCtx(t)
		feed(newTransferStage(ctx, "quoted-printable", "body", newMatcher(ctx, "body")), []byte(in), sizes...)
		res := ctx.col.result()
		if got := words(res); got != "SECRET,TOP SECRET,IN-CONFIDENCE:STAFF" {
			t.Errorf("run %d: markings %s", i, got)
		}
	}
}

func words(r Result) string {
	var s []string
	for _, m := range r.Markings {
		w := m.Word
		if m.Endorsement != "" {
			w += ":" + m.Endorsement
		}
		s = append(s, w)
	}
	return strings.Join(s, ",")
}

func TestBase64Chunking(t *testing.T) {
	plain := "[SECRET] some text that is long enough to wrap over more than one line of base64 \x00\xff"
	enc := b64Lines([]byte(plain)) + b64Lines([]byte("[RSVPDR]")) // two encodings back to back
	want := plain + "[RSVPDR]"
	r := rand.New(rand.NewPCG(5, 6))
	for i, sizes := range [][]int{{len(enc)}, {1}, {4}, randomSizes(r, 9)} {
		ctx := testCtx(t)
		var out collect
		feed(newTransferStage(ctx, "base64", "test", &out), []byte(enc), sizes...)
		if out.b.String() != want {
			t.Errorf("run %d: base64 decoded %q", i, out.b.String())
		}
		if p := ctx.col.result().Problems; len(p) != 0 {
			t.Errorf("run %d: problems %q", i, p)
		}
	}
	ctx := testCtx(t)
	var out collect
	feed(newTransferStage(ctx, "base64", "test", &out), []byte("W1NF!!Q1JF\r\nVF0=\r\n"), 3)
	if out.b.String() != "[SECRET]" || len(ctx.col.result().Problems) != 1 {
		t.Errorf("junk in base64: %q %q", out.b.String(), ctx.col.result().Problems)
	}
}

// TestMatcher covers the word syntax (R30, R31) and chunk boundaries.
func TestMatcher(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"[SECRET]", "SECRET"},
		{"x[SECRET]y", "SECRET"},
		{"[[SECRET]]", "SECRET"},
		{"[TOP SECRET]", "TOP SECRET"},
		{"[secret] [Secret] SECRET [SECRETARIAT] [SEC RET] [TOPSECRET] [TOP-SECRET]", ""},
		{"[SECRET\n] [\r\nSECRET] [SECRET:a\nb] [SECRET:[x] [SECRET  \n ]", ""},
		// White space as a reader reads it (issue 11 point 3).
		{"[ SECRET ] [SECRET ] [TOP  SECRET] [TOP\tSECRET]", "SECRET,TOP SECRET"},
		{"[TOP\r\n SECRET] [TOP \n\n  SECRET:X]", "TOP SECRET,TOP SECRET:X"},
		{"[TOP" + strings.Repeat(" \r\n\t", 1000) + "SECRET]", "TOP SECRET"},
		{"[IN-CONFIDENCE :STAFF] [IN-CONFIDENCE: STAFF ]", "IN-CONFIDENCE:STAFF"},
		{"[\tRESTRICTED\t\t]", "RESTRICTED"},
		{"> [TOP\r\n> SECRET] >> [TOP\n>> > SECRET:X]", "TOP SECRET,TOP SECRET:X"},
		{"[TOP >SECRET] [SECRET\n>] [>SECRET]", ""},
		{"[IN-CONFIDENCE:STAFF]", "IN-CONFIDENCE:STAFF"},
		{"[SENSITIVE: BUDGET ]", "SENSITIVE:BUDGET"},
		{"[SECRET:]", "SECRET"},
		{"[SECRET:" + strings.Repeat("x", MaxEndorsement) + "]", "SECRET:" + strings.Repeat("x", MaxEndorsement)},
		{"[SECRET:" + strings.Repeat("x", MaxEndorsement+1) + "]", ""},
		{"[RSVPDR]", "RSVPDR"},
		{"[UNCLASSIFIED] [SEC[SECRET]", "UNCLASSIFIED,SECRET"},
		{"[SECRET", ""},
		{"[", ""},
	} {
		for _, size := range []int{len(c.in) + 1, 1, 2, 5} {
			ctx := testCtx(t)
			feed(newMatcher(ctx, "body"), []byte(c.in), size)
			if got := words(ctx.col.result()); got != c.want {
				t.Errorf("%q (chunks of %d): %q, want %q", c.in, size, got, c.want)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	for _, levels := range [][]Level{
		{},
		{{Word: "secret", Rank: 1}},
		{{Word: "A]", Rank: 1}},
		{{Word: "A:B", Rank: 1}},
		{{Word: " A", Rank: 1}},
		{{Word: "A", Rank: 1}, {Word: "A", Rank: 2}},
		{{Word: "RSVPDR", Rank: 1}},
		{{Word: "A", Rank: -1}},
		{{Word: strings.Repeat("A", MaxWordLen+1), Rank: 1}},
	} {
		if _, err := NewScanner(Options{Levels: levels}); err == nil {
			t.Errorf("levels %v accepted", levels)
		}
	}
	res, err := Classify(strings.NewReader("Subject: [PERSONAL] [AB] [A] [SECRET]\n\n"), Options{Levels: []Level{
		{Word: "A", Rank: 1}, {Word: "AB", Rank: 3}, {Word: "PERSONAL", Rank: 2},
	}})
	if err != nil || res.Classification != "AB" || res.Rank != 3 || words(res) != "PERSONAL,AB,A" {
		t.Errorf("custom levels: %+v %v", res, err)
	}
}

func TestScannerLifecycle(t *testing.T) {
	s, err := NewScanner(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("Subject: [SECRET]\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r1, err := s.Close()
	if err != nil || r1.Classification != "SECRET" {
		t.Fatalf("Close = %+v, %v", r1, err)
	}
	r2, err := s.Close()
	if err != nil || r2.Classification != "SECRET" {
		t.Errorf("second Close = %+v, %v", r2, err)
	}
	if _, err := s.Write([]byte("x")); err != ErrClosed {
		t.Errorf("Write after Close: %v", err)
	}
	res, err := Classify(strings.NewReader(""), Options{})
	if err != nil || res.Classification != Unclassified || res.Markings == nil || res.Problems != nil {
		t.Errorf("empty message: %+v, %v", res, err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errFail
	}
	f.n--
	return copy(p, "Subject: x\r\n"), nil
}

var errFail = errors.New("disk on fire")

func TestClassifyReadError(t *testing.T) {
	_, err := Classify(&failingReader{n: 2}, Options{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v", err)
	}
}

func TestMarkingCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("\r\n")
	for i := 0; i < MaxMarkings+10; i++ {
		b.WriteString("[SECRET:E" + strings.Repeat("x", i%150) + "] ")
	}
	b.WriteString("[TOP SECRET]")
	res, err := Classify(strings.NewReader(b.String()), Options{})
	if err != nil || len(res.Markings) != MaxMarkings || res.Classification != "TOP SECRET" {
		t.Fatalf("%d markings, %s, %v", len(res.Markings), res.Classification, err)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "further markings") {
		t.Errorf("problems %q", res.Problems)
	}
}
