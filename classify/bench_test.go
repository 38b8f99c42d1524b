package classify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchText is ordinary prose with the odd bracket, like real mail.
const benchText = "The committee met on Tuesday to discuss the budget (see item 4 [draft]) and\n" +
	"agreed that the figures in appendix B should be checked again before Friday.\n" +
	"Action: Jane to circulate the minutes; Bob to ring the ministry about [the] report.\n"

// benchUTF8 is prose with accents, typographic quotes, no-break spaces and
// the odd invisible character: every line takes the normaliser's slow path.
const benchUTF8 = "Le comit\u00e9 s\u2019est r\u00e9uni mardi\u00a0: le budget (voir le point\u00a04 [brouillon]) et\n" +
	"\u201cles chiffres\u201d de l\u2019annexe B seront v\u00e9rifi\u00e9s avant vendredi\u200b.\n" +
	"Action\u00a0: Jeanne diffuse le proc\u00e8s-verbal\u00a0; Bob appelle le minist\u00e8re [le] rapport.\n"

const benchHTML = "<p class=\"MsoNormal\"><span style=\"font-family:Calibri\">The committee met on Tuesday to discuss the budget &amp; the\n" +
	"figures in appendix&nbsp;B</span> (see <a href=\"https://example.govt.nz/x?a=1&amp;b=2\">item 4</a> [draft]).</p>\n" +
	"<div><b>Action:</b> Jane to circulate the minutes; Bob to ring the ministry.<br></div>\n"

// benchMessage builds a message whose body is at least size bytes.
func benchMessage(kind string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(crlf(head("bench") + "Subject: benchmark\nMIME-Version: 1.0\n"))
	switch kind {
	case "text":
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
		for b.Len() < size {
			b.WriteString(crlf(benchText))
		}
	case "utf8":
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		for b.Len() < size {
			b.WriteString(crlf(benchUTF8))
		}
	case "base64":
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		var plain bytes.Buffer
		for plain.Len() < size*3/4 {
			plain.WriteString(crlf(benchText))
		}
		plain.WriteString("[SECRET]\r\n")
		b.WriteString(b64Lines(plain.Bytes()))
		return b.Bytes()
	case "html":
		b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body>\r\n")
		for b.Len() < size {
			b.WriteString(crlf(benchHTML))
		}
		b.WriteString("</body></html>\r\n")
	case "multipart":
		b.WriteString("Content-Type: multipart/alternative; boundary=\"=_bench_boundary_0123456789\"\r\n\r\n")
		b.WriteString("--=_bench_boundary_0123456789\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
		for b.Len() < size {
			b.WriteString(crlf(benchText))
		}
		b.WriteString("[SECRET]\r\n--=_bench_boundary_0123456789--\r\n")
		return b.Bytes()
	}
	b.WriteString("[SECRET]\r\n")
	return b.Bytes()
}

// BenchmarkClassify measures the scan rate (MB/s) over 15 MB messages fed
// in 64 KB chunks, as the milter receives them.
func BenchmarkClassify(b *testing.B) {
	for _, kind := range []string{"text", "utf8", "base64", "html", "multipart"} {
		msg := benchMessage(kind, 15<<20)
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				s, _ := NewScanner(Options{})
				for p := msg; len(p) > 0; {
					n := min(len(p), 64<<10)
					s.Write(p[:n])
					p = p[n:]
				}
				res, err := s.Close()
				if err != nil || res.Classification != "SECRET" {
					b.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}

// scanMessage classifies msg fed in 64 KB chunks.
func scanMessage(msg []byte) (Result, error) {
	s, _ := NewScanner(Options{})
	for p := msg; len(p) > 0; {
		n := min(len(p), 64<<10)
		s.Write(p[:n])
		p = p[n:]
	}
	return s.Close()
}

// BenchmarkTextVsGrep compares, in the same run, the scan rate of plain
// text (after the normalisation of issue 11 point 3) with grep -F looking
// for one fixed marking in the same message read from a file (the page
// cache, after a warm-up run); it reports both rates and their ratio and
// fails below a quarter of grep's rate (issue 11, performance).
func BenchmarkTextVsGrep(b *testing.B) {
	grep, err := exec.LookPath("grep")
	if err != nil {
		b.Skip("no grep")
	}
	msg := benchMessage("text", 15<<20)
	file := filepath.Join(b.TempDir(), "msg.eml")
	if err := os.WriteFile(file, msg, 0o644); err != nil {
		b.Fatal(err)
	}
	best := time.Duration(1 << 62)
	for i := 0; i < 6; i++ { // the fastest of a few runs, the first one warms the cache
		start := time.Now()
		out, err := exec.Command(grep, "-F", "-c", "[SECRET]", file).Output()
		if err != nil || string(bytes.TrimSpace(out)) != "1" {
			b.Fatalf("grep: %q %v", out, err)
		}
		best = min(best, time.Since(start))
	}
	grepRate := float64(len(msg)) / best.Seconds() / 1e6
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for b.Loop() {
		if res, err := scanMessage(msg); err != nil || res.Classification != "SECRET" {
			b.Fatalf("%+v %v", res, err)
		}
	}
	rate := float64(b.N) * float64(len(msg)) / b.Elapsed().Seconds() / 1e6
	b.ReportMetric(grepRate, "grep-MB/s")
	b.ReportMetric(rate/grepRate, "x-grep")
	if rate < grepRate/4 {
		b.Errorf("%.0f MB/s, under a quarter of grep -F's %.0f MB/s", rate, grepRate)
	}
}

// bigMessage writes a message of about size bytes to w, generated on the
// fly: plain text, quoted-printable HTML, a base64 text attachment, an
// embedded message with a base64 body and a stored-RTF TNEF part, with
// [TOP SECRET] at the very end.
func bigMessage(w io.Writer, size int) error {
	bw := bufio.NewWriter(w)
	part := size / 5
	fmt.Fprint(bw, crlf(head("big")+"Subject: [IN-CONFIDENCE] big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"big\"\n\n"))

	fmt.Fprint(bw, "--big\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	for n := 0; n < part; n += len(benchText) {
		bw.WriteString(benchText)
	}

	fmt.Fprint(bw, "--big\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(bw)
	for n := 0; n < part; n += len(benchHTML) {
		qp.Write([]byte(benchHTML))
	}
	qp.Close()

	fmt.Fprint(bw, "\r\n--big\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b64 := base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: bw})
	for n := 0; n < part; n += len(benchText) {
		b64.Write([]byte(benchText))
	}
	b64.Close()

	fmt.Fprint(bw, "\r\n--big\r\nContent-Type: message/rfc822\r\n\r\n"+
		"Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b64 = base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: bw})
	for n := 0; n < part; n += len(benchText) {
		b64.Write([]byte(benchText))
	}
	b64.Close()

	fmt.Fprint(bw, "\r\n--big\r\nContent-Type: application/ms-tnef\r\n\r\n")
	rtfHead := []byte(`{\rtf1\ansi\pard `)
	rtf := []byte(strings.ReplaceAll(benchText, "\n", `\par `))
	w1 := newTNEFWriter()
	bw.Write(w1.b.Bytes())
	// attMAPIProps with one property, PR_RTF_COMPRESSED in MELA form,
	// streamed; checksum computed on the fly.
	n := part / len(rtf)
	raw := len(rtfHead) + n*len(rtf) + len(`[TOP SECRET]}`)
	props := 4 + 4 + 4 + 4 + 16 + raw
	props += int(pad4(uint32(16 + raw)))
	var sum uint16
	put := func(b []byte) {
		bw.Write(b)
		for _, c := range b {
			sum += uint16(c)
		}
	}
	le := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	bw.WriteByte(1)
	bw.Write(le(attMAPIProps))
	bw.Write(le(uint32(props)))
	put(le(1))
	put(le(prRTFCompressed))
	put(le(1))
	put(le(uint32(16 + raw)))
	put(le(uint32(raw + 12)))
	put(le(uint32(raw)))
	put(le(lzfuUncompressed))
	put(le(0))
	put(rtfHead)
	for i := 0; i < n; i++ {
		put(rtf)
	}
	put([]byte(`[TOP SECRET]}`))
	put(make([]byte, pad4(uint32(16+raw))))
	bw.Write([]byte{byte(sum), byte(sum >> 8)})
	fmt.Fprint(bw, "\r\n--big--\r\n")
	return bw.Flush()
}

// lineWrapper breaks base64 output into 76-character lines.
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), 76-l.col)
		l.w.Write(p[:k])
		p = p[k:]
		l.col += k
		if l.col == 76 {
			l.w.Write([]byte("\r\n"))
			l.col = 0
		}
	}
	return n, nil
}

// TestStreamingHeap streams a 50 MB message, generated on the fly, through
// a Scanner in 64 KB chunks and checks that the heap in use stays under
// 16 MiB: memory does not grow with the message.
func TestStreamingHeap(t *testing.T) {
	const size = 50 << 20
	const limit = 16 << 20
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(bigMessage(pw, size)) }()
	defer pr.Close()

	start := time.Now()
	s, err := NewScanner(Options{ScanAttachments: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var total, next int
	var peak uint64
	var ms runtime.MemStats
	sample := func() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	sample()
	base := peak
	for {
		n, err := io.ReadFull(pr, buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				t.Fatal(werr)
			}
			total += n
			if total >= next {
				sample()
				next += 4 << 20
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Close()
	sample()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MB in %v; heap in use: %.1f MiB at start, %.1f MiB peak", total>>20, time.Since(start).Round(time.Millisecond), float64(base)/(1<<20), float64(peak)/(1<<20))
	if total < size {
		t.Fatalf("generated only %d bytes", total)
	}
	if res.Classification != "TOP SECRET" || len(res.Problems) != 0 {
		t.Errorf("result %+v", res)
	}
	if peak >= limit {
		t.Errorf("heap in use peaked at %.1f MiB, over %d MiB", float64(peak)/(1<<20), limit>>20)
	}
}
