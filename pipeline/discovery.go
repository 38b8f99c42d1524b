package pipeline

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// PeerDiscoverer finds a valid certificate for a peer domain the store has
// none for (issue 15: LDAP discovery, R43, R53, R58), bounded by its own
// timeout and negative cache; found means a valid certificate of domain is
// in the peer store now. *discovery.Discoverer is one.
type PeerDiscoverer interface {
	Discover(ctx context.Context, domain string) (found bool, reasons []string)
}

// scopedDiscoverer is the mail path's discoverer: it looks up only the
// domains that get S/MIME (policy.SMIMEScope: smime.encrypt_to, or the
// SEEMail list, the exceptions, and a domain with a certificate in the
// store, whose renewal R58 asks for), so that mail to an internet domain
// never waits for a directory (R51: a certificate "for that Gateway").
// `certs discover` asks the Discoverer itself, for any domain.
type scopedDiscoverer struct {
	d     *discovery.Discoverer
	p     *policy.Policy
	store *smime.PeerStore
}

func (s scopedDiscoverer) Discover(ctx context.Context, domain string) (bool, []string) {
	certs, _ := s.store.Certificates(domain)
	if in, why := s.p.SMIMEScope(domain, len(certs) > 0); !in {
		return false, []string{"no LDAP discovery: " + why}
	}
	return s.d.Discover(ctx, domain)
}

// NewDiscoverer builds the discoverer of policy p on env's validator and
// peer store: the smime.ldap directories first, then each smime.ca_ldap
// directory with the anchor certificates it speaks for (R58).
func NewDiscoverer(p *policy.Policy, env *SMIMEEnv) (*discovery.Discoverer, error) {
	dp := p.SMIME.Discovery
	tlsConf, err := p.LDAPTLS()
	if err != nil {
		return nil, err
	}
	d := &discovery.Discoverer{
		TLS:  tlsConf,
		Base: dp.Base, Timeout: dp.Timeout, RetryAfter: dp.Retry, Mode: dp.Mode,
		Validator: env.Validator, Store: env.Store,
		Pending:  &discovery.Pending{Dir: dp.Pending},
		Classify: p.AccreditedLists,
	}
	for _, s := range dp.LDAP {
		u, err := discovery.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("smime.ldap: %w", err)
		}
		d.Directories = append(d.Directories, discovery.Directory{URL: u})
	}
	for _, ca := range dp.CALDAP {
		u, err := discovery.ParseURL(ca.URL)
		if err != nil {
			return nil, fmt.Errorf("smime.ca_ldap: %w", err)
		}
		anchors, err := caAnchors(p.SMIME.TrustAnchors, ca.Anchor)
		if err != nil {
			return nil, fmt.Errorf("smime.ca_ldap: %s: %w", ca.Anchor, err)
		}
		d.Directories = append(d.Directories, discovery.Directory{URL: u, Anchors: anchors})
	}
	return d, nil
}

// caAnchors are the certificates an smime.ca_ldap anchor names: those of
// that smime.trust_anchors file, or the anchor certificate with that
// SHA-256 fingerprint. An anchor that is not configured is an error: a
// directory must not speak for a CA the gateway does not trust.
func caAnchors(files []string, anchor string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range files {
		certs, err := smime.ReadCertificatesFile(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if sameFile(f, anchor) || smime.Fingerprint(c) == anchor {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("not a file of smime.trust_anchors nor the fingerprint of a certificate in one")
	}
	return out, nil
}

// sameFile: smime.trust_anchors may be relative, smime.ca_ldap's anchor
// is absolute.
func sameFile(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
