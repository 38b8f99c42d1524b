// Package dkim verifies and creates DKIM signatures (RFC 6376) with
// RSA-SHA256 and Ed25519-SHA256 (RFC 8463). Signing uses
// github.com/emersion/go-msgauth/dkim; verification is our own (verify.go),
// because go-msgauth refuses every l= and every selector with two TXT
// records, ignores t=s, and cannot see header replay (RFC 6376 8.15).
//
// Verification takes the whole message as an io.Reader (the milter spools
// the body and hands over headers+body at end of message) and reports one
// Signature per DKIM-Signature header field, in header order, with a
// result in the vocabulary of RFC 8601 section 2.7.1. Public keys are
// looked up through an injected TXT lookup (the project's caching resolver,
// auth/dnsresolver), and a temporary DNS failure comes out as temperror,
// never as fail, so that the caller can answer 4xx.
//
// Signing returns the DKIM-Signature header field values to prepend (one
// per key: RSA and, optionally, Ed25519 for dual signing, RFC 8463 section
// 4), computed over the message as it will be delivered.
package dkim

import (
	"errors"
	"strings"
	"time"
)

// Result is the outcome of verifying one signature, named as in the
// Authentication-Results registry (RFC 8601 section 2.7.1).
type Result string

// Results of RFC 8601 section 2.7.1 for the "dkim" method.
const (
	// None: the message carries no signature (never in a Signature; for
	// the caller's Authentication-Results).
	None Result = "none"
	// Pass: the signature verified (RFC 6376 section 6.1: SUCCESS).
	Pass Result = "pass"
	// Fail: the signature or the body hash did not verify (RFC 6376
	// section 6.1: PERMFAIL, signature did not verify).
	Fail Result = "fail"
	// Policy: the signature is valid but not acceptable here: its l=
	// body length limit leaves part of the body unsigned (RFC 6376
	// section 8.2: content may have been appended after the signed part),
	// or the message holds unsigned instances of a signed header field
	// above the signed ones (section 8.15, header replay).
	Policy Result = "policy"
	// Neutral: the signature was not evaluated (more signatures than
	// VerifyOptions.MaxSignatures, RFC 6376 section 6.1 allows a limit).
	Neutral Result = "neutral"
	// TempError: the key could not be retrieved now (RFC 6376 section
	// 6.1.2 step 2: TEMPFAIL, key unavailable); a later try may succeed.
	TempError Result = "temperror"
	// PermError: the signature or its key record is unusable: missing
	// tags, unsupported or weak algorithm (rsa-sha1, RFC 8301 section
	// 3.1), no key record, revoked key (p= empty), key too short (RFC
	// 8301 section 3.2), expired signature (RFC 6376 section 6.1.1).
	PermError Result = "permerror"
)

// Sentinel errors wrapped by Signature.Err (check with errors.Is).
var (
	// ErrFail: the signature or body hash did not verify.
	ErrFail = errors.New("dkim: signature did not verify")
	// ErrPermFail: a permanent error (RFC 6376 section 6.1: PERMFAIL).
	ErrPermFail = errors.New("dkim: permanent error")
	// ErrTempFail: the public key could not be retrieved now (RFC 6376
	// section 6.1.2: TEMPFAIL).
	ErrTempFail = errors.New("dkim: temporary error")
	// ErrBodyLength: the signature has an l= tag shorter than the body
	// (RFC 6376 section 3.5 and 8.2): the rest of the body is unsigned.
	ErrBodyLength = errors.New("dkim: body length limit (l=) not accepted")
	// ErrHeaderReplay: the signature verifies, but the message holds more
	// instances of a covered field than it signs (RFC 6376 section 8.15):
	// an unsigned From:, Subject: ... was added above the signed ones.
	ErrHeaderReplay = errors.New("dkim: unsigned instance of a signed header field")
	// ErrNotVerified: the signature was beyond MaxSignatures.
	ErrNotVerified = errors.New("dkim: signature not evaluated (too many signatures)")
)

// Errors returned by the signing and key functions.
var (
	// ErrNoFrom: the message to sign has no From header field, which
	// RFC 6376 section 5.4 requires to be signed.
	ErrNoFrom = errors.New("dkim: message has no From header field")
	// ErrMalformedHeader: the message header could not be read.
	ErrMalformedHeader = errors.New("dkim: malformed message header")
	// ErrBadPEM: the key file is not a PEM private key we can read.
	ErrBadPEM = errors.New("dkim: bad PEM private key")
	// ErrWeakKey: an RSA key shorter than MinRSABits.
	ErrWeakKey = errors.New("dkim: RSA key too short")
	// ErrUnsupportedKey: a key that is neither RSA nor Ed25519.
	ErrUnsupportedKey = errors.New("dkim: unsupported key type")
	// ErrBadOption: an invalid signing option, domain or selector.
	ErrBadOption = errors.New("dkim: invalid signing option")
)

// MinRSABits is the smallest RSA key we sign with. RFC 8301 section 3.2
// says signers MUST use at least 1024 bits and SHOULD use 2048; the SGE
// framework and current practice want 2048.
const MinRSABits = 2048

// HeaderBMinLength is the shortest header.b prefix reported (RFC 6008
// section 4: at least 8 characters).
const HeaderBMinLength = 8

// Signature is the verification result of one DKIM-Signature field.
type Signature struct {
	Result Result
	// Domain is the d= tag (SDID), lower-cased.
	Domain string
	// Selector is the s= tag.
	Selector string
	// Identifier is the i= tag (AUID); "@"+Domain when absent (RFC 6376
	// section 3.5).
	Identifier string
	// Algorithm is the a= tag, e.g. "rsa-sha256" or "ed25519-sha256".
	Algorithm string
	// Canonicalization is the c= tag as written ("relaxed/relaxed").
	Canonicalization string
	// HeaderB is the shortest prefix of the b= value, at least
	// HeaderBMinLength characters, that tells this signature apart from
	// the message's others (RFC 6008 section 4); for header.b.
	HeaderB string
	// BodyLengthLimited is true when the signature has an l= tag (RFC
	// 6376 section 3.5); BodyLength is its value (-1 if absent or
	// unreadable).
	BodyLengthLimited bool
	BodyLength        int64
	// SignedHeaders are the h= field names as written.
	SignedHeaders []string
	// Time (t=) and Expiration (x=); zero when absent.
	Time, Expiration time.Time
	// Err is nil on Pass; otherwise it wraps ErrFail, ErrPermFail,
	// ErrTempFail, ErrBodyLength or ErrNotVerified.
	Err error
}

// Reason is Err's text without the "dkim: " prefixes, for a reason= or a
// log field; "" on pass.
func (s Signature) Reason() string {
	if s.Err == nil {
		return ""
	}
	return strings.ReplaceAll(s.Err.Error(), "dkim: ", "")
}
