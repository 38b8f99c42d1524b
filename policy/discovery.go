package policy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// SMIMEDiscovery holds the certificate discovery keys (issue 15; R43,
// R52-R54, R58): which directories are searched, how long for, and whether
// a certificate found is used at once or waits for the administrator.
type SMIMEDiscovery struct {
	// LDAP are the directories searched (smime.ldap): ldap:// or ldaps://
	// URLs (RFC 4516), the path a search base if it is not Base.
	LDAP []string
	// Base is the search base of a URL that names none (R53: "C=NZ").
	Base string
	// CALDAP are the stored LDAP specifications of the trusted CAs (R58,
	// smime.ca_ldap): a certificate found there must chain to that CA.
	CALDAP []CALDAP
	// Timeout bounds one lookup, every directory together.
	Timeout time.Duration
	// Retry: a lookup that found nothing usable, and a directory that was
	// down, are not asked again before this has passed.
	Retry time.Duration
	// Mode is "auto" (store and use, R54 fully automated) or "approve"
	// (wait in Pending for `nzsecure-milter certs approve`).
	Mode discovery.Mode
	// Pending is the directory of certificates waiting for approval.
	Pending string
	// LDAPCA are PEM files of the CAs an ldaps:// directory's server
	// certificate must chain to (smime.ldap_ca); empty means the system's
	// roots. For smime.ldap, smime.ca_ldap and lists.*_ldap alike.
	LDAPCA []string
}

// LDAPTLS is the TLS configuration of ldaps:// directories: TLS 1.2 or
// later, the server certificate checked against smime.ldap_ca (the
// system's roots when it is empty). When a file can no longer be read
// the configuration trusts no server (fail safe: no directory answer is
// taken over a connection that could not be checked) and the error says
// why.
func (p *Policy) LDAPTLS() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(p.SMIME.Discovery.LDAPCA) == 0 {
		return conf, nil
	}
	pool := x509.NewCertPool()
	conf.RootCAs = pool
	for _, f := range p.SMIME.Discovery.LDAPCA {
		certs, err := smime.ReadCertificatesFile(f)
		if err != nil {
			conf.RootCAs = x509.NewCertPool()
			return conf, fmt.Errorf("smime.ldap_ca: %w", err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return conf, nil
}

// CALDAP is one smime.ca_ldap entry: "ANCHOR=URL", ANCHOR a file of
// smime.trust_anchors or the SHA-256 fingerprint of an anchor certificate.
type CALDAP struct {
	Anchor string
	URL    string
}

// Enabled: some directory is configured.
func (d SMIMEDiscovery) Enabled() bool { return len(d.LDAP) > 0 || len(d.CALDAP) > 0 }

func defaultDiscovery() SMIMEDiscovery {
	return SMIMEDiscovery{
		Base:    discovery.DefaultBase,
		Timeout: 5 * time.Second,
		Retry:   5 * time.Minute,
		Mode:    discovery.ModeAuto,
		Pending: "/var/lib/nzsecure-milter/pending",
	}
}

// ListsPolicy holds the accredited gateway lists read from LDAP (R55,
// R108): each list's RFC 4516 URL (base, attribute, scope, filter), where
// the last good copy is kept, and how often it is refreshed. A list read
// from LDAP is added to the key that holds it in the policy:
// outbound.seemail_domains, outbound.securemail_domains,
// inbound.trusted_lists (WORKSPACE).
type ListsPolicy struct {
	SEEMailLDAP, SecureMailLDAP, WorkspaceLDAP string
	Dir                                        string
	Refresh                                    time.Duration
}

func defaultLists() ListsPolicy {
	return ListsPolicy{Dir: "/var/lib/nzsecure-milter/lists", Refresh: time.Hour}
}

// The list names, which are also the file names in lists.dir.
const (
	ListSEEMail    = "seemail"
	ListSecureMail = "securemail"
	ListWorkspace  = "workspace"
)

// ListSources are the lists configured from LDAP, for the refresher.
func (p *Policy) ListSources() []discovery.ListSource {
	var out []discovery.ListSource
	for _, l := range []struct {
		name, url string
		wild      bool
	}{
		{ListSEEMail, p.Lists.SEEMailLDAP, true},
		{ListSecureMail, p.Lists.SecureMailLDAP, true},
		{ListWorkspace, p.Lists.WorkspaceLDAP, false},
	} {
		if l.url == "" {
			continue
		}
		u, err := discovery.ParseURL(l.url)
		if err != nil {
			continue // refused at load
		}
		out = append(out, discovery.ListSource{Name: l.name, URL: u, File: filepath.Join(p.Lists.Dir, l.name), Wildcards: l.wild})
	}
	return out
}

// AccreditedLists names the lists domain is on (R55: a discovered
// certificate is classified into the list its domain is on): "SEEMail",
// "SecureMail", "WORKSPACE".
func (p *Policy) AccreditedLists(domain string) []string {
	out := []string{}
	if p.Outbound.SEEMailDomains.Match(domain) {
		out = append(out, "SEEMail")
	}
	if p.Outbound.SecureMailDomains.Match(domain) {
		out = append(out, "SecureMail")
	}
	ws := (*Workspace)(nil)
	if p.derived != nil {
		ws = p.derived.workspace
	} else {
		ws, _ = NewWorkspace(p.Inbound.TrustedLists)
	}
	if ws.Contains("x@" + domain) {
		out = append(out, "WORKSPACE")
	}
	return out
}

func init() {
	for k, s := range discoveryKeySpecs {
		keySpecs[k] = s
	}
}

var discoveryKeySpecs = map[string]keySpec{
	"smime.ldap":         valueKey(func(p *Policy) *[]string { return &p.SMIME.Discovery.LDAP }, ldapURLs),
	"smime.ldap_base":    valueKey(func(p *Policy) *string { return &p.SMIME.Discovery.Base }, ldapDN),
	"smime.ca_ldap":      valueKey(func(p *Policy) *[]CALDAP { return &p.SMIME.Discovery.CALDAP }, caLDAP),
	"smime.ldap_timeout": durationKey(func(p *Policy) *time.Duration { return &p.SMIME.Discovery.Timeout }, 100*time.Millisecond, 2*time.Minute),
	"smime.ldap_retry":   durationKey(func(p *Policy) *time.Duration { return &p.SMIME.Discovery.Retry }, time.Second, 24*time.Hour),
	"smime.discovery":    enumKey(func(p *Policy) *discovery.Mode { return &p.SMIME.Discovery.Mode }, discovery.ModeAuto, discovery.ModeApprove),
	"smime.pending":      valueKey(func(p *Policy) *string { return &p.SMIME.Discovery.Pending }, absPath),
	// The CAs of ldaps:// directories (a government directory's server
	// certificate is often from a private CA); every file must parse.
	"smime.ldap_ca": valueKey(func(p *Policy) *[]string { return &p.SMIME.Discovery.LDAPCA }, ldapCAFiles),

	"lists.seemail_ldap":    valueKey(func(p *Policy) *string { return &p.Lists.SEEMailLDAP }, listURL),
	"lists.securemail_ldap": valueKey(func(p *Policy) *string { return &p.Lists.SecureMailLDAP }, listURL),
	"lists.workspace_ldap":  valueKey(func(p *Policy) *string { return &p.Lists.WorkspaceLDAP }, listURL),
	"lists.dir":             valueKey(func(p *Policy) *string { return &p.Lists.Dir }, absPath),
	"lists.refresh":         durationKey(func(p *Policy) *time.Duration { return &p.Lists.Refresh }, time.Minute, 7*24*time.Hour),
}

// ldapCAFiles: each file holds at least one certificate (as
// smime.trust_anchors, whose check it shares).
func ldapCAFiles(v any) ([]string, error) {
	list, err := trustAnchors(v)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.Replace(err.Error(), "bad trust anchor", "bad LDAP CA", 1))
	}
	return list, nil
}

func ldapURLs(v any) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, s := range list {
		if _, err := discovery.ParseURL(s); err != nil {
			bad = append(bad, strings.TrimPrefix(err.Error(), "discovery: "))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return list, nil
}

func ldapDN(v any) (string, error) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	if _, err := discovery.ParseURL("ldap://x/" + escapeDN(s)); err != nil || s == "" {
		return "", fmt.Errorf("%q is not a distinguished name", s)
	}
	return s, nil
}

func escapeDN(s string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(s)
}

// listURL: a list's URL must name its base (there is no default place for
// an accredited list).
func listURL(v any) (string, error) {
	s, err := asString(v)
	if err != nil || s == "" {
		return s, err
	}
	u, err := discovery.ParseURL(s)
	if err != nil {
		return "", fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "discovery: "))
	}
	if u.Base == "" {
		return "", fmt.Errorf("%q names no search base (ldap://host/BASE?attribute?scope?filter)", s)
	}
	return s, nil
}

var hexFP = regexp.MustCompile(`^[0-9a-f]{64}$`)

// caLDAP: "ANCHOR=ldap[s]://..." entries (R58). Whether ANCHOR names a
// configured anchor is checked where the anchors are read
// (pipeline.NewSMIMEEnv), since smime.trust_anchors may come later.
func caLDAP(v any) ([]CALDAP, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var out []CALDAP
	var bad []string
	for _, e := range list {
		i := strings.Index(e, "=ldap")
		if i <= 0 {
			bad = append(bad, fmt.Sprintf("%q is not ANCHOR=ldap://... (ANCHOR a trust_anchors file or a SHA-256 fingerprint)", e))
			continue
		}
		anchor, u := strings.TrimSpace(e[:i]), e[i+1:]
		if fp := strings.ToLower(strings.ReplaceAll(anchor, ":", "")); hexFP.MatchString(fp) {
			anchor = fp
		} else if !strings.HasPrefix(anchor, "/") {
			bad = append(bad, fmt.Sprintf("%q: the anchor must be an absolute path of smime.trust_anchors or a SHA-256 fingerprint", e))
			continue
		}
		if _, err := discovery.ParseURL(u); err != nil {
			bad = append(bad, strings.TrimPrefix(err.Error(), "discovery: "))
			continue
		}
		out = append(out, CALDAP{Anchor: anchor, URL: u})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}

// applyListFiles adds the last good copy of each list read from LDAP to
// the key that holds the list (R55, R108). A list not fetched yet (no file)
// is a warning, not an error: the gateway starts before the first refresh,
// and the refresher reloads the policy once the file is written.
func applyListFiles(p *Policy) (probs, warnings Problems) {
	for _, l := range []struct {
		name, url, key string
	}{
		{ListSEEMail, p.Lists.SEEMailLDAP, "lists.seemail_ldap"},
		{ListSecureMail, p.Lists.SecureMailLDAP, "lists.securemail_ldap"},
		{ListWorkspace, p.Lists.WorkspaceLDAP, "lists.workspace_ldap"},
	} {
		if l.url == "" {
			continue
		}
		path := filepath.Join(p.Lists.Dir, l.name)
		if _, err := os.Stat(path); err != nil {
			warnings = append(warnings, Problem{Key: l.key, Msg: fmt.Sprintf("warning: %s: no copy of the list yet (written by the refresher of nzsecure-milter serve, or `nzsecure-milter certs lists`)", path)})
			continue
		}
		var set DomainSet
		var bad []string
		if err := readDomainFile(path, &set, &bad); err != nil {
			bad = append(bad, err.Error())
		}
		if len(bad) > 0 {
			probs = append(probs, Problem{Key: l.key, Msg: "bad list copy: " + strings.Join(bad, "; ")})
			continue
		}
		switch l.name {
		case ListSEEMail:
			p.Outbound.SEEMailDomains = p.Outbound.SEEMailDomains.union(set)
		case ListSecureMail:
			p.Outbound.SecureMailDomains = p.Outbound.SecureMailDomains.union(set)
		case ListWorkspace:
			p.Inbound.TrustedLists = append(p.Inbound.TrustedLists, set.Entries()...)
		}
	}
	return probs, warnings
}

// union is s with the entries of o added (a copy: s may be shared).
func (s DomainSet) union(o DomainSet) DomainSet {
	var out DomainSet
	for _, e := range s.entries {
		out.add(e)
	}
	for _, e := range o.entries {
		out.add(e)
	}
	return out
}
