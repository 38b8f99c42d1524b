// Package smime is RFC 3183 domain S/MIME between agency gateways, in the
// RFC 8551 message format: signing with our domain's DCA certificate,
// encrypting to a peer's, decrypting with any of our valid keys and
// verifying a peer's signature (R23-R26, R36-R38, R62-R72, R81-R89).
//
// Every input is bounded (MaxDER) and every call into the PKCS#7 library
// runs under recover: the library family panics on malformed input, and a
// malformed message must give a Table 1 outcome, never a crash.
package smime

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Sentinel errors; the errors returned wrap them with detail.
var (
	// ErrMalformed: the input is not well-formed PKCS#7/CMS of the
	// expected kind (Table 1: "the message cannot be parsed").
	ErrMalformed = errors.New("smime: malformed PKCS#7")
	// ErrTooLarge: the input is over MaxDER.
	ErrTooLarge = errors.New("smime: PKCS#7 input too large")
	// ErrNotForUs: the enveloped data names none of our certificates
	// (R80: unknown encrypted mail).
	ErrNotForUs = errors.New("smime: encrypted to none of our certificates")
	// ErrDecrypt: a recipient info names our certificate but the content
	// does not decrypt with its key.
	ErrDecrypt = errors.New("smime: decryption failed")
	// ErrSignature: the signature does not verify over the content.
	ErrSignature = errors.New("smime: signature does not verify")
	// ErrUnsupported: an algorithm this package does not implement.
	ErrUnsupported = errors.New("smime: unsupported algorithm")
	// ErrNoIdentity: no usable certificate and key of our own (Table 1,
	// sending column: "no valid certificate of our own").
	ErrNoIdentity = errors.New("smime: no usable identity")
	// ErrInternal: a recovered panic in the PKCS#7 library.
	ErrInternal = errors.New("smime: internal error in the PKCS#7 library")
)

// MaxDER bounds every DER input (a message's PKCS#7 blob after base64
// decoding). The milter's own limit (limits.max_message_size) is 64 MiB by
// default; S/MIME content is at most that, and base64 costs a third.
const MaxDER = 64 << 20

// guard runs f and turns a panic into ErrInternal, so that no malformed
// input can take the session down.
func guard(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := string(debug.Stack())
			if len(stack) > 1024 {
				stack = stack[:1024]
			}
			err = fmt.Errorf("%w: %s: %v\n%s", ErrInternal, what, v, stack)
		}
	}()
	return f()
}

func checkSize(der []byte) error {
	if len(der) > MaxDER {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(der), MaxDER)
	}
	if len(der) == 0 {
		return fmt.Errorf("%w: empty input", ErrMalformed)
	}
	return nil
}
