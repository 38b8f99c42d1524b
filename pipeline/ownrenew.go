package pipeline

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// R51's second purpose: "The Gateway MUST be capable of an automatic
// process for retrieving and using the appropriate certificate ... when it
// needs a new valid public key certificate from its CA". Our CA publishes
// the certificate it issues for domain-confidentiality-authority@OURDOMAIN
// in its directory (smime.ca_ldap, R58) or in the agencies' directory
// (smime.ldap), as it does for every other gateway's. When our newest valid
// certificate of a domain is about to expire (smime.renew_before), or none
// is valid any more (expired, revoked), RenewOwn searches the directories
// for that address; a certificate found that validates (chain to a trust
// anchor, dates, CRL, naming R45-R47) and that one of our keys matches (the
// key of a configured identity, when the CA renewed the same key, or one
// of smime.renewal_keys, when a new key pair's request went to the CA) is
// written to smime.own_dir, DIR/DOMAIN/FINGERPRINT.pem with its
// intermediates (R70). NewSMIMEEnv loads it with the configured identities,
// so a reload puts it in use: R37 then signs with it, the newest, and R38
// decrypts with it too. Nothing is ever used that no key of ours matches,
// and nothing found is put in the peer store: our certificates are not a
// peer's.

// Outcomes of one domain's renewal check (OwnRenewal.Action).
const (
	OwnCurrent  = "current"           // the newest valid certificate is not due
	OwnRenewed  = "renewed"           // a newer certificate was written to smime.own_dir
	OwnNotFound = "not renewed"       // due, and nothing usable was found (see Problem)
	OwnNoSearch = "due, not searched" // due, and no directory is configured
	OwnHave     = "renewed, in use"   // due by the old one, but a newer one is in place already
)

const ownNoKeyFmt = "found %s (valid until %s) but no key of ours matches it: add its key to smime.renewal_keys"

// OwnRenewal is what one renewal check did for one of our domains.
type OwnRenewal struct {
	Domain string `json:"domain"`
	Action string `json:"action"`
	// ValidUntil is when our last valid certificate of the domain expires
	// (zero when none is valid); Due says why a search was needed.
	ValidUntil time.Time `json:"valid_until,omitzero"`
	Due        string    `json:"due,omitempty"`
	// Fingerprint and File name the certificate written (OwnRenewed).
	Fingerprint string    `json:"fingerprint,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	File        string    `json:"file,omitempty"`
	// Problems: what made candidates unusable, directories that failed.
	Problems   []string              `json:"problems,omitempty"`
	Candidates []discovery.Candidate `json:"candidates,omitempty"`
}

// OwnFinder is the directory search RenewOwn asks (a *discovery.Discoverer).
type OwnFinder interface {
	Find(ctx context.Context, domain string) (discovery.Found, error)
}

// ownDomains are the domains we hold or expect identities for, sorted.
func ownDomains(p *policy.Policy) []string {
	set := map[string]bool{}
	for _, id := range p.SMIME.Identities {
		set[id.Domain] = true
	}
	for _, k := range p.SMIME.RenewalKeys {
		set[k.Domain] = true
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// ownKeys are the private keys that may take a certificate of domain: the
// configured identities' (a renewal of the same key) and the renewal keys
// (a new key pair). A renewal key that no longer loads is a problem, not a
// reason to stop.
func (e *SMIMEEnv) ownKeys(p *policy.Policy, domain string) ([]crypto.Signer, []string) {
	var keys []crypto.Signer
	var probs []string
	for _, id := range e.Identities {
		if strings.EqualFold(id.Domain, domain) {
			keys = append(keys, id.Key)
		}
	}
	for _, k := range p.SMIME.RenewalKeys {
		if k.Domain != domain {
			continue
		}
		key, err := smime.LoadKey(k.KeyFile)
		if err != nil {
			probs = append(probs, fmt.Sprintf("smime.renewal_keys %s: %v", domain, err))
			continue
		}
		keys = append(keys, key)
	}
	return keys, probs
}

// keyFor is the key of keys that cert's public key is of, nil if none.
func keyFor(keys []crypto.Signer, cert *x509.Certificate) crypto.Signer {
	for _, k := range keys {
		if smime.KeyMatches(cert, k) {
			return k
		}
	}
	return nil
}

// loadOwn adds the certificates of smime.own_dir to e's identities, each
// with the key of ours that matches it (R51): a file no key matches, or
// that is not a DCA certificate of its domain (R45-R47), is an identity
// problem, never an identity.
func (e *SMIMEEnv) loadOwn(p *policy.Policy) {
	if p.SMIME.OwnDir == "" {
		return
	}
	have := map[string]bool{}
	for _, id := range e.Identities {
		have[smime.Fingerprint(id.Cert)] = true
	}
	for _, domain := range ownDomains(p) {
		files, _ := filepath.Glob(filepath.Join(p.SMIME.OwnDir, domain, "*.pem"))
		if len(files) == 0 {
			continue
		}
		keys, probs := e.ownKeys(p, domain)
		e.IdentityProblems = append(e.IdentityProblems, probs...)
		for _, f := range files {
			// A regular file of bounded size only: a link to /dev/zero or
			// a directory named *.pem is a problem, not an endless read.
			if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() || fi.Size() > smime.MaxDER {
				e.IdentityProblems = append(e.IdentityProblems, fmt.Sprintf("smime.own_dir %s: not a regular file of at most %d bytes", f, smime.MaxDER))
				continue
			}
			certs, err := smime.ReadCertificatesFile(f)
			if err != nil || len(certs) == 0 {
				e.IdentityProblems = append(e.IdentityProblems, fmt.Sprintf("smime.own_dir %s: %v", f, err))
				continue
			}
			c := certs[0]
			if have[smime.Fingerprint(c)] {
				continue // configured in smime.identities as well
			}
			if err := smime.CheckNaming(c, domain); err != nil {
				e.IdentityProblems = append(e.IdentityProblems, fmt.Sprintf("smime.own_dir %s: %v", f, err))
				continue
			}
			key := keyFor(keys, c)
			if key == nil {
				e.IdentityProblems = append(e.IdentityProblems, fmt.Sprintf("smime.own_dir %s: no key in smime.identities or smime.renewal_keys matches it", f))
				continue
			}
			id := &smime.Identity{Domain: domain, Cert: c, Key: key, Chain: certs[1:]}
			have[smime.Fingerprint(c)] = true
			e.Identities = append(e.Identities, id)
			e.IdentityFiles[id] = f
		}
	}
}

// validUntil is when the last of domain's valid identities expires; zero
// when none is valid now.
func (e *SMIMEEnv) validUntil(ctx context.Context, domain string) time.Time {
	var until time.Time
	for _, id := range e.Identities {
		if !strings.EqualFold(id.Domain, domain) {
			continue
		}
		if e.Validator.Validate(ctx, id.Cert, domain, id.Chain).State == smime.StateValid && id.Cert.NotAfter.After(until) {
			until = id.Cert.NotAfter
		}
	}
	return until
}

// ErrOwnDirWrite: a renewed certificate could not be written to
// smime.own_dir.
var ErrOwnDirWrite = errors.New("cannot write to smime.own_dir")

// RenewOwn checks each of our domains (those of smime.identities and
// smime.renewal_keys) at now and fetches a newer certificate where one is
// due (R51). finder nil means no directory is configured: a due domain is
// then only reported. changed reports whether a certificate was written
// (serve then reloads, so that it is used).
func RenewOwn(ctx context.Context, p *policy.Policy, e *SMIMEEnv, finder OwnFinder, now time.Time) (out []OwnRenewal, changed bool) {
	for _, domain := range ownDomains(p) {
		r := OwnRenewal{Domain: domain, ValidUntil: e.validUntil(ctx, domain)}
		switch {
		case r.ValidUntil.IsZero():
			r.Due = "no valid certificate of ours"
			if _, err := smime.Newest(ctx, e.Validator, e.Identities, domain); err != nil {
				r.Due += ": " + err.Error()
			}
		case r.ValidUntil.Sub(now) > p.SMIME.RenewBefore:
			r.Action = OwnCurrent
			out = append(out, r)
			continue
		default:
			r.Due = fmt.Sprintf("our certificate expires %s, within smime.renew_before (%s)", r.ValidUntil.UTC().Format(time.RFC3339), p.SMIME.RenewBefore)
		}
		if finder == nil {
			r.Action = OwnNoSearch
			r.Problems = append(r.Problems, "no directory configured to fetch a renewed certificate from (smime.ca_ldap, smime.ldap)")
			out = append(out, r)
			continue
		}
		if e.renewOne(ctx, p, finder, &r) {
			changed = true
		}
		out = append(out, r)
	}
	return out, changed
}

func (e *SMIMEEnv) renewOne(ctx context.Context, p *policy.Policy, finder OwnFinder, r *OwnRenewal) bool {
	found, err := finder.Find(ctx, r.Domain)
	if err != nil {
		r.Action, r.Problems = OwnNotFound, append(r.Problems, err.Error())
		return false
	}
	r.Candidates = found.Candidates
	r.Problems = append(r.Problems, found.Errors...)
	keys, probs := e.ownKeys(p, r.Domain)
	r.Problems = append(r.Problems, probs...)
	have := map[string]bool{}
	for _, id := range e.Identities {
		have[smime.Fingerprint(id.Cert)] = true
	}
	for _, c := range found.Candidates {
		if c.State != smime.StateValid {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: %s (%s)", c.Fingerprint[:16], c.State, c.Reason))
		}
	}
	for _, c := range found.Candidates {
		switch {
		case c.State != smime.StateValid:
			continue
		case !c.NotAfter.After(r.ValidUntil):
			continue // not newer than what we have
		case have[c.Fingerprint]:
			// Found and already ours (configured, or written earlier):
			// the valid-until above would be its; only a stale env says
			// otherwise, which the next reload mends.
			r.Action, r.Fingerprint, r.NotAfter = OwnHave, c.Fingerprint, c.NotAfter
			return false
		}
		if keyFor(keys, c.Cert) == nil {
			r.Problems = append(r.Problems, fmt.Sprintf(ownNoKeyFmt, c.Fingerprint[:16], c.NotAfter.UTC().Format(time.RFC3339)))
			continue
		}
		file, err := writeOwn(ctx, e, p.SMIME.OwnDir, r.Domain, c)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
			continue
		}
		r.Action, r.Fingerprint, r.NotAfter, r.File = OwnRenewed, c.Fingerprint, c.NotAfter, file
		return true
	}
	r.Action = OwnNotFound
	switch {
	case len(found.Candidates) > 0:
		r.Problems = append(r.Problems, fmt.Sprintf("the directories hold %d certificates for %s, none valid, newer than ours and matching a key of ours", len(found.Candidates), discovery.DCAAddress(r.Domain)))
	case found.Unavailable():
		r.Problems = append(r.Problems, "no directory answered")
	default:
		r.Problems = append(r.Problems, "no certificate for "+discovery.DCAAddress(r.Domain)+" in the directories")
	}
	return false
}

// writeOwn writes c with the intermediates of its validated chain (R70:
// the chain goes with each signature) to DIR/DOMAIN/FINGERPRINT.pem.
func writeOwn(ctx context.Context, e *SMIMEEnv, dir, domain string, c discovery.Candidate) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: smime.own_dir is empty", ErrOwnDirWrite)
	}
	vd := e.Validator.Validate(ctx, c.Cert, domain, nil)
	var data []byte
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})...)
	if len(vd.Chain) > 2 {
		for _, ic := range vd.Chain[1 : len(vd.Chain)-1] {
			data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ic.Raw})...)
		}
	}
	ddir := filepath.Join(dir, domain)
	file := filepath.Join(ddir, c.Fingerprint+".pem")
	if err := smime.WriteFileAtomic(ddir, file, data); err != nil {
		return "", fmt.Errorf("%w: %v", ErrOwnDirWrite, err)
	}
	return file, nil
}

// OwnRenewalCheck is RenewOwn with the policy's directories, smime.ldap
// and smime.ca_ldap (serve's schedule and `certs renew`).
func OwnRenewalCheck(ctx context.Context, p *policy.Policy, e *SMIMEEnv, now time.Time) ([]OwnRenewal, bool, error) {
	var finder OwnFinder
	if p.SMIME.Discovery.Enabled() {
		d, err := NewDiscoverer(p, e)
		if err != nil {
			return nil, false, err
		}
		finder = d
	}
	out, changed := RenewOwn(ctx, p, e, finder, now)
	return out, changed, nil
}
