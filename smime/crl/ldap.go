package crl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPFetcher fetches ldap:// distribution points (RFC 4516 URLs,
// "ldap://host/cn=ca,c=NZ?certificateRevocationList;binary"): a base-object
// search of the DN for the CRL attribute, anonymous, LDAP v3 (R39, R43).
type LDAPFetcher struct {
	// Addr, when set, is dialled instead of the URL's host (tests: a
	// loopback slapd).
	Addr string
}

// defaultCRLAttr is the attribute when the URL names none (RFC 4523).
const defaultCRLAttr = "certificateRevocationList"

// Fetch returns the first value of the CRL attribute of the URL's DN.
func (f LDAPFetcher) Fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	if !strings.EqualFold(u.Scheme, "ldap") {
		return nil, fmt.Errorf("not an ldap URL: %s", u.Redacted())
	}
	dn, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil || dn == "" {
		return nil, fmt.Errorf("ldap URL %q names no DN", u.Redacted())
	}
	attr := defaultCRLAttr
	if q := u.RawQuery; q != "" {
		if a, _, _ := strings.Cut(q, "?"); a != "" {
			if a, err = url.QueryUnescape(a); err != nil {
				return nil, fmt.Errorf("ldap URL %q: %w", u.Redacted(), err)
			}
			attr, _, _ = strings.Cut(a, ",")
		}
	}
	addr := f.Addr
	if addr == "" {
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "389")
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	d := &net.Dialer{Deadline: deadline}
	conn, err := ldap.DialURL("ldap://"+addr, ldap.DialWithDialer(d))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetTimeout(time.Until(deadline))
	// Close the connection when the context ends, so a hanging server
	// never holds the caller past its deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	base := strings.TrimSuffix(attr, ";binary")
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(time.Until(deadline)/time.Second)+1, false,
		"(objectClass=*)", []string{base + ";binary", base}, nil)
	res, err := conn.Search(req)
	if err != nil {
		return nil, err
	}
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			if strings.EqualFold(strings.TrimSuffix(a.Name, ";binary"), base) && len(a.ByteValues) > 0 {
				if len(a.ByteValues[0]) > MaxCRL {
					return nil, fmt.Errorf("CRL larger than %d bytes", MaxCRL)
				}
				return a.ByteValues[0], nil
			}
		}
	}
	return nil, errors.New("no " + base + " value at " + dn)
}
