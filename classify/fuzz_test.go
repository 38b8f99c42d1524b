package classify

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/transform"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// The fuzz targets check that no input panics, that the result does not
// depend on how the input is chunked (the streaming state machines are
// exact), and that outputs stay proportional to inputs.

func corpusSeeds(f *testing.F) [][]byte {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	var seeds [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	if len(seeds) == 0 {
		f.Fatal("no corpus")
	}
	return seeds
}

// chunked feeds in to write in pseudo-random chunks derived from seed.
func chunked(in []byte, seed uint64, write func([]byte)) {
	r := rand.New(rand.NewPCG(seed, seed>>32))
	max := 1 + int(seed%64)
	for len(in) > 0 {
		n := min(len(in), 1+r.IntN(max))
		write(in[:n])
		in = in[n:]
	}
}

func FuzzScanner(f *testing.F) {
	for i, s := range corpusSeeds(f) {
		f.Add(s, uint64(i), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, msg []byte, seed uint64, attachments bool) {
		opts := Options{ScanAttachments: attachments}
		whole, err := Classify(bytes.NewReader(msg), opts)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := NewScanner(opts)
		chunked(msg, seed, func(p []byte) {
			if _, err := s.Write(p); err != nil {
				t.Fatal(err)
			}
		})
		parts, err := s.Close()
		if err != nil {
			t.Fatal(err)
		}
		a, b := canonical(whole), canonical(parts)
		if a != b {
			t.Fatalf("chunking changed the result:\n%s\n%s", a, b)
		}
		if len(whole.Markings) > MaxMarkings || len(whole.Problems) > MaxProblems+2 {
			t.Fatalf("unbounded result: %d markings, %d problems", len(whole.Markings), len(whole.Problems))
		}
	})
}

// canonical is a Result as JSON with its problems sorted: the order in
// which problems of different stages are noticed may depend on chunking;
// the markings and their order may not. Beyond MaxProblems, which ones
// are kept depends on that order too, so they are left out.
func canonical(r Result) string {
	r.Problems = slices.Clone(r.Problems)
	slices.Sort(r.Problems)
	if len(r.Problems) >= MaxProblems {
		r.Problems = nil
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// stageOutput runs a stage over in, whole or chunked, and returns its
// output.
func stageOutput(t *testing.T, mk func(ctx *scanCtx, next stage) stage, in []byte, seed uint64, chunks bool) (string, Result) {
	ctx := testCtx(t)
	var out collect
	s := mk(ctx, &out)
	if chunks {
		chunked(in, seed, s.write)
	} else {
		s.write(in)
	}
	s.close()
	if !out.closed {
		t.Fatal("close not passed on")
	}
	return out.b.String(), ctx.col.result()
}

func fuzzStage(f *testing.F, mk func(ctx *scanCtx, next stage) stage, ratio int) {
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		whole, _ := stageOutput(t, mk, in, seed, false)
		parts, _ := stageOutput(t, mk, in, seed, true)
		if whole != parts {
			t.Fatalf("chunking changed the output:\n%q\n%q", whole, parts)
		}
		if len(whole) > ratio*len(in)+16 {
			t.Fatalf("output %d bytes for %d bytes of input", len(whole), len(in))
		}
	})
}

func FuzzRTF(f *testing.F) {
	for _, s := range []string{
		`{\rtf1\ansi{\fonttbl{\f0 Arial;}}\pard \'5bSECRET\'5d \u91?TOP SECRET\u93? {\b [SEC}RET]\par}`,
		`{\rtf1{\*\generator x;}\uc2\u-4064\'a0\'a1 \bin3 {}\ text\~[x]\ansicpg1251\'c0}`,
		`{\rtf1 \u-10179?\u-8704? \u55357 \u56832?? \uc0\u91\u93 }`,
		"{\\rtf1\\par\r\n\\\r\n\\tab\\lquote\\emdash\\'zz\\u\\uc\\bin-5 x}}}}{{{",
		lzfuExample1Raw, lzfuExample2Raw,
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	fuzzStage(f, func(ctx *scanCtx, next stage) stage { return newRTFText(next) }, 3)
}

func FuzzHTML(f *testing.F) {
	for _, s := range []string{
		`<p>[SEC<b></b>RET] &#91;CONFIDENTIAL&#x5D; &lbrack;RESTRICTED&rsqb; [TOP&nbsp;SECRET] AT&amp;T</p>`,
		"<html><head><style>x{}</style><script>a<b</script ></head><body><!-- c --><!--> <!---> x</body>",
		"< a <= b &#91 &#x5d &ampfoo &CounterClockwiseContourIntegral; &#1114112; &#0; \xc2\xa0 \xc2",
		"<a href='x>y' title=\"q\">t</a><!DOCTYPE html><?xml x?></ br><br/>&",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	// An entity expands to at most a few runes; a "&" run to its length.
	fuzzStage(f, func(ctx *scanCtx, next stage) stage { return newHTMLText(next) }, 4)
}

func FuzzTNEF(f *testing.F) {
	for i, s := range [][]byte{tnefCompressed, tnefStored, truncatedTNEF(), winmail(lzfuExample2, nil)} {
		f.Add(s, uint64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		run := func(chunks bool) string {
			ctx := testCtx(t)
			s := newTNEFStage(ctx, "tnef")
			if chunks {
				chunked(in, seed, s.write)
			} else {
				s.write(in)
			}
			s.close()
			return canonical(ctx.col.result())
		}
		if a, b := run(false), run(true); a != b {
			t.Fatalf("chunking changed the result:\n%s\n%s", a, b)
		}
	})
}

func FuzzLZFu(f *testing.F) {
	for i, s := range [][]byte{lzfuExample1, lzfuExample2, lzfuStore([]byte(lzfuExample1Raw))} {
		f.Add(s, uint64(i))
	}
	// A compressed stream expands at most 17/2 times, plus the header.
	fuzzStage(f, func(ctx *scanCtx, next stage) stage { return newLZFuStage(ctx, "rtf", next) }, 9)
}

func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"A+ImIDkQ.", "Hi Mom -+Jjo--!", "+ZeVnLIqe-", "Item 3 is +AKM-1.", "+-", "+AFs-SECRET+AF0-", "+2D3eAA-", "+2D0-x+3gA-"} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		got, _, err := transform.String(message.UTF7.NewDecoder(), string(in))
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 out of %q: %q", in, got)
		}
		parts, _ := stageOutput(t, func(ctx *scanCtx, next stage) stage {
			return newTransformStage(message.UTF7.NewDecoder(), next)
		}, in, seed, true)
		if parts != got {
			t.Fatalf("chunking changed the output:\n%q\n%q", got, parts)
		}
		if len(got) > 3*len(in)+3 {
			t.Fatalf("output %d bytes for %d", len(got), len(in))
		}
		ascii := true
		for _, c := range in {
			ascii = ascii && c < 0x80
		}
		if ascii && !bytes.ContainsRune(in, '+') && got != string(in) {
			t.Fatalf("direct characters changed: %q -> %q", in, got)
		}
	})
}

func FuzzFlowed(f *testing.F) {
	for _, s := range []string{"[TOP \r\nSECRET]\r\n-- \r\nsig", "a \r \r\nb\r\r\n", "end "} {
		f.Add([]byte(s), uint64(len(s)))
	}
	fuzzStage(f, func(ctx *scanCtx, next stage) stage { return newFlowedStage(len(ctx.col.problems) == 0, next) }, 1)
}
