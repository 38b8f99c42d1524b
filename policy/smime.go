package policy

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// SMIMEMode is smime.mode: whether the gateway signs and encrypts domain
// S/MIME (RFC 3183) between agency gateways (issue 14).
type SMIMEMode string

const (
	SMIMEOff SMIMEMode = "off"
	SMIMEOn  SMIMEMode = "on"
)

// SMIMEPolicy holds the [smime] keys (issue 14 point 2): the milter signs
// and encrypts outbound mail to the domains in scope (policy/smimeout.go),
// `nzsecure-milter certs` lists the certificates.
type SMIMEPolicy struct {
	Mode SMIMEMode
	// Identities are our DCA certificates with their keys, several per
	// domain allowed (R37: the newest valid one signs; R38: every valid
	// one decrypts).
	Identities []SMIMEIdentity
	// TrustAnchors are PEM files of the accredited CAs (R179-R180).
	TrustAnchors []string
	// Peers is the peer certificate store directory (smime.PeerStore).
	Peers string
	// CRLDir is the CRL cache on disk (R39-R40).
	CRLDir string
	// CRLCheck false bypasses every CRL check (R59, disaster recovery).
	CRLCheck bool
	// CRLBypass are SHA-256 fingerprints (lower-case hex) of certificates
	// exempt from CRL checks (R59).
	CRLBypass []string
	// CRLTimeout bounds one CRL fetch.
	CRLTimeout time.Duration
	// EncryptTo are the recipient domains that get S/MIME; empty means
	// the SEEMail list, the exceptions and any domain with a valid peer
	// certificate (R72, R91).
	EncryptTo []string
	// GiveUp is how long a message held for a certificate problem is
	// retried before SECURE DELIVERY FAILURE (Table 1, R57).
	GiveUp time.Duration
	// HeldDir is the gateway's store of mail held for a certificate
	// problem (package heldmail; R57).
	HeldDir string
	// RetryInterval is how often the held mail is retried (R57, "The
	// system will try again in X hours").
	RetryInterval time.Duration
	// HeldMaxCount and HeldMaxSize bound the held-mail store: past them a
	// new hold is refused and the milter tempfails (the MTA keeps the
	// message) instead of losing it.
	HeldMaxCount int
	HeldMaxSize  int64
	// Discovery: finding peer certificates in LDAP (issue 15, discovery.go).
	Discovery SMIMEDiscovery
	// RequestByMail: certificate requests by mail (R44, R51,
	// certrequest.go), sent for mail held with 201 and answered.
	RequestByMail bool
	// Own renewal (R51, "when it needs a new valid public key certificate
	// from its CA"; pipeline/ownrenew.go): OwnDir keeps our certificates
	// found in the directories, loaded with Identities; RenewalKeys are
	// keys waiting for a certificate (a new key pair whose request went to
	// the CA); when our newest valid certificate of a domain expires
	// within RenewBefore, or none is valid, the directories are searched
	// every RenewCheck for a newer one that one of our keys matches.
	OwnDir      string
	RenewalKeys []SMIMEKey
	RenewBefore time.Duration
	RenewCheck  time.Duration
}

// SMIMEKey is one smime.renewal_keys entry, "domain:/path/key.pem".
type SMIMEKey struct {
	Domain, KeyFile string
}

// SMIMEIdentity is one smime.identities entry.
type SMIMEIdentity struct {
	Domain, CertFile, KeyFile string
}

// defaultSMIME: the same in every profile, mode off; profileDefaults turns
// it on under seemail (issue 14 point 2: "on under seemail, off
// elsewhere"), now that the milter signs and encrypts.
func defaultSMIME() SMIMEPolicy {
	return SMIMEPolicy{
		Mode:       SMIMEOff,
		Peers:      "/var/lib/nzsecure-milter/peers",
		CRLDir:     "/var/lib/nzsecure-milter/crl",
		CRLCheck:   true,
		CRLTimeout: 10 * time.Second,
		GiveUp:     72 * time.Hour,

		HeldDir:       "/var/lib/nzsecure-milter/held",
		RetryInterval: 15 * time.Minute,
		HeldMaxCount:  10000,
		HeldMaxSize:   4 << 30,
		Discovery:     defaultDiscovery(),
		RequestByMail: true,
		OwnDir:        "/var/lib/nzsecure-milter/own",
		RenewBefore:   30 * 24 * time.Hour,
		RenewCheck:    6 * time.Hour,
	}
}

func init() {
	for k, s := range smimeKeySpecs {
		keySpecs[k] = s
	}
}

var smimeKeySpecs = map[string]keySpec{
	"smime.mode":          enumKey(func(p *Policy) *SMIMEMode { return &p.SMIME.Mode }, SMIMEOff, SMIMEOn),
	"smime.identities":    valueKey(func(p *Policy) *[]SMIMEIdentity { return &p.SMIME.Identities }, smimeIdentities),
	"smime.trust_anchors": valueKey(func(p *Policy) *[]string { return &p.SMIME.TrustAnchors }, trustAnchors),
	"smime.peers":         valueKey(func(p *Policy) *string { return &p.SMIME.Peers }, absPath),
	"smime.crl_dir":       valueKey(func(p *Policy) *string { return &p.SMIME.CRLDir }, absPath),
	"smime.crl_check":     boolKey(func(p *Policy) *bool { return &p.SMIME.CRLCheck }),
	"smime.crl_bypass":    valueKey(func(p *Policy) *[]string { return &p.SMIME.CRLBypass }, fingerprints),
	"smime.crl_timeout":   durationKey(func(p *Policy) *time.Duration { return &p.SMIME.CRLTimeout }, 100*time.Millisecond, 5*time.Minute),
	"smime.encrypt_to":    domainListKey(func(p *Policy) *[]string { return &p.SMIME.EncryptTo }, true),
	"smime.give_up":       durationKey(func(p *Policy) *time.Duration { return &p.SMIME.GiveUp }, time.Hour, 30*24*time.Hour),
	// The held-mail store and its retry loop (heldmail; Table 1 sending
	// column, R57). The interval is at least a minute (a retry runs every
	// held message through the chain) and at most a day (R57: "will keep
	// trying").
	"smime.held_dir":       valueKey(func(p *Policy) *string { return &p.SMIME.HeldDir }, absPath),
	"smime.retry_interval": durationKey(func(p *Policy) *time.Duration { return &p.SMIME.RetryInterval }, time.Minute, 24*time.Hour),
	"smime.held_max_count": intKey(func(p *Policy) *int { return &p.SMIME.HeldMaxCount }, 1, 10_000_000, "a count from 1 to 10000000"),
	"smime.held_max_size":  sizeKey(func(p *Policy) *int64 { return &p.SMIME.HeldMaxSize }),
	// R44, R51: certificate requests by mail (certrequest.go).
	"smime.request_by_mail": boolKey(func(p *Policy) *bool { return &p.SMIME.RequestByMail }),
	// R51: our own renewed certificates, fetched from the directories.
	"smime.own_dir":      valueKey(func(p *Policy) *string { return &p.SMIME.OwnDir }, absPath),
	"smime.renewal_keys": valueKey(func(p *Policy) *[]SMIMEKey { return &p.SMIME.RenewalKeys }, renewalKeys),
	"smime.renew_before": durationKey(func(p *Policy) *time.Duration { return &p.SMIME.RenewBefore }, time.Hour, 365*24*time.Hour),
	"smime.renew_check":  durationKey(func(p *Policy) *time.Duration { return &p.SMIME.RenewCheck }, time.Minute, 7*24*time.Hour),
}

// renewalKeys checks every "domain:/path/key.pem" entry: the key file is
// there and holds a private key. Every problem of every entry is reported.
func renewalKeys(v any) ([]SMIMEKey, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var out []SMIMEKey
	var bad []string
	for _, e := range list {
		domain, keyFile, ok := strings.Cut(e, ":")
		if !ok || domain == "" || keyFile == "" || strings.Contains(keyFile, ":") {
			bad = append(bad, fmt.Sprintf("%q is not domain:/path/key.pem", e))
			continue
		}
		if domain, err = checkDomain(strings.ToLower(strings.TrimSuffix(domain, ".")), false); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if err := regularFile(keyFile); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", domain, err))
			continue
		}
		if _, err := smime.LoadKey(keyFile); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", domain, err))
			continue
		}
		out = append(out, SMIMEKey{Domain: domain, KeyFile: keyFile})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad renewal key: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// absPath: a directory the daemon runs with, so never relative to where it
// was started.
func absPath(v any) (string, error) {
	s, err := asString(v)
	if err == nil && !strings.HasPrefix(s, "/") {
		err = fmt.Errorf("must be an absolute path, got %q", s)
	}
	return s, err
}

// smimeIdentities checks every "domain:cert:key" entry as the milter will
// use it: both files present, the certificate parsing, the key matching it,
// and the DCA naming rules (R45-R47). Every problem of every entry is
// reported, not only the first.
func smimeIdentities(v any) ([]SMIMEIdentity, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var out []SMIMEIdentity
	var bad []string
	for _, e := range list {
		domain, certFile, keyFile, err := smime.ParseIdentitySpec(e)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q is not domain:/path/cert.pem:/path/key.pem", e))
			continue
		}
		if domain, err = checkDomain(domain, false); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		missing := false
		for _, f := range []string{certFile, keyFile} {
			if err := regularFile(f); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", domain, err))
				missing = true
			}
		}
		if missing {
			continue
		}
		id, err := smime.LoadIdentity(domain, certFile, keyFile)
		if err != nil {
			bad = append(bad, strings.TrimPrefix(err.Error(), "smime: identity "))
			continue
		}
		if err := smime.CheckNaming(id.Cert, domain); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s: %v", domain, certFile, err))
			continue
		}
		out = append(out, SMIMEIdentity{Domain: domain, CertFile: certFile, KeyFile: keyFile})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad identity: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// regularFile: a certificate or key is a regular file of bounded size, so a
// policy naming /dev/zero or a directory is refused, not read forever.
func regularFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", path)
	case fi.Size() > smime.MaxDER:
		return fmt.Errorf("%s: larger than %d bytes", path, smime.MaxDER)
	}
	return nil
}

// trustAnchors: every file must hold at least one certificate; an anchor
// that cannot be read would make every peer untrusted (R179-R180).
func trustAnchors(v any) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, f := range list {
		if err := regularFile(f); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if _, err := smime.ParseCertificatesPEM(data); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", f, err))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad trust anchor: %s", strings.Join(bad, "; "))
	}
	return list, nil
}

// fingerprints: SHA-256 of a certificate's DER as 64 hex digits (how
// smime.Fingerprint and `nzsecure-milter certs` print it), colons allowed
// as openssl prints them; kept lower case.
func fingerprints(v any) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	var bad []string
	for _, s := range list {
		f := strings.ToLower(strings.ReplaceAll(s, ":", ""))
		ok := len(f) == 64
		for _, c := range f {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				ok = false
			}
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%q is not a SHA-256 fingerprint (64 hex digits)", s))
			continue
		}
		out = append(out, f)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad fingerprint: %s", strings.Join(bad, "; "))
	}
	return out, nil
}
