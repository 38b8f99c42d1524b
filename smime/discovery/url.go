package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ErrBadURL is wrapped by every error about an LDAP URL of the policy.
var ErrBadURL = errors.New("discovery: bad LDAP URL")

// Scope is an RFC 4516 search scope.
type Scope int

const (
	ScopeBase Scope = Scope(ldap.ScopeBaseObject)
	ScopeOne  Scope = Scope(ldap.ScopeSingleLevel)
	ScopeSub  Scope = Scope(ldap.ScopeWholeSubtree)
)

// URL is an RFC 4516 LDAP URL taken apart:
//
//	ldap[s]://host[:port]/BASE?ATTRIBUTES?SCOPE?FILTER
//
// Every part after the host is optional; the caller supplies the defaults
// (discovery: base smime.ldap_base, the userCertificate attributes, subtree,
// the DCA filter; lists: base required, attribute "mail", subtree,
// "(objectClass=*)").
type URL struct {
	Scheme string // "ldap" or "ldaps"
	Host   string // host:port, the port filled in (389, 636)
	Base   string // "" when the URL names none
	Attrs  []string
	Scope  Scope // ScopeSub when the URL names none
	Filter string
	Raw    string // as configured, for reports
}

// MaxURL bounds a configured URL.
const MaxURL = 2048

// ParseURL parses an RFC 4516 URL of scheme ldap or ldaps. Extensions
// (the fifth part) are refused: none is supported, and RFC 4516 section 2
// says a critical one that is not understood must fail the URL.
func ParseURL(s string) (URL, error) {
	if len(s) > MaxURL {
		return URL{}, fmt.Errorf("%w: longer than %d bytes", ErrBadURL, MaxURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return URL{}, fmt.Errorf("%w: %q: %v", ErrBadURL, s, err)
	}
	out := URL{Scheme: strings.ToLower(u.Scheme), Scope: ScopeSub, Raw: s}
	switch out.Scheme {
	case "ldap", "ldaps":
	default:
		return URL{}, fmt.Errorf("%w: %q: the scheme must be ldap or ldaps", ErrBadURL, s)
	}
	if u.User != nil {
		// Discovery is anonymous (RFC 3183 4.2: the certificates are
		// public); a password in the policy file would leak in reports.
		return URL{}, fmt.Errorf("%w: %q: user information is not allowed (anonymous search)", ErrBadURL, s)
	}
	host := u.Hostname()
	if host == "" {
		return URL{}, fmt.Errorf("%w: %q: no host", ErrBadURL, s)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ldap": "389", "ldaps": "636"}[out.Scheme]
	}
	out.Host = net.JoinHostPort(host, port)
	base, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil {
		return URL{}, fmt.Errorf("%w: %q: %v", ErrBadURL, s, err)
	}
	if base != "" {
		if _, err := ldap.ParseDN(base); err != nil {
			return URL{}, fmt.Errorf("%w: %q: base %q is not a DN: %v", ErrBadURL, s, base, err)
		}
	}
	out.Base = base
	// attributes ? scope ? filter ? extensions
	parts := strings.Split(u.RawQuery, "?")
	if len(parts) > 4 || len(parts) == 4 && parts[3] != "" {
		return URL{}, fmt.Errorf("%w: %q: extensions are not supported", ErrBadURL, s)
	}
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	for i := range parts {
		if parts[i], err = url.PathUnescape(parts[i]); err != nil {
			return URL{}, fmt.Errorf("%w: %q: %v", ErrBadURL, s, err)
		}
	}
	if parts[0] != "" {
		out.Attrs = strings.Split(parts[0], ",")
	}
	switch strings.ToLower(parts[1]) {
	case "", "sub":
	case "one":
		out.Scope = ScopeOne
	case "base":
		out.Scope = ScopeBase
	default:
		return URL{}, fmt.Errorf("%w: %q: scope %q is not base, one or sub", ErrBadURL, s, parts[1])
	}
	if parts[2] != "" {
		if _, err := ldap.CompileFilter(parts[2]); err != nil {
			return URL{}, fmt.Errorf("%w: %q: filter %q: %v", ErrBadURL, s, parts[2], err)
		}
		out.Filter = parts[2]
	}
	return out, nil
}

// String is the URL as configured.
func (u URL) String() string { return u.Raw }
