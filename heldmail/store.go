// Package heldmail is the gateway's own store of mail held for a
// certificate problem (Table 1, sending column: SECURE DELIVERY DELAYED,
// codes 201, 202, 211, 212) and the loop that retries it (R57: "The system
// will try again in X hours") and, after smime.give_up, returns it with
// SECURE DELIVERY FAILURE.
//
// The mail is kept here, not in the MTA's hold queue, because a message
// released from Postfix's hold queue is delivered as it is, without passing
// the milter again: it would leave unsigned and unencrypted
// (pipeline/held.go). For the same reason (R62) mail held for an
// administrator (R110 and the other administrator holds,
// policy/adminhold.go) with a recipient in S/MIME scope is kept here too,
// marked with HeldMessage.AdminHold: the retry loop leaves it alone and
// never gives it up; Retrier.Release (`held release`) sends it.
//
// On disk, in smime.held_dir:
//
//	ID.eml          the message exactly as received
//	ID.json         Entry: the pipeline.HeldMessage, tries, last try, last reason
//	.tmp-*          a write in progress (never an entry)
//	failed/ID.eml   given up or deleted: kept for the administrator
//	failed/ID.json  the Entry with the note saying why
//
// An entry exists once its ID.json exists: Put writes the message and the
// metadata to temporary files, fsyncs them, renames the message, then the
// metadata, and fsyncs the directory before it returns, so the MTA is told
// the held recipients are taken care of only when a crash can no longer
// lose them.
package heldmail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
)

// Sentinel errors; the store wraps them with %w.
var (
	// ErrFull: the store is at smime.held_max_count or smime.held_max_size.
	// The milter tempfails the message, so the MTA keeps it.
	ErrFull = errors.New("held-mail store full")
	// ErrNotFound: no entry with that ID.
	ErrNotFound = errors.New("no held message with that ID")
	// ErrBadID: not an ID the store gives (it would not be a safe file name).
	ErrBadID = errors.New("not a held-message ID")
	// ErrCorrupt: an entry whose metadata does not parse, whose message is
	// missing, or whose message is not the bytes that were stored.
	ErrCorrupt = errors.New("corrupt held-message entry")
	// ErrBusy: another process or goroutine is working on the entry.
	ErrBusy = errors.New("held message is being worked on")
)

// FailedDir is the subdirectory for messages given up or deleted.
const FailedDir = "failed"

// tmpPrefix marks files being written; they are never entries.
const tmpPrefix = ".tmp-"

// maxMeta bounds an ID.json read: metadata is small; a larger file is
// corrupt, not read into memory.
const maxMeta = 1 << 20

// Entry is one held message's metadata (ID.json).
type Entry struct {
	ID string `json:"id"`
	pipeline.HeldMessage
	// Size and SHA256 are of ID.eml: a message that is not the stored bytes
	// is never sent (ErrCorrupt).
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Tries counts the retries; LastTry and LastReason are the last one's.
	Tries      int       `json:"tries"`
	LastTry    time.Time `json:"last_try,omitzero"`
	LastReason string    `json:"last_reason,omitempty"`
	// Notified: the SECURE DELIVERY FAILURE notice was sent (so a crash
	// before the move to failed/ does not send it twice).
	Notified bool `json:"failure_notice_sent,omitempty"`
	// Failed and Note, in failed/: when and why it was moved there.
	Failed time.Time `json:"failed,omitzero"`
	Note   string    `json:"note,omitempty"`
}

// Problem is an entry the store cannot use: reported by List, moved to
// failed/ by Repair, never silently dropped.
type Problem struct {
	ID   string `json:"id,omitempty"`
	File string `json:"file"`
	Err  string `json:"error"`
	// ModTime is the file's; Repair leaves young problems alone (a Put or
	// a move in progress in another process).
	ModTime time.Time `json:"mod_time"`
}

// Options bound the store.
type Options struct {
	// MaxCount and MaxBytes: a Put that would pass either is refused with
	// ErrFull; 0 is no bound.
	MaxCount int
	MaxBytes int64
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Store is the held-mail directory. Its methods are safe for concurrent
// use; another process (the `held` subcommand) may use the same directory:
// each entry is locked (flock on ID.eml) while it is worked on.
type Store struct {
	dir  string
	opts Options
	// mu serialises Puts (the bound check with the commit) and the moves,
	// within this process.
	mu sync.Mutex
}

// Open opens (creating, mode 0700: the messages are the agency's mail) the
// store in dir, which must be an absolute path.
func Open(dir string, o Options) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("held-mail store %q: not an absolute path", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, FailedDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("held-mail store: %w", err)
		}
	}
	return &Store{dir: dir, opts: o}, nil
}

// OpenExisting opens a store without creating anything (listings).
func OpenExisting(dir string, o Options) (*Store, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("held-mail store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("held-mail store %s: not a directory", dir)
	}
	return &Store{dir: dir, opts: o}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// newID is 130 random bits in lower-case base32 without padding: not
// guessable, and only [a-z2-7], a safe file name.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("held-mail ID: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// ValidID reports whether id is of the form the store gives, so that a
// name from the command line cannot reach outside the directory.
func ValidID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func (s *Store) path(id, ext string) string       { return filepath.Join(s.dir, id+ext) }
func (s *Store) failedPath(id, ext string) string { return filepath.Join(s.dir, FailedDir, id+ext) }

// Put stores a held message; it returns only once the message and its
// metadata are on stable storage (HoldStore's contract). Past the bounds
// it returns ErrFull and stores nothing.
func (s *Store) Put(ctx context.Context, h pipeline.HeldMessage, msg io.Reader) (string, error) {
	id, err := newID()
	if err != nil {
		return "", err
	}
	if h.Received.IsZero() {
		h.Received = s.now()
	}
	// The message is written before the lock: it may be large, and the
	// bound is checked with its real size.
	tmpMsg, size, sum, err := s.writeTemp(id, func(w io.Writer) error {
		_, err := io.Copy(w, contextReader{ctx, msg})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("held-mail store: writing the message: %w", err)
	}
	defer os.Remove(tmpMsg) // gone after the rename; removed on failure
	e := Entry{ID: id, HeldMessage: h, Size: size, SHA256: sum}
	tmpMeta, err := s.writeMetaTemp(e)
	if err != nil {
		return "", fmt.Errorf("held-mail store: writing the metadata: %w", err)
	}
	defer os.Remove(tmpMeta)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkBounds(size); err != nil {
		return "", err
	}
	if err := os.Rename(tmpMsg, s.path(id, ".eml")); err != nil {
		return "", fmt.Errorf("held-mail store: %w", err)
	}
	if err := os.Rename(tmpMeta, s.path(id, ".json")); err != nil {
		os.Remove(s.path(id, ".eml"))
		return "", fmt.Errorf("held-mail store: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		// Not known to be durable: undo, so the MTA keeps the message.
		os.Remove(s.path(id, ".json"))
		os.Remove(s.path(id, ".eml"))
		return "", fmt.Errorf("held-mail store: %w", err)
	}
	return id, nil
}

// checkBounds: the entries now in the store plus one of size. Counted from
// the directory each time, so that entries removed by another process
// (`held delete`) count at once.
func (s *Store) checkBounds(size int64) error {
	if s.opts.MaxCount <= 0 && s.opts.MaxBytes <= 0 {
		return nil
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("held-mail store: %w", err)
	}
	n, total := 0, int64(0)
	for _, de := range des {
		if id, ok := strings.CutSuffix(de.Name(), ".eml"); ok && ValidID(id) {
			n++
			if fi, err := de.Info(); err == nil {
				total += fi.Size()
			}
		}
	}
	if s.opts.MaxCount > 0 && n+1 > s.opts.MaxCount {
		return fmt.Errorf("%w: %d messages held, the most smime.held_max_count allows", ErrFull, n)
	}
	if s.opts.MaxBytes > 0 && total+size > s.opts.MaxBytes {
		return fmt.Errorf("%w: %d bytes held, another %d would pass smime.held_max_size (%d)", ErrFull, total, size, s.opts.MaxBytes)
	}
	return nil
}

// writeTemp writes a temporary file in the store's directory with fill,
// fsyncs and closes it; it returns its name, size and SHA-256.
func (s *Store) writeTemp(id string, fill func(io.Writer) error) (name string, size int64, sum string, err error) {
	return writeTempIn(s.dir, id, fill)
}

func writeTempIn(dir, id string, fill func(io.Writer) error) (name string, size int64, sum string, err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+id+"-*")
	if err != nil {
		return "", 0, "", err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err = fill(cw); err != nil {
		return "", 0, "", err
	}
	if err = f.Sync(); err != nil {
		return "", 0, "", err
	}
	if err = f.Close(); err != nil {
		return "", 0, "", err
	}
	return tmp, cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

func (s *Store) writeMetaTemp(e Entry) (string, error) {
	return writeMetaTempIn(s.dir, e)
}

func writeMetaTempIn(dir string, e Entry) (string, error) {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return "", err
	}
	name, _, _, err := writeTempIn(dir, e.ID, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
	return name, err
}

// replaceMeta writes e as dir/ID.json atomically (temporary file, fsync,
// rename, directory fsync).
func replaceMeta(dir string, e Entry) error {
	tmp, err := writeMetaTempIn(dir, e)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, e.ID+".json")); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// contextReader stops a copy when the context ends (a milter session
// aborted while the message is written).
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readMeta reads and checks one ID.json.
func readMeta(path, id string) (Entry, error) { return readMetaAs(path, id, true) }

// readMetaAs: strict for held entries; an entry in failed/ may be one
// Repair wrote for corrupt metadata (no digest).
func readMetaAs(path, id string, strict bool) (Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return Entry{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMeta+1))
	if err != nil {
		return Entry{}, err
	}
	if len(data) > maxMeta {
		return Entry{}, fmt.Errorf("%w: %s: metadata larger than %d bytes", ErrCorrupt, filepath.Base(path), maxMeta)
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Base(path), err)
	}
	if e.ID != id {
		return Entry{}, fmt.Errorf("%w: %s: names ID %q", ErrCorrupt, filepath.Base(path), e.ID)
	}
	if strict && (len(e.SHA256) != 64 || e.Size < 0) {
		return Entry{}, fmt.Errorf("%w: %s: no message size and digest", ErrCorrupt, filepath.Base(path))
	}
	return e, nil
}

// List returns the held messages, oldest received first, and every
// problem: metadata that does not parse, metadata without its message, a
// message without metadata (left by a crash, or metadata lost), a message
// whose size is not the stored one, and leftover temporary files. It
// changes nothing.
func (s *Store) List() ([]Entry, []Problem, error) {
	return listDir(s.dir, false)
}

// ListFailed returns the messages in failed/.
func (s *Store) ListFailed() ([]Entry, []Problem, error) {
	return listDir(filepath.Join(s.dir, FailedDir), true)
}

func listDir(dir string, failed bool) ([]Entry, []Problem, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("held-mail store: %w", err)
	}
	type files struct {
		eml, json bool
		emlSize   int64
		mod       time.Time
	}
	byID := map[string]*files{}
	var probs []Problem
	for _, de := range des {
		name := de.Name()
		if de.IsDir() {
			continue
		}
		fi, ierr := de.Info()
		var mod time.Time
		if ierr == nil {
			mod = fi.ModTime()
		}
		if strings.HasPrefix(name, tmpPrefix) {
			probs = append(probs, Problem{File: name, Err: "temporary file left by an interrupted write", ModTime: mod})
			continue
		}
		base, ext := name, filepath.Ext(name)
		base = strings.TrimSuffix(base, ext)
		if !ValidID(base) || (ext != ".eml" && ext != ".json") {
			if failed && ValidID(strings.TrimSuffix(name, ".json.corrupt")) {
				continue // kept beside a repaired entry
			}
			probs = append(probs, Problem{File: name, Err: "not a held-mail file", ModTime: mod})
			continue
		}
		f := byID[base]
		if f == nil {
			f = &files{}
			byID[base] = f
		}
		if mod.After(f.mod) {
			f.mod = mod
		}
		if ext == ".eml" {
			f.eml = true
			if ierr == nil {
				f.emlSize = fi.Size()
			}
		} else {
			f.json = true
		}
	}
	var out []Entry
	for id, f := range byID {
		switch {
		case !f.json:
			probs = append(probs, Problem{ID: id, File: id + ".eml", Err: "message without metadata (a write or a removal interrupted, or ID.json lost)", ModTime: f.mod})
			continue
		case !f.eml:
			probs = append(probs, Problem{ID: id, File: id + ".json", Err: "metadata without its message (ID.eml missing)", ModTime: f.mod})
			continue
		}
		e, err := readMetaAs(filepath.Join(dir, id+".json"), id, !failed)
		if err != nil {
			probs = append(probs, Problem{ID: id, File: id + ".json", Err: err.Error(), ModTime: f.mod})
			continue
		}
		if e.Size != f.emlSize && (!failed || e.SHA256 != "") {
			probs = append(probs, Problem{ID: id, File: id + ".eml", Err: fmt.Sprintf("%v: message is %d bytes, %d were stored", ErrCorrupt, f.emlSize, e.Size), ModTime: f.mod})
			if !failed {
				continue
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Received.Equal(out[j].Received) {
			return out[i].Received.Before(out[j].Received)
		}
		return out[i].ID < out[j].ID
	})
	sort.Slice(probs, func(i, j int) bool { return probs[i].File < probs[j].File })
	return out, probs, nil
}

// Entry returns one entry's metadata.
func (s *Store) Entry(id string) (Entry, error) {
	if !ValidID(id) {
		return Entry{}, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return readMeta(s.path(id, ".json"), id)
}

// FailedEntry returns the metadata of a message in failed/.
func (s *Store) FailedEntry(id string) (Entry, error) {
	if !ValidID(id) {
		return Entry{}, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return readMetaAs(s.failedPath(id, ".json"), id, false)
}

// Held is an opened entry: its metadata and its message, locked against
// other workers until Close. Reading Message to the end checks the bytes
// against the stored digest: a changed or truncated message reads as
// ErrCorrupt, never as a clean end.
type Held struct {
	Entry
	f   *os.File
	h   hash.Hash
	n   int64
	bad error
}

// Read reads the message (io.Reader), checked at its end.
func (h *Held) Read(p []byte) (int, error) {
	if h.bad != nil {
		return 0, h.bad
	}
	n, err := h.f.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if err == io.EOF {
		if h.n != h.Size || hex.EncodeToString(h.h.Sum(nil)) != h.SHA256 {
			h.bad = fmt.Errorf("%w: %s.eml is not the message that was stored", ErrCorrupt, h.ID)
			return n, h.bad
		}
	}
	return n, err
}

// Rewind starts the message again from its beginning.
func (h *Held) Rewind() error {
	if _, err := h.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h.h.Reset()
	h.n, h.bad = 0, nil
	return nil
}

// Close releases the lock.
func (h *Held) Close() error { return h.f.Close() }

// Get opens an entry, locked (ErrBusy when another worker has it).
func (s *Store) Get(id string) (*Held, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	f, err := os.Open(s.path(id, ".eml"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrBusy, id)
		}
		return nil, err
	}
	// Read the metadata under the lock: what another worker wrote before
	// releasing it counts.
	e, err := readMeta(s.path(id, ".json"), id)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Removed by another worker between the open and the lock.
	if _, err := os.Stat(s.path(id, ".eml")); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return &Held{Entry: e, f: f, h: sha256.New()}, nil
}

// Update rewrites an entry's metadata (tries, last try, last reason, code)
// atomically. The ID, the message digest and size are the store's: they
// cannot be changed this way.
func (s *Store) Update(e Entry) error {
	if !ValidID(e.ID) {
		return fmt.Errorf("%w: %q", ErrBadID, e.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := readMeta(s.path(e.ID, ".json"), e.ID)
	if err != nil {
		return err
	}
	e.Size, e.SHA256 = cur.Size, cur.SHA256
	if err := replaceMeta(s.dir, e); err != nil {
		return fmt.Errorf("held-mail store: %w", err)
	}
	return nil
}

// Remove deletes an entry (sent). The metadata goes first: from then on
// it is no entry; a crash before the message goes leaves a message without
// metadata, which List reports and Repair moves to failed/.
func (s *Store) Remove(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(id, ".json")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return fmt.Errorf("held-mail store: %w", err)
	}
	if err := os.Remove(s.path(id, ".eml")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("held-mail store: %w", err)
	}
	return syncDir(s.dir)
}

// Fail moves an entry to failed/ with a note (given up, refused, deleted
// by the administrator): never deleted, the administrator decides. The
// metadata with the note is written in failed/ first, then the message is
// moved, then the old metadata removed; a crash in between leaves either
// the entry in place (Fail again completes it) or metadata without its
// message, which Repair completes.
func (s *Store) Fail(id, note string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := readMeta(s.path(id, ".json"), id)
	if err != nil {
		return err
	}
	return s.moveFailed(e, note)
}

func (s *Store) moveFailed(e Entry, note string) error {
	fdir := filepath.Join(s.dir, FailedDir)
	if err := os.MkdirAll(fdir, 0o700); err != nil {
		return fmt.Errorf("held-mail store: %w", err)
	}
	e.Failed, e.Note = s.now().UTC(), note
	if err := replaceMeta(fdir, e); err != nil {
		return fmt.Errorf("held-mail store: %w", err)
	}
	if err := os.Rename(s.path(e.ID, ".eml"), s.failedPath(e.ID, ".eml")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("held-mail store: %w", err)
	}
	if err := syncDir(fdir); err != nil {
		return fmt.Errorf("held-mail store: %w", err)
	}
	if err := os.Remove(s.path(e.ID, ".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("held-mail store: %w", err)
	}
	return syncDir(s.dir)
}

// RepairGrace is how old a problem must be before Repair acts on it: a
// younger one may be a Put or a move in progress in another process.
const RepairGrace = 10 * time.Minute

// Repair deals with the problems List reports that are older than
// RepairGrace, and returns what it did, one line each: temporary files are
// removed (no Put returned success for them, so the MTA still has the
// message); a message without metadata, metadata without its message
// (unless the message is already in failed/: a move to complete), corrupt
// metadata and a message of the wrong size are moved to failed/ with a
// note, the unreadable metadata kept beside as ID.json.corrupt.
func (s *Store) Repair() ([]string, error) {
	_, probs, err := s.List()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var done []string
	var errs []error
	for _, p := range probs {
		if now.Sub(p.ModTime) < RepairGrace {
			continue
		}
		if err := s.repairOne(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.File, err))
			continue
		}
		done = append(done, p.File+": "+p.Err+": repaired")
	}
	return done, errors.Join(errs...)
}

func (s *Store) repairOne(p Problem) error {
	if strings.HasPrefix(p.File, tmpPrefix) {
		if err := os.Remove(filepath.Join(s.dir, p.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return syncDir(s.dir)
	}
	if p.ID == "" {
		return nil // a foreign file: reported, not ours to touch
	}
	id := p.ID
	// Locked, so that a worker holding the entry finishes first.
	if f, err := os.Open(s.path(id, ".eml")); err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return fmt.Errorf("%w: %s", ErrBusy, id)
		}
	}
	_, emlErr := os.Stat(s.path(id, ".eml"))
	if errors.Is(emlErr, os.ErrNotExist) {
		if _, err := os.Stat(s.failedPath(id, ".eml")); err == nil {
			// An interrupted Fail: the message is in failed/ already.
			if _, err := os.Stat(s.failedPath(id, ".json")); err == nil {
				if err := os.Remove(s.path(id, ".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				return syncDir(s.dir)
			}
		}
	}
	e, metaErr := readMeta(s.path(id, ".json"), id)
	if metaErr != nil {
		e = Entry{ID: id}
		if raw, err := os.ReadFile(s.path(id, ".json")); err == nil {
			if err := os.WriteFile(s.failedPath(id, ".json.corrupt"), raw, 0o600); err != nil {
				return err
			}
		}
	}
	if err := s.moveFailed(e, "repaired: "+p.Err); err != nil {
		return err
	}
	return nil
}
