package dkim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
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

// tempDNSError is how a temporary lookup failure reaches go-msgauth: it
// maps a net.Error whose Temporary() is true to TEMPFAIL ("key
// unavailable") and every other error to PERMFAIL ("no key").
type tempDNSError struct{ err error }

func (e tempDNSError) Error() string   { return e.err.Error() }
func (e tempDNSError) Unwrap() error   { return e.err }
func (e tempDNSError) Timeout() bool   { return errors.Is(e.err, context.DeadlineExceeded) }
func (e tempDNSError) Temporary() bool { return true }

var _ net.Error = tempDNSError{}

// keyLookup adapts a context-aware lookup to go-msgauth's: NXDOMAIN and
// NODATA stay permanent (RFC 6376 section 6.1.2 step 3: no key record is
// PERMFAIL); everything else becomes temporary (section 6.1.2 step 2).
func keyLookup(ctx context.Context, lookup LookupTXTFunc) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txts, err := lookup(ctx, name)
		if err == nil {
			return txts, nil
		}
		if dnserr.IsNotFound(err) && ctx.Err() == nil {
			return nil, err
		}
		return nil, tempDNSError{err}
	}
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

// eofOnError hides read errors from go-msgauth behind io.EOF and keeps
// them for Verify: with several signatures go-msgauth (v0.7.0) returns on
// a read error without closing the pipes of its per-signature goroutines,
// which would then block for ever.
type eofOnError struct {
	r   io.Reader
	err error
}

func (e *eofOnError) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
		return n, io.EOF
	}
	return n, err
}

// Verify verifies every DKIM-Signature of the message read from r (header
// and body, lines ending in CRLF or LF) and returns one Signature per
// field, in header order; none when the message is unsigned (the caller
// reports dkim=none). The error is non-nil only when the message cannot
// be read (I/O error, header without end); signature problems are in the
// results, temporary DNS failures as TempError.
func Verify(ctx context.Context, r io.Reader, opts VerifyOptions) ([]Signature, error) {
	br := bufio.NewReaderSize(ctxReader{ctx, r}, 8<<10)
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}

	var sigs []Signature
	for _, f := range h {
		if strings.EqualFold(fieldName(f), "DKIM-Signature") {
			sigs = append(sigs, describe(fieldValue(f)))
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
	mopts := &msgdkim.VerifyOptions{LookupTXT: keyLookup(ctx, lookup)}
	if limit > 0 {
		mopts.MaxVerifications = limit
	}

	body := &eofOnError{r: br}
	in := io.MultiReader(strings.NewReader(joinHeader(h)), body)
	verifs, err := msgdkim.VerifyWithOptions(in, mopts)
	if body.err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("dkim: %w", cerr)
		}
		return nil, fmt.Errorf("dkim: reading message: %w", body.err)
	}
	if err != nil && !errors.Is(err, msgdkim.ErrTooManySignatures) {
		return nil, fmt.Errorf("dkim: verifying: %w", err)
	}
	if len(verifs) > len(sigs) {
		// Cannot happen: both sides split the same header fields.
		return nil, fmt.Errorf("dkim: %d verifications for %d signatures", len(verifs), len(sigs))
	}
	for i := range sigs {
		if i >= len(verifs) {
			sigs[i].Result = Neutral
			sigs[i].Err = fmt.Errorf("%w: only the first %d are verified", ErrNotVerified, limit)
			continue
		}
		classify(ctx, &sigs[i], verifs[i])
	}
	return sigs, nil
}

// classify maps go-msgauth's verdict on one signature onto RFC 8601
// results.
func classify(ctx context.Context, s *Signature, v *msgdkim.Verification) {
	if v.Domain != "" {
		s.Domain = strings.ToLower(v.Domain)
	}
	if v.Identifier != "" {
		s.Identifier = v.Identifier
	}
	err := v.Err
	switch {
	case err == nil:
		s.Result = Pass
	case msgdkim.IsTempFail(err):
		s.Result = TempError
		s.Err = fmt.Errorf("%w: %s", ErrTempFail, trimPrefix(err))
	case msgdkim.IsPermFail(err):
		s.Result = PermError
		s.Err = fmt.Errorf("%w: %s", ErrPermFail, trimPrefix(err))
	case s.BodyLengthLimited && strings.Contains(err.Error(), "body length"):
		// RFC 6376 section 8.2: with l= an attacker can append content
		// that the signature does not cover; go-msgauth refuses such
		// signatures before checking them (RFC 8601 "policy").
		s.Result = Policy
		s.Err = fmt.Errorf("%w (l=%d)", ErrBodyLength, s.BodyLength)
	default:
		s.Result = Fail
		s.Err = fmt.Errorf("%w: %s", ErrFail, trimPrefix(err))
	}
	if s.Result != Pass && s.Result != TempError && ctx.Err() != nil {
		// A cancelled context can surface as any error: never let it
		// become a final verdict.
		s.Result = TempError
		s.Err = fmt.Errorf("%w: %v", ErrTempFail, ctx.Err())
	}
}

func trimPrefix(err error) string {
	return strings.TrimPrefix(err.Error(), "dkim: ")
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
// shares (RFC 6008 section 4).
func setHeaderB(sigs []Signature) {
	full := make([]string, len(sigs))
	for i := range sigs {
		full[i] = sigs[i].HeaderB
	}
	for i, b := range full {
		n := HeaderBMinLength
		for n < len(b) {
			unique := true
			for j, o := range full {
				if j != i && strings.HasPrefix(o, b[:n]) {
					unique = false
					break
				}
			}
			if unique {
				break
			}
			n++
		}
		if n < len(b) {
			sigs[i].HeaderB = b[:n]
		}
	}
}
