package pipeline

import (
	"fmt"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Signers are the DKIM signers of a policy, by domain (G-DKIM).
type Signers map[string]*dkim.Signer

// NewSigners loads every key of dkim.keys; a key that cannot be loaded is an
// error (serve refuses to start, a reload keeps the running policy).
func NewSigners(p *policy.Policy) (Signers, error) {
	keys := map[string][]dkim.Key{}
	for _, k := range p.DKIM.Keys {
		key, err := dkim.LoadKey(k.Selector, k.File)
		if err != nil {
			return nil, fmt.Errorf("DKIM key %s for %s: %w", k.File, k.Domain, err)
		}
		keys[k.Domain] = append(keys[k.Domain], key)
	}
	// An empty list in the policy means the defaults (nil), not "sign
	// nothing but From".
	opts := dkim.SignOptions{}
	if len(p.DKIM.Headers) > 0 {
		opts.Headers = p.DKIM.Headers
	}
	if len(p.DKIM.Oversign) > 0 {
		opts.Oversign = p.DKIM.Oversign
	}
	out := Signers{}
	for domain, ks := range keys {
		s, err := dkim.NewSigner(domain, ks, opts)
		if err != nil {
			return nil, fmt.Errorf("DKIM signer for %s: %w", domain, err)
		}
		out[domain] = s
	}
	return out, nil
}

// HeaderBlock renders headers as the message carries them, CRLF ended,
// with the blank line that ends the block (message.HeaderBlock). Values
// are as received (or as we add them); folds become CRLF.
func HeaderBlock(hs []policy.Header) io.Reader {
	return strings.NewReader(message.HeaderBlock(hs, "\r\n"))
}
