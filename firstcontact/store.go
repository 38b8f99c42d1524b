// Package firstcontact keeps the recipient addresses this gateway has sent
// classified mail to (outbound.first_contact, issue 17): a bounded LRU in
// memory, saved to a file that survives restarts. The policy engine only
// asks Known (policy.KnownRecipients); the milter calls Add once the MTA
// has accepted a message for its recipients, and `nzsecure-milter
// firstcontact approve` adds addresses an administrator confirmed.
//
// The file holds one address a line, least recently used first, after
// comment lines starting with '#'. It is replaced atomically (a temporary
// file renamed over it) under an flock(2) on PATH.lock, so the running
// daemon and the approve command never lose each other's additions: the
// daemon reads the file again when its size or modification time is not
// what it last wrote.
package firstcontact

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sys/unix"

	"github.com/nzsecure-milter/nzsecure-milter/internal/statefile"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ErrCorrupt is wrapped when the state file has lines that are not
// addresses: they are skipped, the others kept; never fatal (fail safe: a
// forgotten address only means one more message held for confirmation).
var ErrCorrupt = errors.New("first-contact state: bad lines")

// maxLine bounds one line of the file (an address is at most 254 bytes,
// RFC 5321 section 4.5.3.1.3).
const maxLine = 1024

// Store is the set of known addresses. Its methods are safe for
// concurrent use.
type Store struct {
	path string
	max  int

	mu    sync.Mutex
	cache *lru.Cache[string, struct{}]
	dirty bool
	stamp stamp // the file as this store last read or wrote it
}

type stamp struct {
	size  int64
	mtime time.Time
}

func fileStamp(fi os.FileInfo) stamp { return stamp{fi.Size(), fi.ModTime()} }

// Open loads the store kept at path (a missing file is an empty store),
// keeping at most max addresses. The store is always usable: an error
// wrapping ErrCorrupt says lines were skipped, any other that the file
// could not be read (the store starts empty and writes it anew at Sync).
func Open(path string, max int) (*Store, error) {
	if max < 1 {
		max = policy.DefaultFirstContactMax
	}
	c, err := lru.New[string, struct{}](max)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, max: max, cache: c}
	if path == "" {
		return s, nil
	}
	addrs, st, err := readFile(path, max)
	for _, a := range addrs {
		s.cache.Add(a, struct{}{})
	}
	s.stamp = st
	return s, err
}

// Path is the file the store is kept in ("" for one in memory only).
func (s *Store) Path() string { return s.path }

// Known reports whether addr (policy.NormalizeAddress form) is known.
func (s *Store) Known(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.cache.Get(addr)
	return ok
}

// Len is the number of known addresses.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.Len()
}

// Add records addresses as known (normalised again; others are ignored),
// the most recently used last. The file is written at the next Sync.
func (s *Store) Add(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		if n, ok := policy.NormalizeAddress(a); ok {
			s.cache.Add(n, struct{}{})
			s.dirty = true
		}
	}
}

// Sync merges what another process (the approve command) added to the
// file since this store last read or wrote it, then writes the file when
// the store changed. A store without a path does nothing.
func (s *Store) Sync() error {
	if s.path == "" {
		return nil
	}
	unlock, err := lock(s.path)
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var readErr error
	if fi, err := os.Stat(s.path); err == nil && fileStamp(fi) != s.stamp {
		var addrs []string
		addrs, s.stamp, readErr = readFile(s.path, s.max)
		for _, a := range addrs {
			if !s.cache.Contains(a) {
				// Added by someone else: keep it as the most recent.
				s.cache.Add(a, struct{}{})
				s.dirty = true
			}
		}
	}
	if !s.dirty {
		return readErr
	}
	st, err := writeFile(s.path, s.cache.Keys())
	if err != nil {
		return err
	}
	s.stamp, s.dirty = st, false
	return readErr
}

// Approve adds addrs to the store kept at path, as `nzsecure-milter
// firstcontact approve` does; a running serve picks them up at its next
// Sync. Addresses that cannot be normalised are an error, and nothing is
// written then.
func Approve(path string, max int, addrs ...string) error {
	var norm []string
	for _, a := range addrs {
		n, ok := policy.NormalizeAddress(a)
		if !ok {
			return fmt.Errorf("%q is not an address (local@domain)", a)
		}
		norm = append(norm, n)
	}
	s, err := Open(path, max)
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.Add(norm...)
	return s.Sync()
}

// readFile reads the addresses of path, oldest first, at most max (the
// last max of a longer file). A missing file is no addresses and no error.
func readFile(path string, max int) ([]string, stamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, stamp{}, nil
	}
	if err != nil {
		return nil, stamp{}, fmt.Errorf("first-contact state: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, fmt.Errorf("first-contact state: %w", err)
	}
	addrs, err := parse(f, max)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return addrs, fileStamp(fi), err
}

// parse reads the file format: comment lines, blank lines and addresses.
// Bad lines are skipped and reported (wrapping ErrCorrupt). It reads every
// line but keeps at most the last max addresses (bounded memory).
func parse(r io.Reader, max int) ([]string, error) {
	br := bufio.NewReaderSize(r, 4096)
	var addrs []string
	bad, first, line := 0, 0, 0
	for {
		text, err := readLine(br)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			if errors.Is(err, errLongLine) {
				bad++
				first = firstOf(first, line)
				continue
			}
			return addrs, fmt.Errorf("line %d: %w", line, err)
		}
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		a, ok := policy.NormalizeAddress(text)
		if !ok {
			bad++
			first = firstOf(first, line)
			continue
		}
		addrs = append(addrs, a)
		if len(addrs) > 2*max {
			addrs = append(addrs[:0:0], addrs[len(addrs)-max:]...)
		}
	}
	if len(addrs) > max {
		addrs = addrs[len(addrs)-max:]
	}
	if bad > 0 {
		return addrs, fmt.Errorf("%w: %d line(s) are not addresses (the first is line %d); they are ignored", ErrCorrupt, bad, first)
	}
	return addrs, nil
}

func firstOf(first, line int) int {
	if first == 0 {
		return line
	}
	return first
}

var errLongLine = errors.New("line too long")

// readLine reads one line of at most maxLine bytes; a longer one is
// consumed whole and reported as errLongLine (bounded memory whatever the
// file holds).
func readLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	long := false
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF && (b.Len() > 0 || long) {
				break
			}
			return "", err
		}
		if !long {
			if b.Len()+len(chunk) > maxLine {
				long = true
				b.Reset()
			} else {
				b.Write(chunk)
			}
		}
		if !isPrefix {
			break
		}
	}
	if long {
		return "", errLongLine
	}
	return b.String(), nil
}

const header = "# nzsecure-milter first-contact state (outbound.first_contact): addresses this\n" +
	"# gateway has sent classified mail to, least recently used first.\n" +
	"# Add one with: nzsecure-milter firstcontact approve ADDRESS\n"

// writeFile replaces path atomically with addrs: a temporary file in the
// same directory, synced, renamed over it (mode 0600: the addresses are
// the agency's correspondents).
func writeFile(path string, addrs []string) (stamp, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return stamp{}, fmt.Errorf("first-contact state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	w := bufio.NewWriter(tmp)
	w.WriteString(header)
	for _, a := range addrs {
		w.WriteString(a)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = statefile.OwnLikeDir(tmp, dir)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return stamp{}, fmt.Errorf("first-contact state: writing %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, fmt.Errorf("first-contact state: %w", err)
	}
	return fileStamp(fi), nil
}

// lock takes an exclusive flock on PATH.lock, so that serve's Sync and the
// approve command do not write over each other.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("first-contact state: %w", err)
	}
	if err := statefile.OwnLikeDir(f, filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("first-contact state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("first-contact state: lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// Addresses are the known addresses, least recently used first.
func (s *Store) Addresses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.Keys()
}
