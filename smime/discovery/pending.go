package discovery

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Pending is the directory of discovered certificates waiting for the
// administrator (R54, smime.discovery = "approve"; smime.pending), laid
// out as the peer store is, so that two gateways can share it:
//
//	DIR/DOMAIN/FINGERPRINT.pem        waiting: certs approve / certs reject
//	DIR/DOMAIN/FINGERPRINT.rejected   rejected: never queued again
//
// Every write is a temporary file renamed into place (smime.WriteFileAtomic).
type Pending struct {
	Dir string
}

// PendingCert is one certificate in the pending directory.
type PendingCert struct {
	Domain      string
	Fingerprint string
	Cert        *x509.Certificate
	Rejected    bool
}

// ErrNoSuchPending: no pending certificate has that fingerprint.
var ErrNoSuchPending = errors.New("discovery: no pending certificate with that fingerprint")

// ErrAmbiguous: a fingerprint prefix names more than one certificate.
var ErrAmbiguous = errors.New("discovery: fingerprint prefix is ambiguous")

func (p *Pending) path(domain, fp, ext string) (string, error) {
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return filepath.Join(p.Dir, domain, fp+ext), nil
}

// Add queues c for domain; it reports whether it was new.
func (p *Pending) Add(domain string, c *x509.Certificate) (bool, error) {
	f, err := p.path(domain, smime.Fingerprint(c), ".pem")
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(f); err == nil {
		return false, nil
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	if err := smime.WriteFileAtomic(filepath.Dir(f), f, data); err != nil {
		return false, fmt.Errorf("discovery: pending: %w", err)
	}
	return true, nil
}

// Rejected reports whether the administrator rejected fp for domain.
func (p *Pending) Rejected(domain, fp string) bool {
	f, err := p.path(domain, fp, ".rejected")
	if err != nil {
		return false
	}
	_, err = os.Stat(f)
	return err == nil
}

// List returns every pending and rejected certificate, by domain then
// fingerprint. A missing directory is an empty list.
func (p *Pending) List() ([]PendingCert, error) {
	var out []PendingCert
	var bad []string
	for _, ext := range []string{".pem", ".rejected"} {
		files, err := filepath.Glob(filepath.Join(p.Dir, "*", "*"+ext))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			certs, err := smime.ParseCertificatesPEM(data)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			out = append(out, PendingCert{Domain: filepath.Base(filepath.Dir(f)), Fingerprint: strings.TrimSuffix(filepath.Base(f), ext),
				Cert: certs[0], Rejected: ext == ".rejected"})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	if len(bad) > 0 {
		return out, fmt.Errorf("discovery: pending: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// find returns the waiting certificate fp names: the whole fingerprint
// (colons allowed, as openssl prints it) or a unique prefix of at least 8
// hex digits.
func (p *Pending) find(fp string) (PendingCert, error) {
	fp = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	if len(fp) < 8 {
		return PendingCert{}, fmt.Errorf("%w: %q (give at least 8 hex digits)", ErrNoSuchPending, fp)
	}
	all, _ := p.List()
	var hits []PendingCert
	for _, pc := range all {
		if !pc.Rejected && strings.HasPrefix(pc.Fingerprint, fp) {
			hits = append(hits, pc)
		}
	}
	switch len(hits) {
	case 0:
		return PendingCert{}, fmt.Errorf("%w: %s", ErrNoSuchPending, fp)
	case 1:
		return hits[0], nil
	}
	return PendingCert{}, fmt.Errorf("%w: %s names %d certificates", ErrAmbiguous, fp, len(hits))
}

// Approve moves the waiting certificate fp into the peer store (R54)
// after validating it again: a certificate revoked or expired while it
// waited is not approved.
func (p *Pending) Approve(ctx context.Context, v *smime.Validator, store *smime.PeerStore, fp string) (PendingCert, error) {
	pc, err := p.find(fp)
	if err != nil {
		return pc, err
	}
	if vd := v.Validate(ctx, pc.Cert, pc.Domain, nil); vd.State != smime.StateValid {
		return pc, fmt.Errorf("discovery: %s for %s is %s now (%s): not approved", pc.Fingerprint[:16], pc.Domain, vd.State, vd.Reason)
	}
	if _, err := store.Add(pc.Domain, pc.Cert); err != nil {
		return pc, err
	}
	f, _ := p.path(pc.Domain, pc.Fingerprint, ".pem")
	if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pc, fmt.Errorf("discovery: approved, but the pending copy stays: %w", err)
	}
	return pc, nil
}

// Reject marks the waiting certificate fp rejected: it leaves the queue
// and later lookups do not queue it again.
func (p *Pending) Reject(fp string) (PendingCert, error) {
	pc, err := p.find(fp)
	if err != nil {
		return pc, err
	}
	from, _ := p.path(pc.Domain, pc.Fingerprint, ".pem")
	to, _ := p.path(pc.Domain, pc.Fingerprint, ".rejected")
	if err := os.Rename(from, to); err != nil {
		return pc, fmt.Errorf("discovery: reject: %w", err)
	}
	pc.Rejected = true
	return pc, nil
}
