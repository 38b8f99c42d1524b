package classify

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Callers test them with errors.Is; the errors returned
// wrap them with detail.
var (
	// ErrOptions reports an invalid Options value (a bad level list).
	ErrOptions = errors.New("classify: invalid options")
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("classify: scanner closed")
	// ErrInternal reports a bug in the scanner (a recovered panic). The
	// result is incomplete, so a caller enforcing policy must fail safe.
	ErrInternal = errors.New("classify: internal error")
)

// Unclassified is the classification of a message without any marking.
const Unclassified = "UNCLASSIFIED"

// RSVPDR is the delivery-receipt trigger word (R35). It is reported in
// Result.RSVPDR, never as a classification.
const RSVPDR = "RSVPDR"

// Limits that keep the memory of a scan bounded whatever the input.
const (
	// MaxMarkings is the number of markings a Result lists; further
	// markings still count for the classification.
	MaxMarkings = 100
	// MaxProblems is the number of problems a Result lists.
	MaxProblems = 20
	// MaxEndorsement is the longest endorsement, in bytes, accepted after
	// the colon of a marking such as [IN-CONFIDENCE:STAFF].
	MaxEndorsement = 128
	// MaxWordLen is the longest trigger word accepted in Options.Levels.
	MaxWordLen = 64
	// MaxDepth is the deepest nesting of MIME entities (multiparts and
	// embedded messages) that is walked.
	MaxDepth = 32
)

// Level is one classification: the trigger word (without brackets) and
// its rank. A higher rank is a higher classification; levels may share a
// rank (SENSITIVE and RESTRICTED do).
type Level struct {
	Word string
	Rank int
}

// DefaultLevels are the New Zealand government classifications in
// ascending order (R109, R114, M-OUT): UNCLASSIFIED < IN-CONFIDENCE <
// SENSITIVE = RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET.
var DefaultLevels = []Level{
	{Word: "UNCLASSIFIED", Rank: 0},
	{Word: "IN-CONFIDENCE", Rank: 1},
	{Word: "SENSITIVE", Rank: 2},
	{Word: "RESTRICTED", Rank: 2},
	{Word: "CONFIDENTIAL", Rank: 3},
	{Word: "SECRET", Rank: 4},
	{Word: "TOP SECRET", Rank: 5},
}

// Options configures a scan. The zero value scans with DefaultLevels and
// skips attachments.
type Options struct {
	// Levels are the trigger words and their ranks; nil means
	// DefaultLevels. Words are matched exactly, bracketed and upper case
	// (R30, R31): no lower-case letters, no brackets or colons, at most
	// MaxWordLen bytes, ranks >= 0, RSVPDR is reserved.
	Levels []Level
	// ScanAttachments also scans text-like attachments (text/*, RTF, HTML,
	// .eml files) — an agency-specific option (R34). A message/rfc822
	// part is scanned whatever its disposition (a forwarded message is the
	// sender's content; issue 11 point 6).
	ScanAttachments bool
	// MaxBytes bounds the raw message bytes scanned; 0 means unlimited.
	// Past it the rest is not scanned, what was found is kept, and the
	// result is unreadable (fail safe; issue 11 point 1).
	MaxBytes int64
	// Deadline, when not zero, bounds the time of the scan in the same
	// way: a Write after it scans nothing more and the result is
	// unreadable.
	Deadline time.Time
}

// Marking is one trigger word found in a message.
type Marking struct {
	// Word is the trigger word without brackets, e.g. "TOP SECRET" or
	// "RSVPDR".
	Word string `json:"word"`
	// Endorsement is the text after the colon, e.g. "STAFF" in
	// [IN-CONFIDENCE:STAFF], spaces trimmed.
	Endorsement string `json:"endorsement,omitempty"`
	// Where names the place: "subject"; "body" (a single-part message);
	// "body/part 1.2 (text/html)" (IMAP-style part numbers); "message/rfc822
	// subject (part 2)" and "body/part 2.1 (text/plain)" for an embedded
	// message; "attachment old.eml subject" for a message attached with
	// an attachment disposition (scanned whatever the options);
	// "attachment report.txt" (or "attachment part 3 (text/plain)" when
	// unnamed) with ScanAttachments; "attachment name [SECRET] plan.pdf"
	// for a marking in an attachment's file name (always scanned: a reader
	// sees it);
	// "body/part 2 (application/ms-tnef) rtf" for the RTF in a TNEF part.
	Where string `json:"where"`
}

// Result is the outcome of a scan.
type Result struct {
	// Classification is the word of the highest level found (the first
	// found among levels of that rank), Unclassified when none.
	Classification string `json:"classification"`
	// Rank is the rank of Classification (0 when nothing was found).
	Rank int `json:"-"`
	// RSVPDR is set when the delivery-receipt word [RSVPDR] was found (R35).
	RSVPDR bool `json:"rsvpdr"`
	// Markings lists the distinct markings in the order found, at most
	// MaxMarkings; never nil.
	Markings []Marking `json:"markings"`
	// Problems lists what could not be decoded cleanly (bad base64, an
	// unknown charset, a broken boundary, a truncated TNEF stream, ...),
	// for the logs: at most MaxProblems, plus a line each saying how many
	// markings and problems were left off, if any. Nil when none.
	Problems []string `json:"problems,omitempty"`
	// Unreadable lists why part of the content the scanner would judge
	// could not be read in full (nesting past MaxDepth, a multipart
	// boundary it cannot use, a decoding error, truncated or encrypted
	// content, a spent budget): each entry names the place and the cause.
	// A caller enforcing policy must treat a non-empty list as if the
	// worst marking were there (fail safe; issue 11): the Classification
	// is then only a lower bound. At most MaxProblems entries, plus one
	// saying how many were left off. Nil when everything was read.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Readable reports whether the scanner read all it would judge.
func (r Result) Readable() bool { return len(r.Unreadable) == 0 }

// Scanner classifies one message fed to it in chunks, as the milter
// receives it: the raw header block, the blank line, then the body. Its
// memory does not grow with the size of the message. A Scanner is not safe
// for concurrent use.
type Scanner struct {
	ctx    *scanCtx
	root   *entity
	err    error // sticky internal error
	closed bool
	res    Result
	n      int64 // raw bytes scanned
	spent  bool  // a budget (MaxBytes, Deadline) ran out: scan no more
}

// NewScanner returns a Scanner for one message. It fails, with an error
// wrapping ErrOptions, only when opts.Levels is invalid.
func NewScanner(opts Options) (*Scanner, error) {
	d, err := newDictionary(opts.Levels)
	if err != nil {
		return nil, err
	}
	ctx := &scanCtx{opts: opts, dict: d, col: newCollector(d)}
	return &Scanner{ctx: ctx, root: newEntity(ctx, 0, "", true, false, "")}, nil
}

// Write feeds the next chunk of the raw message. Malformed input is never
// an error (it is decoded best effort and listed in Result.Problems, and
// in Result.Unreadable when content could not be read); Write fails only
// after Close (ErrClosed) or on an internal error (ErrInternal). Once
// Options.MaxBytes or Options.Deadline is spent, Write accepts and
// ignores the rest.
func (s *Scanner) Write(p []byte) (n int, err error) {
	if s.closed {
		return 0, ErrClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	defer s.recoverPanic(&err)
	if s.spent {
		return len(p), nil
	}
	if s.ctx.expired() {
		s.spend("time budget spent after %d bytes, the rest of the message not scanned", s.n)
		return len(p), nil
	}
	q := p
	if limit := s.ctx.opts.MaxBytes; limit > 0 && int64(len(p)) > limit-s.n {
		q = p[:limit-s.n]
	}
	s.root.write(q)
	s.n += int64(len(q))
	if len(q) < len(p) {
		s.spend("size budget of %d bytes spent, the rest of the message not scanned", s.ctx.opts.MaxBytes)
	}
	return len(p), nil
}

// spend stops the scan: a budget ran out, so the rest of the message is
// not read (issue 11 point 1). What was found so far is kept.
func (s *Scanner) spend(format string, args ...any) {
	s.spent = true
	s.ctx.col.unreadable("message: "+format, args...)
}

// Close ends the message and returns the result. Calling Close again
// returns the same result.
func (s *Scanner) Close() (res Result, err error) {
	if s.closed {
		return s.res, s.err
	}
	s.closed = true
	if s.err == nil {
		func() {
			defer s.recoverPanic(&err)
			s.root.close()
		}()
	}
	if s.err != nil {
		return Result{}, s.err
	}
	s.res = s.ctx.col.result()
	return s.res, nil
}

// panicHook, when set (by tests), receives a recovered panic instead of
// converting it to ErrInternal, so that the fuzzer sees the stack.
var panicHook func(v any)

func (s *Scanner) recoverPanic(err *error) {
	if v := recover(); v != nil {
		if panicHook != nil {
			panicHook(v)
		}
		stack := string(debug.Stack())
		if len(stack) > 2048 {
			stack = stack[:2048]
		}
		s.err = fmt.Errorf("%w: %v\n%s", ErrInternal, v, stack)
		*err = s.err
	}
}

// Classify reads a whole message from r and classifies it. The error is
// non-nil only when reading r fails (or on ErrInternal); the message
// content never causes an error.
func Classify(r io.Reader, opts Options) (Result, error) {
	s, err := NewScanner(opts)
	if err != nil {
		return Result{}, err
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return Result{}, werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return Result{}, fmt.Errorf("classify: reading message: %w", rerr)
		}
	}
	return s.Close()
}

// dictionary is the compiled word list: level words then RSVPDR.
type dictionary struct {
	words   [][]byte
	names   []string
	ranks   []int
	rsvpdr  int        // index of RSVPDR in words
	byFirst [256][]int // word indexes by first byte
	maxWord int
}

// lastDict is the dictionary last built, with a copy of its levels: a
// dictionary is read-only once built, and every scanner of a policy load
// has the same levels, so NewScanner reuses it instead of building one per
// message (55 of the 363 allocations of an inbound message).
var lastDict atomic.Pointer[builtDict]

type builtDict struct {
	levels []Level
	dict   *dictionary
}

func newDictionary(levels []Level) (*dictionary, error) {
	if levels == nil {
		levels = DefaultLevels
	}
	if b := lastDict.Load(); b != nil && slices.Equal(b.levels, levels) {
		return b.dict, nil
	}
	d, err := buildDictionary(levels)
	if err == nil {
		lastDict.Store(&builtDict{levels: slices.Clone(levels), dict: d})
	}
	return d, err
}

func buildDictionary(levels []Level) (*dictionary, error) {
	if len(levels) == 0 {
		return nil, fmt.Errorf("%w: empty level list", ErrOptions)
	}
	d := &dictionary{}
	seen := map[string]bool{RSVPDR: true}
	for _, l := range levels {
		if err := checkWord(l.Word); err != nil {
			return nil, err
		}
		if seen[l.Word] {
			return nil, fmt.Errorf("%w: level %q listed twice or reserved", ErrOptions, l.Word)
		}
		if l.Rank < 0 {
			return nil, fmt.Errorf("%w: level %q has negative rank %d", ErrOptions, l.Word, l.Rank)
		}
		seen[l.Word] = true
		d.add(l.Word, l.Rank)
	}
	d.rsvpdr = len(d.words)
	d.add(RSVPDR, -1)
	return d, nil
}

func (d *dictionary) add(w string, rank int) {
	i := len(d.words)
	fw := foldWord(w) // compared with the normalised text (normalise.go)
	if len(fw) == 0 {
		fw = []byte(w)
	}
	d.words = append(d.words, fw)
	d.names = append(d.names, w)
	d.ranks = append(d.ranks, rank)
	d.byFirst[fw[0]] = append(d.byFirst[fw[0]], i)
	d.maxWord = max(d.maxWord, len(fw))
}

// checkWord enforces the trigger-word syntax that the matcher relies on.
func checkWord(w string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: level word %q: %s", ErrOptions, w, why)
	}
	switch {
	case w == "":
		return bad("empty")
	case len(w) > MaxWordLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxWordLen))
	case !utf8.ValidString(w):
		return bad("not UTF-8")
	case strings.TrimSpace(w) != w:
		return bad("leading or trailing space")
	}
	for _, r := range w {
		switch {
		case r == '[' || r == ']' || r == ':':
			return bad("contains a bracket or colon")
		case unicode.IsControl(r):
			return bad("contains a control character")
		case unicode.IsLower(r):
			return bad("not upper case (R30)")
		}
	}
	return nil
}

// collector accumulates the findings of one scan, bounded.
type collector struct {
	dict        *dictionary
	best        int // index of the deciding word, -1 when none
	rsvpdr      bool
	markings    []Marking
	seen        map[Marking]bool
	dropped     int
	problems    []string
	seenProblem map[string]bool
	dropProblem int
	unread      []string
	seenUnread  map[string]bool
	dropUnread  int
}

func newCollector(d *dictionary) *collector {
	return &collector{dict: d, best: -1, seen: map[Marking]bool{}, seenProblem: map[string]bool{}, seenUnread: map[string]bool{}}
}

// found records word index w. Highest rank wins; at equal rank the first
// found stays (R29: consistent handling).
func (c *collector) found(w int, endorsement, where string) {
	if w == c.dict.rsvpdr {
		c.rsvpdr = true
	} else if c.best < 0 || c.dict.ranks[w] > c.dict.ranks[c.best] {
		c.best = w
	}
	m := Marking{Word: c.dict.names[w], Endorsement: endorsement, Where: where}
	if c.seen[m] {
		return
	}
	if len(c.markings) >= MaxMarkings {
		c.dropped++
		return
	}
	c.seen[m] = true
	c.markings = append(c.markings, m)
}

// foundUnlisted records n findings of word w beyond what a second view
// lists (matcher.deferred): they count for the decision, not the list.
func (c *collector) foundUnlisted(w, n int) {
	if w == c.dict.rsvpdr {
		c.rsvpdr = true
	} else if c.best < 0 || c.dict.ranks[w] > c.dict.ranks[c.best] {
		c.best = w
	}
	c.dropped += n
}

func (c *collector) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	if c.seenProblem[p] {
		return
	}
	if len(c.problems) >= MaxProblems {
		c.dropProblem++
		return
	}
	c.seenProblem[p] = true
	c.problems = append(c.problems, p)
}

// unreadable records that part of the content could not be read in full
// (Result.Unreadable). The reason is also listed as a problem.
func (c *collector) unreadable(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	c.problem("%s", p)
	if c.seenUnread[p] {
		return
	}
	if len(c.unread) >= MaxProblems {
		c.dropUnread++
		return
	}
	c.seenUnread[p] = true
	c.unread = append(c.unread, p)
}

func (c *collector) result() Result {
	r := Result{Classification: Unclassified, RSVPDR: c.rsvpdr, Markings: c.markings}
	if c.best >= 0 {
		r.Classification = c.dict.names[c.best]
		r.Rank = c.dict.ranks[c.best]
	}
	if r.Markings == nil {
		r.Markings = []Marking{}
	}
	r.Problems = c.problems
	if c.dropped > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d further markings not listed", c.dropped))
	}
	if c.dropProblem > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d further problems not listed", c.dropProblem))
	}
	r.Unreadable = c.unread
	if c.dropUnread > 0 {
		r.Unreadable = append(r.Unreadable, fmt.Sprintf("%d further unreadable parts not listed", c.dropUnread))
	}
	return r
}
