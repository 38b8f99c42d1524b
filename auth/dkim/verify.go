package dkim

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// DefaultMaxSignatures is the default VerifyOptions.MaxSignatures.
const DefaultMaxSignatures = 10

// LookupTXTFunc returns the TXT records at name, one string per record
// (its character-strings concatenated, RFC 6376 section 3.6.2.2). Errors
// must wrap dnserr.ErrNotFound for NXDOMAIN and NODATA; any other error
// is taken as temporary. (*dnsresolver.Resolver).LookupTXT and
// (*dnstest.Zone).LookupTXT fit.
type LookupTXTFunc func(ctx context.Context, name string) ([]string, error)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// LookupTXT fetches key records (selector._domainkey.domain). When
	// nil, net.DefaultResolver is used.
	LookupTXT LookupTXTFunc
	// MaxSignatures bounds the signatures verified, in header order
	// (RFC 6376 section 6.1 lets verifiers limit them); those beyond get
	// Neutral. 0 means DefaultMaxSignatures, a negative value no limit.
	MaxSignatures int
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// replayFields are the header fields a reader sees or a client acts on.
// When a signature covers one of them and the message holds more instances
// than the signature signs, an unsigned instance was added (above the
// signed ones: signed instances are picked from the bottom) and a mail
// client shows the unsigned one: RFC 6376 section 8.15 header replay. Such
// a signature is Policy, never Pass. Trace fields (Received) are not here:
// every hop adds them.
var replayFields = []string{
	"from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id",
	"mime-version", "content-type", "content-transfer-encoding",
}

// sigState is one signature under verification.
type sigState struct {
	sig      *Signature
	field    string            // the raw DKIM-Signature field
	tags     map[string]string // strict parse; nil when the signature is unusable
	keys     []string          // h=, as written
	relaxedH bool
	relaxedB bool
	bh, b    []byte
	body     *bodyHash
	done     bool // Result is final
}

// bodyHash is one body hash computed as the body streams: per body
// canonicalization and l= value, shared by signatures that have the same.
type bodyHash struct {
	relaxed bool
	limit   int64 // -1: whole body
	h       hash.Hash
}

func (s *sigState) final(r Result, err error) {
	s.sig.Result, s.sig.Err, s.done = r, err, true
}

// Verify verifies every DKIM-Signature of the message read from r (header
// and body, lines ending in CRLF or LF) and returns one Signature per
// field, in header order; none when the message is unsigned (the caller
// reports dkim=none). The error is non-nil only when the message cannot
// be read (I/O error, header without end); signature problems are in the
// results, temporary DNS failures as TempError.
//
// The body is read once, whatever the number of signatures: one hash per
// distinct body canonicalization and l= (at most MaxSignatures of them),
// so memory and time do not grow with a flood of signatures.
func Verify(ctx context.Context, r io.Reader, opts VerifyOptions) ([]Signature, error) {
	br := bufio.NewReaderSize(ctxReader{ctx, r}, 8<<10)
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}

	var sigs []Signature
	var fields []string
	for _, f := range h {
		if strings.EqualFold(fieldName(f), "DKIM-Signature") {
			sigs = append(sigs, describe(fieldValue(f)))
			fields = append(fields, f)
		}
	}
	if len(sigs) == 0 {
		return nil, nil
	}
	setHeaderB(sigs)

	limit := opts.MaxSignatures
	if limit == 0 {
		limit = DefaultMaxSignatures
	}
	lookup := opts.LookupTXT
	if lookup == nil {
		lookup = dnserr.SystemLookupTXT
	}

	var states []*sigState
	var hashes []*bodyHash
	for i := range sigs {
		if limit > 0 && i >= limit {
			sigs[i].Result = Neutral
			sigs[i].Err = fmt.Errorf("%w: only the first %d are verified", ErrNotVerified, limit)
			continue
		}
		s := &sigState{sig: &sigs[i], field: fields[i]}
		states = append(states, s)
		if err := s.parse(); err != nil {
			s.final(PermError, err)
			continue
		}
		lim := int64(-1)
		if sigs[i].BodyLengthLimited {
			lim = sigs[i].BodyLength
		}
		for _, bh := range hashes {
			if bh.relaxed == s.relaxedB && bh.limit == lim {
				s.body = bh
			}
		}
		if s.body == nil {
			s.body = &bodyHash{relaxed: s.relaxedB, limit: lim, h: sha256.New()}
			hashes = append(hashes, s.body)
		}
	}

	// The body, once, through at most two canonicalizers.
	var canons [2]*bodyCanon // simple, relaxed
	var writers [2][]io.Writer
	for _, bh := range hashes {
		k := 0
		if bh.relaxed {
			k = 1
		}
		writers[k] = append(writers[k], &limitWriter{w: bh.h, n: bh.limit})
	}
	var outs []io.Writer
	for k := range canons {
		if len(writers[k]) > 0 {
			canons[k] = newBodyCanon(io.MultiWriter(writers[k]...), k == 1)
			outs = append(outs, canons[k])
		}
	}
	if len(outs) == 0 {
		// No signature needs the body (all unusable or beyond the limit).
	} else if _, err := io.Copy(io.MultiWriter(outs...), br); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("dkim: %w", cerr)
		}
		return nil, fmt.Errorf("dkim: reading message: %w", err)
	}
	for _, c := range canons {
		if c != nil {
			if err := c.Close(); err != nil {
				return nil, fmt.Errorf("dkim: %w", err)
			}
		}
	}

	keys := map[string]keyAnswer{}
	hx := indexHeader(h)
	for _, s := range states {
		if s.done {
			continue
		}
		total := canons[0]
		if s.relaxedB {
			total = canons[1]
		}
		s.verify(ctx, hx, total.n, keys, lookup)
		if s.sig.Result == Pass {
			checkReplay(s, hx)
		}
		if s.sig.Result != Pass && s.sig.Result != TempError && ctx.Err() != nil {
			// A cancelled context can surface as any error: never let it
			// become a final verdict.
			s.final(TempError, fmt.Errorf("%w: %v", ErrTempFail, ctx.Err()))
		}
	}
	return sigs, nil
}

// requiredTags: RFC 6376 section 3.5.
var requiredTags = []string{"v", "a", "b", "bh", "d", "h", "s"}

// parse checks the signature's tags strictly (RFC 6376 section 6.1.1).
func (s *sigState) parse() error {
	perm := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrPermFail, fmt.Sprintf(format, a...))
	}
	tags, err := strictTags(fieldValue(s.field))
	if err != nil {
		return perm("malformed signature tags: %v", err)
	}
	if tags["v"] != "1" {
		return perm("incompatible signature version")
	}
	for _, t := range requiredTags {
		if _, ok := tags[t]; !ok {
			return perm("signature missing required tag %s=", t)
		}
	}
	d := strings.ToLower(stripFWS(tags["d"]))
	if i, ok := tags["i"]; ok {
		_, idom, ok := strings.Cut(stripFWS(i), "@")
		idom = strings.ToLower(idom)
		if !ok || (idom != d && !strings.HasSuffix(idom, "."+d)) {
			return perm("domain mismatch: i= is not in d=%s", d)
		}
	}
	for _, k := range strings.Split(tags["h"], ":") {
		if k = stripFWS(k); k != "" {
			s.keys = append(s.keys, k)
		}
	}
	if !slices.ContainsFunc(s.keys, func(k string) bool { return strings.EqualFold(k, "from") }) {
		return perm("From field not signed")
	}
	alg := strings.ToLower(stripFWS(tags["a"]))
	switch alg {
	case "rsa-sha256", "ed25519-sha256":
	case "rsa-sha1":
		// RFC 8301 section 3.1: rsa-sha1 MUST NOT be used for verifying.
		return perm("hash algorithm too weak: sha1")
	default:
		return perm("unsupported algorithm %q", message.Clip(alg, 40))
	}
	if x, ok := tags["x"]; ok {
		n, err := strconv.ParseInt(stripFWS(x), 10, 64)
		if err != nil {
			return perm("malformed expiration time")
		}
		if now().After(time.Unix(n, 0)) {
			return perm("signature has expired")
		}
	}
	if ts, ok := tags["t"]; ok {
		if _, err := strconv.ParseInt(stripFWS(ts), 10, 64); err != nil {
			return perm("malformed time")
		}
	}
	if q, ok := tags["q"]; ok && !slices.Contains(strings.Split(stripFWS(q), ":"), "dns/txt") {
		return perm("unsupported public key query method")
	}
	hc, bc, _ := strings.Cut(stripFWS(tags["c"]), "/")
	for _, c := range []*string{&hc, &bc} {
		switch *c {
		case "", Simple:
		case Relaxed:
		default:
			return perm("unsupported canonicalization %q", message.Clip(*c, 40))
		}
	}
	s.relaxedH, s.relaxedB = hc == Relaxed, bc == Relaxed
	if l, ok := tags["l"]; ok {
		if n, err := strconv.ParseInt(stripFWS(l), 10, 64); err != nil || n < 0 {
			return perm("malformed body length l=")
		}
	}
	if s.bh, err = base64.StdEncoding.DecodeString(stripFWS(tags["bh"])); err != nil {
		return perm("malformed body hash")
	}
	if s.b, err = base64.StdEncoding.DecodeString(stripFWS(tags["b"])); err != nil {
		return perm("malformed signature")
	}
	s.tags = tags
	return nil
}

// now is time.Now, replaceable by tests.
var now = time.Now

// strictTags parses a tag-list (RFC 6376 section 3.2): a duplicate tag or
// a spec without "=" is an error.
func strictTags(s string) (map[string]string, error) {
	tags := map[string]string{}
	for _, spec := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			if strings.TrimSpace(spec) == "" {
				continue
			}
			return nil, errors.New("tag without =")
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("duplicate tag %q", message.Clip(k, 20))
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}

// keyAnswer is the lookup of one key name, shared by the signatures that
// name it.
type keyAnswer struct {
	txts []string
	err  error
}

// verify finishes one parsed signature: body hash, key records, signature.
func (s *sigState) verify(ctx context.Context, hx headerIndex, bodyLen int64, cache map[string]keyAnswer, lookup LookupTXTFunc) {
	sig := s.sig
	if sig.BodyLengthLimited && sig.BodyLength > bodyLen {
		// RFC 6376 section 6.1.3: l= longer than the body cannot be right.
		s.final(Fail, fmt.Errorf("%w: l=%d is longer than the body (%d bytes)", ErrFail, sig.BodyLength, bodyLen))
		return
	}
	if subtle.ConstantTimeCompare(s.body.h.Sum(nil), s.bh) != 1 {
		s.final(Fail, fmt.Errorf("%w: body hash did not verify", ErrFail))
		return
	}

	// The header hash (RFC 6376 section 3.7): the h= fields, each instance
	// picked from the bottom up; names without a further instance add
	// nothing; then this signature field with b= empty, without its CRLF.
	hh := sha256.New()
	used := map[string]int{}
	for _, k := range s.keys {
		lk := strings.ToLower(k)
		if f := hx.pick(lk, used[lk]); f != "" {
			hh.Write([]byte(canonHeader(f, s.relaxedH)))
		}
		used[lk]++
	}
	self := strings.TrimRight(canonHeader(withoutB(s.field), s.relaxedH), "\r\n")
	hh.Write([]byte(self))
	digest := hh.Sum(nil)

	domain := strings.ToLower(stripFWS(s.tags["d"]))
	name := stripFWS(s.tags["s"]) + "._domainkey." + domain
	ans, ok := cache[name]
	if !ok {
		ans.txts, ans.err = lookup(ctx, name)
		cache[name] = ans
	}
	if ans.err != nil {
		if dnserr.IsNotFound(ans.err) && ctx.Err() == nil {
			// RFC 6376 section 6.1.2 step 3: no key record is PERMFAIL.
			s.final(PermError, fmt.Errorf("%w: no key for signature: %v", ErrPermFail, ans.err))
		} else {
			// Step 2: any other failure is TEMPFAIL, key unavailable.
			s.final(TempError, fmt.Errorf("%w: key unavailable: %v", ErrTempFail, ans.err))
		}
		return
	}
	if len(ans.txts) == 0 {
		s.final(PermError, fmt.Errorf("%w: no key for signature", ErrPermFail))
		return
	}
	alg := strings.ToLower(stripFWS(s.tags["a"]))
	_, idom, _ := strings.Cut(sig.Identifier, "@")
	subdomainAUID := !strings.EqualFold(idom, domain)

	// RFC 6376 section 3.6.2.2 leaves several records undefined: each is
	// tried in turn and the signature passes when one key verifies it
	// (a key being rolled over, or a stray non-DKIM record at the name).
	var keyErr error
	verified, tried := false, false
	for _, txt := range ans.txts {
		k, err := parseKey(txt)
		if err == nil {
			err = k.usable(alg, subdomainAUID)
		}
		if err != nil {
			if keyErr == nil {
				keyErr = err
			}
			continue
		}
		tried = true
		if k.verify(digest, s.b) {
			verified = true
			break
		}
	}
	switch {
	case verified:
		if sig.BodyLengthLimited && sig.BodyLength < bodyLen {
			// RFC 6376 section 8.2: content may have been appended after
			// the signed part (RFC 8601 "policy"). An l= that covers the
			// whole body signs all of it: a pass like any other.
			s.final(Policy, fmt.Errorf("%w (l=%d of %d bytes)", ErrBodyLength, sig.BodyLength, bodyLen))
			return
		}
		s.final(Pass, nil)
	case tried:
		s.final(Fail, fmt.Errorf("%w: signature did not verify", ErrFail))
	default:
		s.final(PermError, fmt.Errorf("%w: %v", ErrPermFail, keyErr))
	}
}

// headerIndex finds header fields by lower-case name without scanning the
// header for every h= entry (an h= of thousands of names over thousands of
// fields must not cost their product).
type headerIndex struct {
	h    []string
	byLC map[string][]int // positions, top to bottom
}

func indexHeader(h []string) headerIndex {
	x := headerIndex{h: h, byLC: map[string][]int{}}
	for i, f := range h {
		k := strings.ToLower(fieldName(f))
		x.byLC[k] = append(x.byLC[k], i)
	}
	return x
}

// pick returns the (skip+1)-th field named lname from the bottom of the
// header (RFC 6376 section 5.4.2), "" when there is none.
func (x headerIndex) pick(lname string, skip int) string {
	at := x.byLC[lname]
	if skip >= len(at) {
		return ""
	}
	return x.h[at[len(at)-1-skip]]
}

// checkReplay turns a pass into Policy when the message holds more
// instances of a covered replayFields field than the signature signs
// (RFC 6376 section 8.15).
func checkReplay(s *sigState, hx headerIndex) {
	signed := map[string]int{}
	for _, k := range s.keys {
		signed[strings.ToLower(k)]++
	}
	for _, name := range replayFields {
		n := signed[name]
		if n == 0 {
			continue
		}
		if have := len(hx.byLC[name]); have > n {
			s.final(Policy, fmt.Errorf("%w: the message has %d %s fields, the signature covers %d (RFC 6376 section 8.15)", ErrHeaderReplay, have, name, n))
			return
		}
	}
}

// describe reads the tags of a DKIM-Signature value for reporting.
func describe(value string) Signature {
	t := parseTags(value)
	s := Signature{
		Domain:           strings.ToLower(stripFWS(t["d"])),
		Selector:         stripFWS(t["s"]),
		Algorithm:        strings.ToLower(stripFWS(t["a"])),
		Canonicalization: stripFWS(t["c"]),
		HeaderB:          stripFWS(t["b"]),
		BodyLength:       -1,
	}
	if s.Canonicalization == "" {
		s.Canonicalization = "simple/simple" // RFC 6376 section 3.5, c=
	}
	if i, ok := t["i"]; ok {
		s.Identifier = stripFWS(i)
	} else if s.Domain != "" {
		s.Identifier = "@" + s.Domain
	}
	if l, ok := t["l"]; ok {
		s.BodyLengthLimited = true
		if n, err := strconv.ParseInt(stripFWS(l), 10, 64); err == nil && n >= 0 {
			s.BodyLength = n
		}
	}
	if h, ok := t["h"]; ok {
		for _, k := range strings.Split(h, ":") {
			if k = strings.TrimSpace(k); k != "" {
				s.SignedHeaders = append(s.SignedHeaders, k)
			}
		}
	}
	if ts, ok := t["t"]; ok {
		if n, err := strconv.ParseInt(stripFWS(ts), 10, 64); err == nil {
			s.Time = time.Unix(n, 0)
		}
	}
	if xs, ok := t["x"]; ok {
		if n, err := strconv.ParseInt(stripFWS(xs), 10, 64); err == nil {
			s.Expiration = time.Unix(n, 0)
		}
	}
	return s
}

// setHeaderB shortens each b= value to the shortest prefix of at least
// HeaderBMinLength characters that no other signature of the message
// shares (RFC 6008 section 4). A prefix is shared exactly when it is no
// longer than the common prefix with another value, and the longest common
// prefixes are with the neighbours in sorted order: O(n log n), whatever a
// flood of look-alike signatures holds.
func setHeaderB(sigs []Signature) {
	order := make([]int, len(sigs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sigs[order[a]].HeaderB < sigs[order[b]].HeaderB })
	need := make([]int, len(sigs))
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		l := commonPrefix(sigs[a].HeaderB, sigs[b].HeaderB)
		need[a] = max(need[a], l+1)
		need[b] = max(need[b], l+1)
	}
	for i := range sigs {
		if n := max(need[i], HeaderBMinLength); n < len(sigs[i].HeaderB) {
			sigs[i].HeaderB = sigs[i].HeaderB[:n]
		}
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
