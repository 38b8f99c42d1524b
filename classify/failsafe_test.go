package classify

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// budgetMsg is a message with a Subject marking and a body marking
// after some filler, for the budget tests.
func budgetMsg() []byte {
	return []byte(crlf(head("budget") + "Subject: [IN-CONFIDENCE] budget\nContent-Type: text/plain\n\n" +
		strings.Repeat("filler line\n", 1000) + "[SECRET]\n"))
}

// TestMaxBytes: past Options.MaxBytes nothing more is scanned, what was
// found stays, and the result is unreadable; a message within the budget
// is read as usual.
func TestMaxBytes(t *testing.T) {
	msg := budgetMsg()
	for _, c := range []struct {
		max        int64
		want       string
		unreadable bool
	}{
		{0, "SECRET", false},
		{int64(len(msg)), "SECRET", false},
		{int64(len(msg)) - 3, "IN-CONFIDENCE", true},
		{200, "IN-CONFIDENCE", true},
		{1, Unclassified, true},
	} {
		for _, chunk := range []int{1, 7, 4096, len(msg)} {
			s, _ := NewScanner(Options{MaxBytes: c.max})
			for rest := msg; len(rest) > 0; {
				n := min(chunk, len(rest))
				if k, err := s.Write(rest[:n]); err != nil || k != n {
					t.Fatalf("write: %d %v", k, err)
				}
				rest = rest[n:]
			}
			res, err := s.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.Classification != c.want || res.Readable() == c.unreadable {
				t.Errorf("MaxBytes %d, chunks of %d: %s unreadable %q; want %s %v", c.max, chunk, res.Classification, res.Unreadable, c.want, c.unreadable)
			}
			if c.unreadable && !strings.Contains(strings.Join(res.Unreadable, ";"), "size budget") {
				t.Errorf("MaxBytes %d: unreadable %q", c.max, res.Unreadable)
			}
		}
	}
}

// TestDeadline: a Write after Options.Deadline scans nothing more and the
// result is unreadable; what came before is kept.
func TestDeadline(t *testing.T) {
	msg := budgetMsg()
	i := bytes.Index(msg, []byte("filler"))
	s, _ := NewScanner(Options{Deadline: time.Now().Add(time.Hour)})
	s.Write(msg[:i])
	s.ctx.opts.Deadline = time.Now().Add(-time.Second) // the hour has passed
	if n, err := s.Write(msg[i:]); err != nil || n != len(msg)-i {
		t.Fatalf("write: %d %v", n, err)
	}
	res, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Classification != "IN-CONFIDENCE" || !strings.Contains(strings.Join(res.Unreadable, ";"), "time budget") {
		t.Errorf("%s, unreadable %q", res.Classification, res.Unreadable)
	}
	res, err = Classify(bytes.NewReader(msg), Options{Deadline: time.Now().Add(time.Minute)})
	if err != nil || res.Classification != "SECRET" || !res.Readable() {
		t.Errorf("within the deadline: %+v %v", res, err)
	}
	res, _ = Classify(bytes.NewReader(msg), Options{Deadline: time.Now().Add(-time.Minute)})
	if res.Classification != Unclassified || res.Readable() {
		t.Errorf("past the deadline: %+v", res)
	}
}

// TestPKCS7Deadline: an S/MIME object is not parsed once the time budget
// is spent.
func TestPKCS7Deadline(t *testing.T) {
	ctx := testCtx(t)
	ctx.opts.Deadline = time.Now().Add(-time.Second)
	s := newPKCS7Stage(ctx, "body", newEntity(ctx, 1, "", false, false, ""))
	feed(s, signedData([]byte("[SECRET]")), 100)
	if res := ctx.col.result(); res.Classification != Unclassified || !strings.Contains(strings.Join(res.Unreadable, ";"), "time budget") {
		t.Errorf("%+v", res)
	}
}

// TestPGPDetectChunks: the armor line is found however it is split.
func TestPGPDetectChunks(t *testing.T) {
	in := []byte("text before\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n")
	for n := 1; n <= len(in); n++ {
		ctx := testCtx(t)
		var out collect
		feed(newPGPDetect(ctx, "body", &out), in, n)
		if out.b.String() != string(in) || ctx.col.result().Readable() {
			t.Fatalf("chunks of %d: %q %q", n, out.b.String(), ctx.col.result().Unreadable)
		}
	}
	ctx := testCtx(t)
	feed(newPGPDetect(ctx, "body", &collect{}), []byte("-----BEGIN PGP SIGNED MESSAGE-----\r\n-----BEGIN PGP SIGNATURE-----"), 5)
	if !ctx.col.result().Readable() {
		t.Errorf("clear-signed: %q", ctx.col.result().Unreadable)
	}
}
