package logbuf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the writer writes, that
// counts the writes it gets.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	gate   chan struct{} // when set, each write waits for a value
	// entered, when set, gets a value as each write begins.
	entered chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every line of every goroutine arrives whole, each goroutine's in its
// order, and Close leaves nothing behind.
func TestLinesWholeAndInOrder(t *testing.T) {
	out := &syncBuffer{}
	w := New(out)
	const goroutines, lines = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if _, err := fmt.Fprintf(w, "g%d line %d %s\n", g, i, strings.Repeat("x", i%97)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, goroutines)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != goroutines*lines {
		t.Fatalf("%d lines, want %d", len(got), goroutines*lines)
	}
	for _, l := range got {
		var g, i int
		var pad string
		if n, err := fmt.Sscanf(l, "g%d line %d %s", &g, &i, &pad); (n < 2 || err != nil) && !(n == 2 && i%97 == 0) {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] || len(pad) != i%97 {
			t.Fatalf("goroutine %d: line %d (%d x) where %d was next", g, i, len(pad), next[g])
		}
		next[g]++
	}
}

// Lines logged while a write is under way leave together in the next
// write: fewer writes than lines.
func TestGroupCommit(t *testing.T) {
	out := &syncBuffer{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	w := New(out)
	if _, err := io.WriteString(w, "first\n"); err != nil {
		t.Fatal(err)
	}
	<-out.entered
	// The writer is blocked in the first write: these queue behind it.
	for i := range 10 {
		fmt.Fprintf(w, "queued %d\n", i)
	}
	go func() {
		for {
			select {
			case out.gate <- struct{}{}:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 11 {
		t.Fatalf("%d lines written, want 11:\n%s", n, out.String())
	}
	if out.writes > 3 {
		t.Errorf("11 lines in %d writes: not grouped", out.writes)
	}
}

// Past MaxBuffered a Write waits for the writer instead of growing the
// buffer (bounded memory, nothing dropped).
func TestBackPressure(t *testing.T) {
	out := &syncBuffer{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	w := New(out)
	w.Write([]byte("x"))
	<-out.entered // the writer took "x" and waits in the gate
	big := bytes.Repeat([]byte("y"), MaxBuffered)
	w.Write(big) // fills the buffer
	done := make(chan struct{})
	go func() {
		w.Write([]byte("z")) // must wait: the buffer is full
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Write past MaxBuffered did not wait for the writer")
	case <-time.After(50 * time.Millisecond):
	}
	close(out.gate) // let every write through
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write did not resume once the writer took the buffer")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.String()); got != 1+MaxBuffered+1 {
		t.Errorf("%d bytes written, want %d", got, 1+MaxBuffered+1)
	}
}

type failing struct{}

func (failing) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

// The underlying writer's error reaches later writes and Close; writes
// after Close fail.
func TestErrors(t *testing.T) {
	w := New(failing{})
	w.Write([]byte("a\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := w.Write([]byte("b\n")); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer's error never reached Write")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err == nil || err.Error() != "disk full" {
		t.Errorf("Close: %v", err)
	}
	if _, err := w.Write([]byte("c\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("a second Close lost the error")
	}
}
