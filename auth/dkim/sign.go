package dkim

import (
	"bufio"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// DefaultSignedHeaders are the header fields signed by default: those RFC
// 6376 section 5.4.1 recommends that a typical message has, plus our
// X-NZ-Secure-email marking (R60). A field is listed in h= once per
// occurrence in the message.
var DefaultSignedHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "X-NZ-Secure-email",
}

// DefaultOversignedHeaders are listed in h= once more than they occur
// (RFC 6376 section 8.15), so that a second From: added in transit breaks
// the signature.
var DefaultOversignedHeaders = []string{"From"}

// Canonicalization names (RFC 6376 section 3.4).
const (
	Simple  = "simple"
	Relaxed = "relaxed"
)

// Key is one signing key: its selector and private key (*rsa.PrivateKey
// of at least MinRSABits, or ed25519.PrivateKey).
type Key struct {
	Selector string
	Signer   crypto.Signer
}

// Algorithm returns the a= value the key signs with: "rsa-sha256" or
// "ed25519-sha256" (RFC 8463 section 3), or "" for an unsupported key.
func (k Key) Algorithm() string {
	if k.Signer == nil {
		return ""
	}
	switch k.Signer.Public().(type) {
	case *rsa.PublicKey:
		return "rsa-sha256"
	case ed25519.PublicKey:
		return "ed25519-sha256"
	}
	return ""
}

// check refuses keys we must not sign with.
func (k Key) check() error {
	if err := checkLabel("selector", k.Selector); err != nil {
		return err
	}
	if k.Signer == nil {
		return fmt.Errorf("%w: selector %q has no key", ErrBadOption, k.Selector)
	}
	switch pub := k.Signer.Public().(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return fmt.Errorf("%w: selector %q: %d bits, need %d (RFC 8301 section 3.2)", ErrWeakKey, k.Selector, bits, MinRSABits)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("%w: selector %q: %T", ErrUnsupportedKey, k.Selector, pub)
	}
	return nil
}

// SignOptions configures signing. The zero value gives the defaults.
type SignOptions struct {
	// Headers are the header fields to sign; nil means
	// DefaultSignedHeaders. From is always signed (RFC 6376 section 5.4).
	Headers []string
	// Oversign are the fields listed once more than they occur (and so
	// signed even when absent); nil means DefaultOversignedHeaders, an
	// empty non-nil slice none. They are signed too.
	Oversign []string
	// HeaderCanonicalization and BodyCanonicalization are Simple or
	// Relaxed; "" means Relaxed.
	HeaderCanonicalization, BodyCanonicalization string
	// Identifier is the optional i= tag (AUID, RFC 6376 section 3.5); it
	// must be in the signing domain or a subdomain.
	Identifier string
	// Expiration, when positive, adds x= (signing time plus Expiration).
	Expiration time.Duration
}

// Signer signs messages of one domain with one or more keys; safe for
// concurrent use.
type Signer struct {
	domain     string
	keys       []Key
	headers    []string // effective sign list, configured spelling, no duplicates
	oversign   map[string]bool
	hcan, bcan msgdkim.Canonicalization
	identifier string
	expiration time.Duration
}

// NewSigner checks the domain, keys and options once.
func NewSigner(domain string, keys []Key, opts SignOptions) (*Signer, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key for %s", ErrBadOption, domain)
	}
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
	}
	s := &Signer{domain: domain, keys: append([]Key(nil), keys...), oversign: map[string]bool{},
		identifier: opts.Identifier, expiration: opts.Expiration}
	var err error
	if s.hcan, err = canonicalization(opts.HeaderCanonicalization); err != nil {
		return nil, err
	}
	if s.bcan, err = canonicalization(opts.BodyCanonicalization); err != nil {
		return nil, err
	}
	if s.identifier != "" {
		_, idDomain, ok := strings.Cut(s.identifier, "@")
		idDomain = strings.ToLower(idDomain)
		if !ok || (idDomain != domain && !strings.HasSuffix(idDomain, "."+domain)) || strings.ContainsAny(s.identifier, " \t\r\n;") {
			return nil, fmt.Errorf("%w: identifier %q is not in %s (RFC 6376 section 3.5, i=)", ErrBadOption, s.identifier, domain)
		}
	}
	headers, oversign := opts.Headers, opts.Oversign
	if headers == nil {
		headers = DefaultSignedHeaders
	}
	if oversign == nil {
		oversign = DefaultOversignedHeaders
	}
	seen := map[string]bool{}
	add := func(name string) error {
		name = strings.TrimSpace(name)
		if !message.ValidFieldName(name) {
			return fmt.Errorf("%w: bad header field name %q", ErrBadOption, name)
		}
		if !seen[strings.ToLower(name)] {
			seen[strings.ToLower(name)] = true
			s.headers = append(s.headers, name)
		}
		return nil
	}
	if err := add("From"); err != nil {
		return nil, err
	}
	for _, list := range [][]string{headers, oversign} {
		for _, name := range list {
			if err := add(name); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range oversign {
		s.oversign[strings.ToLower(strings.TrimSpace(name))] = true
	}
	return s, nil
}

// Sign signs the message read from r (the whole message after all other
// header changes) with every key and returns the DKIM-Signature field
// values to prepend, in key order, without the field name. Values are
// folded with CRLF + SP (RFC 5322 section 2.2.3); a relaxed header
// canonicalization (the default) makes the folding and the space after
// the colon irrelevant to verifiers.
func (s *Signer) Sign(r io.Reader) ([]string, error) {
	br := bufio.NewReaderSize(r, 8<<10)
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, f := range h {
		count[strings.ToLower(fieldName(f))]++
	}
	if count["from"] == 0 {
		return nil, ErrNoFrom
	}
	// RFC 6376 section 5.4.2: a field is listed once per instance, bottom
	// up (go-msgauth picks instances from the bottom); section 8.15: one
	// more for the oversigned ones.
	var keys []string
	for _, name := range s.headers {
		n := count[strings.ToLower(name)]
		if s.oversign[strings.ToLower(name)] {
			n++
		}
		for i := 0; i < n; i++ {
			keys = append(keys, name)
		}
	}
	var exp time.Time
	if s.expiration > 0 {
		exp = time.Now().Add(s.expiration)
	}

	signers := make([]*msgdkim.Signer, 0, len(s.keys))
	writers := make([]io.Writer, 0, len(s.keys))
	closeAll := func() {
		for _, sg := range signers {
			_ = sg.Close()
		}
	}
	for _, k := range s.keys {
		sg, err := msgdkim.NewSigner(&msgdkim.SignOptions{
			Domain:                 s.domain,
			Selector:               k.Selector,
			Identifier:             s.identifier,
			Signer:                 k.Signer,
			Hash:                   crypto.SHA256,
			HeaderCanonicalization: s.hcan,
			BodyCanonicalization:   s.bcan,
			HeaderKeys:             keys,
			Expiration:             exp,
		})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dkim: selector %s: %w", k.Selector, err)
		}
		signers = append(signers, sg)
		writers = append(writers, sg)
	}
	in := io.MultiReader(strings.NewReader(joinHeader(h)), br)
	if _, err := io.Copy(io.MultiWriter(writers...), in); err != nil {
		closeAll()
		return nil, fmt.Errorf("dkim: reading message: %w", err)
	}
	values := make([]string, 0, len(signers))
	var errs []error
	for i, sg := range signers {
		if err := sg.Close(); err != nil {
			errs = append(errs, fmt.Errorf("dkim: selector %s: %w", s.keys[i].Selector, err))
			continue
		}
		values = append(values, fieldValueOf(sg.Signature()))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return values, nil
}

// Sign is NewSigner(domain, keys, opts) then Sign(r).
func Sign(r io.Reader, domain string, keys []Key, opts SignOptions) ([]string, error) {
	s, err := NewSigner(domain, keys, opts)
	if err != nil {
		return nil, err
	}
	return s.Sign(r)
}

// fieldValueOf turns go-msgauth's "DKIM-Signature: v=1; ...\r\n" into
// the field value.
func fieldValueOf(field string) string {
	v := strings.TrimPrefix(field, "DKIM-Signature:")
	return strings.TrimSuffix(strings.TrimLeft(v, " "), crlf)
}

func canonicalization(s string) (msgdkim.Canonicalization, error) {
	switch strings.ToLower(s) {
	case "", Relaxed:
		return msgdkim.CanonicalizationRelaxed, nil
	case Simple:
		return msgdkim.CanonicalizationSimple, nil
	}
	return "", fmt.Errorf("%w: canonicalization %q (want simple or relaxed, RFC 6376 section 3.4)", ErrBadOption, s)
}

// CheckNames reports whether domain and selector are usable in d= and
// s= (LDH names, RFC 6376 section 3.1 and 3.5); errors wrap ErrBadOption.
func CheckNames(domain, selector string) error {
	if err := checkDomain(strings.ToLower(strings.TrimSuffix(domain, "."))); err != nil {
		return err
	}
	return checkLabel("selector", selector)
}

// checkDomain accepts an LDH domain name (RFC 6376 section 3.5, d=).
func checkDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("%w: domain %q", ErrBadOption, d)
	}
	for _, label := range strings.Split(d, ".") {
		if err := checkLabel("domain", label); err != nil {
			return fmt.Errorf("%w: domain %q", ErrBadOption, d)
		}
	}
	return nil
}

// checkLabel accepts a selector or one DNS label: letters, digits,
// hyphens, underscores; a selector may have dots (RFC 6376 section 3.1).
func checkLabel(what, s string) error {
	if s == "" || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return fmt.Errorf("%w: %s %q", ErrBadOption, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: %s %q", ErrBadOption, what, s)
		}
	}
	return nil
}
