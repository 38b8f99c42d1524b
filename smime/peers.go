package smime

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
)

// PeerStore is the directory of peer DCA certificates (smime.peers), the
// configured ones and the learned ones (R50, R83), with each peer's
// S/MIME capabilities (R84) cached in an LRU in front of the disk:
//
//	DIR/DOMAIN/SHA256-FINGERPRINT.pem   one certificate per file
//	DIR/DOMAIN/capabilities             the last capabilities seen, one OID a line
//
// Every write is a temporary file renamed into place, so several gateways
// of one agency can share the directory (issue 15) and a reader never sees
// half a file.
type PeerStore struct {
	Dir string

	caps *lru.Cache[string, Capabilities] // safe for concurrent use
}

// MaxPeerCapabilities bounds the capabilities LRU (entries).
const MaxPeerCapabilities = 4096

// ErrBadDomain: a domain name that cannot name a directory entry.
var ErrBadDomain = errors.New("smime: invalid peer domain")

// NewPeerStore opens (and creates) the store in dir.
func NewPeerStore(dir string) (*PeerStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("smime: peer store: %w", err)
	}
	c, err := lru.New[string, Capabilities](MaxPeerCapabilities)
	if err != nil {
		return nil, err
	}
	return &PeerStore{Dir: dir, caps: c}, nil
}

func (s *PeerStore) domainDir(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if d == "" || strings.ContainsAny(d, "/\\\x00") || strings.HasPrefix(d, ".") || len(d) > 253 {
		return "", fmt.Errorf("%w: %q", ErrBadDomain, domain)
	}
	return filepath.Join(s.Dir, d), nil
}

// Certificates returns the stored certificates of domain, newest first (by
// NotBefore). Unreadable files are skipped and reported in the error.
func (s *PeerStore) Certificates(domain string) ([]*x509.Certificate, error) {
	dir, err := s.domainDir(domain)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	var bad []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		cs, err := ParseCertificatesPEM(data)
		if err != nil || len(cs) == 0 {
			bad = append(bad, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		out = append(out, cs[0])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NotBefore.After(out[j].NotBefore) })
	if len(bad) > 0 {
		return out, fmt.Errorf("smime: peer store %s: %s", domain, strings.Join(bad, "; "))
	}
	return out, nil
}

// Add stores c for domain (R50, R83: a new or changed peer certificate is
// learned once it validates; the caller validates). It reports whether the
// certificate was new.
func (s *PeerStore) Add(domain string, c *x509.Certificate) (bool, error) {
	dir, err := s.domainDir(domain)
	if err != nil {
		return false, err
	}
	p := filepath.Join(dir, Fingerprint(c)+".pem")
	if _, err := os.Stat(p); err == nil {
		return false, nil
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	isNew, err := writeFileOnce(dir, p, data)
	if err != nil {
		return false, fmt.Errorf("smime: peer store: %w", err)
	}
	return isNew, nil
}

// writeFileOnce writes data to path unless it exists, as WriteFileAtomic
// does, but puts the file in place with a hard link, which fails when the
// file exists: of several writers adding the same certificate at once
// (goroutines, or two gateways sharing the directory, issue 15 point 5)
// exactly one learns it. On a filesystem without hard links it falls back
// to a rename: the name is the content's fingerprint, so a second rename
// replaces the file with the same bytes.
func writeFileOnce(dir, path string, data []byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmp, 0o644)); err != nil {
		os.Remove(tmp)
		return false, err
	}
	lerr := os.Link(tmp, path)
	switch {
	case lerr == nil:
		os.Remove(tmp)
		return true, nil
	case errors.Is(lerr, fs.ErrExist):
		os.Remove(tmp)
		return false, nil
	}
	if _, err := os.Stat(path); err == nil {
		os.Remove(tmp)
		return false, nil
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}

// Capabilities returns the last capabilities seen for domain (R84).
func (s *PeerStore) Capabilities(domain string) (Capabilities, bool) {
	key := strings.ToLower(strings.TrimSuffix(domain, "."))
	if c, ok := s.caps.Get(key); ok {
		return c, true
	}
	dir, err := s.domainDir(domain)
	if err != nil {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(dir, "capabilities"))
	if err != nil {
		return nil, false
	}
	var caps Capabilities
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		oid, err := parseOID(line)
		if err != nil {
			return nil, false
		}
		caps = append(caps, oid)
	}
	s.caps.Add(key, caps)
	return caps, true
}

// SetCapabilities records caps for domain, in the LRU and on disk, when
// they differ from what is known.
func (s *PeerStore) SetCapabilities(domain string, caps Capabilities) error {
	if len(caps) == 0 {
		return nil
	}
	if old, ok := s.Capabilities(domain); ok && old.String() == caps.String() {
		return nil
	}
	dir, err := s.domainDir(domain)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, oid := range caps {
		b.WriteString(oid.String())
		b.WriteByte('\n')
	}
	if err := WriteFileAtomic(dir, filepath.Join(dir, "capabilities"), []byte(b.String())); err != nil {
		return fmt.Errorf("smime: peer store: %w", err)
	}
	s.caps.Add(strings.ToLower(strings.TrimSuffix(domain, ".")), caps)
	return nil
}

// PeerVerdict is what sending to a peer domain would use.
type PeerVerdict struct {
	Cert    *x509.Certificate // the newest valid certificate, nil if none
	Cipher  Cipher            // the strongest cipher its capabilities allow
	Reasons []string          // the state of every certificate that was not used
	State   State             // StateValid, or the state of the best candidate (Table 1)
	// Stored is how many certificates the store holds for the domain,
	// whatever their state (a peer agency stays one when its certificate
	// goes bad, R72).
	Stored int
}

// Peer chooses the certificate to encrypt to for domain (R62-R64): the
// newest valid one; with none valid, the state of the newest candidate
// decides Table 1's sending outcome (revoked, expired, unknown status,
// untrusted).
func (s *PeerStore) Peer(ctx context.Context, v *Validator, domain string) PeerVerdict {
	certs, err := s.Certificates(domain)
	pv := PeerVerdict{State: StateUnknown, Stored: len(certs)}
	if err != nil {
		pv.Reasons = append(pv.Reasons, err.Error())
	}
	if len(certs) == 0 {
		pv.Reasons = append(pv.Reasons, "no certificate for "+domain+" in the peer store")
		return pv
	}
	first := true
	for _, c := range certs {
		vd := v.Validate(ctx, c, domain, nil)
		if vd.State == StateValid {
			caps, _ := s.Capabilities(domain)
			pv.Cert, pv.State, pv.Cipher = c, StateValid, caps.Strongest()
			return pv
		}
		if first {
			pv.State, first = vd.State, false
		}
		pv.Reasons = append(pv.Reasons, fmt.Sprintf("%s: %s (%s)", Fingerprint(c)[:16], vd.State, vd.Reason))
	}
	return pv
}

// WriteFileAtomic writes data to path (in dir, created if need be) through
// a temporary file in dir that is synced and renamed into place, mode 0644:
// a reader, or another gateway sharing the directory, sees the old file or
// the new one, never half of one.
func WriteFileAtomic(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n := 0
		if p == "" || len(p) > 9 {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		for _, ch := range p {
			if ch < '0' || ch > '9' {
				return nil, fmt.Errorf("bad OID %q", s)
			}
			n = n*10 + int(ch-'0')
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("bad OID %q", s)
	}
	return oid, nil
}
