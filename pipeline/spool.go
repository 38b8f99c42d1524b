package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Spool holds one message body: in memory up to a limit, then in a temporary
// file, so a large message costs disk, not memory. S/MIME and notices need the
// whole body at end of message, so it is kept, not only scanned.
type Spool struct {
	memLimit int64
	dir      string
	mem      bytes.Buffer
	file     *os.File
	size     int64
}

// NewSpool returns an empty spool that spills to dir ("" = os.TempDir())
// once more than memLimit bytes are written.
func NewSpool(memLimit int64, dir string) *Spool {
	return &Spool{memLimit: memLimit, dir: dir}
}

// Write appends p, spilling to a temporary file when the memory limit is passed.
func (s *Spool) Write(p []byte) (int, error) {
	if s.file == nil && int64(s.mem.Len()+len(p)) > s.memLimit {
		f, err := os.CreateTemp(s.dir, "nzsecure-body-*")
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		// Unlinked at once: the file vanishes with the process, whatever happens.
		_ = os.Remove(f.Name())
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool: %w", err)
		}
		s.mem = bytes.Buffer{}
		s.file = f
	}
	var n int
	var err error
	if s.file != nil {
		n, err = s.file.Write(p)
	} else {
		n, err = s.mem.Write(p)
	}
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("spool: %w", err)
	}
	return n, nil
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// OnDisk reports whether the body was spilled to a file.
func (s *Spool) OnDisk() bool { return s.file != nil }

// Reader returns a reader over everything written so far.
func (s *Spool) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem.Bytes())
}

// Close frees the memory and the temporary file.
func (s *Spool) Close() error {
	s.mem = bytes.Buffer{}
	if s.file != nil {
		err := s.file.Close()
		s.file = nil
		return err
	}
	return nil
}
