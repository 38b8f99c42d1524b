// Package dnserr holds the two sentinel errors every DNS lookup in the
// project is classified into, so that the SPF evaluator, the DNS resolver
// and the test resolvers agree without importing one another.
//
// A lookup error wraps exactly one of them (check with errors.Is):
//
//   - ErrNotFound: the name does not exist (NXDOMAIN, RCODE 3) or exists but
//     has no record of the asked type (NODATA: NOERROR with an empty answer).
//     RFC 7208 section 4.6.4 calls both a "void lookup".
//   - ErrTemporary: the answer could not be obtained: SERVFAIL (RCODE 2),
//     REFUSED or another RCODE, a timeout, a network error. RFC 7208
//     section 2.6.6 maps these to "temperror".
package dnserr

import (
	"context"
	"errors"
	"fmt"
	"net"
)

var (
	// ErrNotFound reports NXDOMAIN or NODATA.
	ErrNotFound = errors.New("no such DNS record")
	// ErrTemporary reports SERVFAIL, another failing RCODE, a timeout or a
	// network error.
	ErrTemporary = errors.New("temporary DNS failure")
)

// IsNotFound reports whether err wraps ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsTemporary reports whether err wraps ErrTemporary.
func IsTemporary(err error) bool { return errors.Is(err, ErrTemporary) }

// SystemLookupTXT looks up TXT records through the system resolver
// (net.DefaultResolver), classifying its errors as ErrNotFound or
// ErrTemporary. It is the default of packages whose lookups are injectable.
func SystemLookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := net.DefaultResolver.LookupTXT(ctx, name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTemporary, err)
	}
	return txts, nil
}
