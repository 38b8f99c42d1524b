package quickack

import (
	"bytes"
	"testing"
)

// countingWriter records every write the coalescer makes.
type countingWriter struct {
	writes [][]byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (w *countingWriter) all() []byte { return bytes.Join(w.writes, nil) }

// packet writes one milter packet as go-milter's wire.WritePacket does:
// the 5-byte header, then the data in a write of its own.
func packet(t *testing.T, c *coalescer, code byte, data []byte, sent *bytes.Buffer) {
	t.Helper()
	l := len(data) + 1
	hdr := []byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), code}
	if n, err := c.Write(hdr); n != 5 || err != nil {
		t.Fatalf("header: %d %v", n, err)
	}
	sent.Write(hdr)
	if len(data) > 0 {
		if n, err := c.Write(data); n != len(data) || err != nil {
			t.Fatalf("data: %d %v", n, err)
		}
		sent.Write(data)
	}
}

// TestCoalesceEndOfMessage: header edits and the final accept leave in
// one write, byte for byte as written.
func TestCoalesceEndOfMessage(t *testing.T) {
	w := &countingWriter{}
	c := &coalescer{w: w}
	var sent bytes.Buffer
	packet(t, c, 'h', []byte("Authentication-Results\x00 gw; spf=pass\x00"), &sent)
	packet(t, c, 'i', []byte("\x00\x00\x00\x00X-NZ-Secure-Gateway\x00 received\x00"), &sent)
	packet(t, c, 'm', []byte("\x00\x00\x00\x01X-NZ-Secure-email\x00\x00"), &sent)
	if len(w.writes) != 0 {
		t.Fatalf("modifications written before the final reply: %d writes", len(w.writes))
	}
	packet(t, c, 'a', nil, &sent)
	if len(w.writes) != 1 || !bytes.Equal(w.all(), sent.Bytes()) {
		t.Fatalf("got %d writes %q, want one write %q", len(w.writes), w.all(), sent.Bytes())
	}
}

// TestCoalesceReplies: a reply that is not a modification (continue,
// reject with its text) leaves at once, header and data in one write.
func TestCoalesceReplies(t *testing.T) {
	w := &countingWriter{}
	c := &coalescer{w: w}
	var sent bytes.Buffer
	packet(t, c, 'c', nil, &sent)
	if len(w.writes) != 1 {
		t.Fatalf("continue: %d writes, want 1", len(w.writes))
	}
	packet(t, c, 'y', []byte("550 5.7.1 refused\x00"), &sent)
	if len(w.writes) != 2 || !bytes.Equal(w.all(), sent.Bytes()) {
		t.Fatalf("reply code: %d writes %q", len(w.writes), w.all())
	}
}

// TestCoalesceBounded: a large body replacement is not kept past maxHeld.
func TestCoalesceBounded(t *testing.T) {
	w := &countingWriter{}
	c := &coalescer{w: w}
	var sent bytes.Buffer
	chunk := bytes.Repeat([]byte("x"), 60<<10)
	packet(t, c, 'b', chunk, &sent)
	packet(t, c, 'b', chunk, &sent)
	if len(w.writes) == 0 {
		t.Fatal("two 60 KiB body chunks kept: want a flush past maxHeld")
	}
	if len(c.buf) >= maxHeld {
		t.Fatalf("kept %d bytes", len(c.buf))
	}
	packet(t, c, 'a', nil, &sent)
	if !bytes.Equal(w.all(), sent.Bytes()) {
		t.Fatal("stream changed")
	}
}

// TestCoalescePassThrough: writes that are not go-milter's packet
// framing go through in order, after what was kept.
func TestCoalescePassThrough(t *testing.T) {
	w := &countingWriter{}
	c := &coalescer{w: w}
	var sent bytes.Buffer
	packet(t, c, 'h', []byte("A\x00b\x00"), &sent)
	odd := []byte("not a packet header")
	if _, err := c.Write(odd); err != nil {
		t.Fatal(err)
	}
	sent.Write(odd)
	// A header announcing less data than is then written.
	hdr := []byte{0, 0, 0, 2, 'h'}
	_, _ = c.Write(hdr)
	sent.Write(hdr)
	long := []byte("longer than one byte")
	_, _ = c.Write(long)
	sent.Write(long)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.all(), sent.Bytes()) {
		t.Fatalf("got %q\nwant %q", w.all(), sent.Bytes())
	}
}

func FuzzCoalesce(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'h', 'a', 0, 0, 0, 0, 1, 'a'}, uint8(5))
	f.Add([]byte("hello world"), uint8(3))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		w := &countingWriter{}
		c := &coalescer{w: w}
		n := int(step%16) + 1
		for i := 0; i < len(stream); i += n {
			_, _ = c.Write(stream[i:min(i+n, len(stream))])
		}
		_ = c.Flush()
		if !bytes.Equal(w.all(), stream) {
			t.Fatalf("stream changed: got %q want %q", w.all(), stream)
		}
	})
}
