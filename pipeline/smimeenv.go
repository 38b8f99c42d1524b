package pipeline

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/crl"
)

// SMIMEEnv is what one policy load judges and uses certificates with
// (issue 14): the policy's [smime] keys turned into a validator (trust
// anchors, the CRL cache, R36, R59), our identities (R37-R38) and the peer
// store (R50, R83-R84). serve builds one per load, as `certs` does; it is
// the only place the S/MIME facts the engine decides on are looked up.
type SMIMEEnv struct {
	Validator *smime.Validator
	// CRL is the validator's CRL cache; nil when smime.crl_check is false.
	CRL *crl.Cache
	// Identities are ours that loaded; IdentityProblems the ones that did
	// not (the policy checked them, the files may have changed since).
	Identities       []*smime.Identity
	IdentityProblems []string
	IdentityFiles    map[*smime.Identity]string
	// Store is the peer store; nil when smime.peers does not exist and
	// the env was built read-only (StoreNote says so).
	Store     *smime.PeerStore
	StoreNote string
	// Discoverer, when set (smime.ldap or smime.ca_ldap, and a peer
	// store), is asked by Peer for a domain without a valid certificate
	// (issue 15, pipeline/discovery.go).
	Discoverer PeerDiscoverer
	// ReadOnly: inbound S/MIME does not learn into the peer store and Peer
	// does not run discovery (which stores what it finds); the reasons say
	// what serve would do (R43, R50, R83-R84). `check` sets it: looking at
	// a message must not change what the gateway knows.
	ReadOnly bool
}

// CRLFetchers, when set (tests), replaces the CRL cache's fetchers.
var CRLFetchers map[string]crl.Fetcher

// CRLLog, when set (serve, before the first NewState), receives the CRL
// cache's lines: fetches, failures and back-offs, stale use (R40, R59).
var CRLLog func(msg string, args ...any)

// NewSMIMEEnv builds the env of policy p. create makes the peer store
// directory when missing (serve); a listing passes false, so that looking
// never creates anything.
func NewSMIMEEnv(p *policy.Policy, create bool) (*SMIMEEnv, error) {
	e := &SMIMEEnv{IdentityFiles: map[*smime.Identity]string{}}
	v := &smime.Validator{Bypass: p.SMIME.CRLBypass}
	if len(p.SMIME.TrustAnchors) > 0 {
		pool := x509.NewCertPool()
		for _, f := range p.SMIME.TrustAnchors {
			certs, err := smime.ReadCertificatesFile(f)
			if err != nil {
				return nil, fmt.Errorf("smime.trust_anchors: %w", err)
			}
			for _, c := range certs {
				pool.AddCert(c)
			}
		}
		v.Anchors = pool
	}
	if p.SMIME.CRLCheck {
		c := crl.New(p.SMIME.CRLDir, p.SMIME.CRLTimeout)
		if CRLFetchers != nil {
			c.Fetchers = CRLFetchers
		}
		c.Log = CRLLog
		v.Revocation, e.CRL = c, c
	}
	e.Validator = v
	for _, spec := range p.SMIME.Identities {
		id, err := smime.LoadIdentity(spec.Domain, spec.CertFile, spec.KeyFile)
		if err != nil {
			e.IdentityProblems = append(e.IdentityProblems, err.Error())
			continue
		}
		e.Identities = append(e.Identities, id)
		e.IdentityFiles[id] = spec.CertFile
	}
	e.loadOwn(p) // R51: our renewed certificates fetched from the directories
	if fi, err := os.Stat(p.SMIME.Peers); !create && (err != nil || !fi.IsDir()) {
		e.StoreNote = fmt.Sprintf("peer store %s does not exist: no peer certificates", p.SMIME.Peers)
		return e, nil
	}
	s, err := smime.NewPeerStore(p.SMIME.Peers)
	if err != nil {
		return nil, err
	}
	e.Store = s
	if p.SMIME.Discovery.Enabled() {
		d, err := NewDiscoverer(p, e)
		if err != nil {
			return nil, err
		}
		e.Discoverer = scopedDiscoverer{d: d, p: p, store: s}
	}
	return e, nil
}

// Peer is what the gateway has for recipient domain (Table 1, sending).
func (e *SMIMEEnv) Peer(ctx context.Context, domain string) policy.SMIMEPeer {
	out := policy.SMIMEPeer{Domain: domain}
	if e.Store == nil {
		out.State, out.Reasons = smime.StateUnknown, []string{e.StoreNote}
		return out
	}
	pv := e.Store.Peer(ctx, e.Validator, domain)
	if pv.Cert == nil && e.Discoverer != nil && e.ReadOnly {
		// Discovery stores what it finds (peer store or smime.pending).
		pv.Reasons = append(pv.Reasons, e.wouldDiscover(domain))
	} else if pv.Cert == nil && e.Discoverer != nil {
		// Table 1: "Auto-discover valid public key certificate (LDAP).
		// Success: Send message" (R43, R58: also when the stored one is
		// expired or revoked).
		before, untrusted := pv.Reasons, e.untrusted(ctx, domain, pv.State)
		found, why := e.Discoverer.Discover(ctx, domain)
		if found {
			pv = e.Store.Peer(ctx, e.Validator, domain)
			pv.Reasons = append(before, pv.Reasons...)
			if pv.Cert != nil {
				// Table 1, "Untrusted / Unknown CA": "Success: Send message.
				// Notify Recipient's Postmaster" (the engine lists it).
				out.ReplacedUntrusted = untrusted
			}
		}
		pv.Reasons = append(pv.Reasons, why...)
	}
	out.HasCerts = pv.Stored > 0 || pv.Cert != nil
	out.State, out.Reasons = pv.State, pv.Reasons
	if pv.Cert != nil {
		out.Fingerprint, out.Cipher = smime.Fingerprint(pv.Cert), pv.Cipher.String()
	}
	return out
}

// untrusted are the fingerprints of domain's stored certificates that are
// untrusted (no chain to an accredited CA, R179-R180), when state, the
// state of the best candidate, is: the Table 1 row is "Untrusted / Unknown
// CA". An untrusted certificate fails before any revocation look-up, so
// judging them again costs no CRL fetch.
func (e *SMIMEEnv) untrusted(ctx context.Context, domain string, state smime.State) []string {
	if state != smime.StateUntrusted {
		return nil
	}
	certs, _ := e.Store.Certificates(domain)
	var out []string
	for _, c := range certs {
		if e.Validator.Validate(ctx, c, domain, nil).State == smime.StateUntrusted {
			out = append(out, smime.Fingerprint(c))
		}
	}
	return out
}

// wouldDiscover says what Peer would ask the directories (ReadOnly).
func (e *SMIMEEnv) wouldDiscover(domain string) string {
	if sd, ok := e.Discoverer.(scopedDiscoverer); ok {
		certs, _ := e.Store.Certificates(domain)
		if in, why := sd.p.SMIMEScope(domain, len(certs) > 0); !in {
			return "no LDAP discovery: " + why
		}
	}
	return "read-only: the directories would be asked for a certificate of " + domain + " (R43; `nzsecure-milter certs discover " + domain + "` asks now)"
}

// Own is our signing identity for domain (R37: the newest valid one).
func (e *SMIMEEnv) Own(ctx context.Context, domain string) policy.SMIMEOwn {
	out := policy.SMIMEOwn{Domain: domain}
	id, err := smime.Newest(ctx, e.Validator, e.Identities, domain)
	if err == nil {
		out.Fingerprint = smime.Fingerprint(id.Cert)
		return out
	}
	out.Problem = err.Error()
	if len(e.IdentityProblems) > 0 {
		out.Problem += "; " + strings.Join(e.IdentityProblems, "; ")
	}
	for _, id := range e.Identities {
		if strings.EqualFold(id.Domain, domain) && e.Validator.Validate(ctx, id.Cert, domain, id.Chain).State == smime.StateUnknown {
			out.UnknownStatus = true
		}
	}
	return out
}

// Signer is the identity Own names (R37), nil when none is valid.
func (e *SMIMEEnv) Signer(ctx context.Context, domain string) *smime.Identity {
	id, err := smime.Newest(ctx, e.Validator, e.Identities, domain)
	if err != nil {
		return nil
	}
	return id
}
