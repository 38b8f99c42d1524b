package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrUnavailable wraps every failure to reach or search a directory (R44:
// the caller falls back, and the negative cache remembers it).
var ErrUnavailable = errors.New("discovery: directory unavailable")

// searcher runs one anonymous LDAP v3 search (R52) and returns the values
// of the wanted attributes, every option (";binary") folded into the base
// name. It is a variable so that a fuzz or unit test can stand in for a
// directory.
type searcher func(ctx context.Context, u URL, tlsConf *tls.Config, q query) ([][]byte, error)

// query is one search: where, what, and how much of the answer is kept.
type query struct {
	base, filter string
	scope        Scope
	attrs        []string
	sizeLimit    int   // entries asked for and accepted
	maxValues    int   // values kept
	maxValue     int   // bytes of one value; a larger one is skipped
	maxBytes     int64 // bytes read from the directory in all
}

// dial connects to u's host before deadline, with TLS for ldaps://.
func dial(ctx context.Context, u URL, tlsConf *tls.Config, deadline time.Time) (net.Conn, error) {
	d := &net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil || u.Scheme != "ldaps" {
		return c, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConf != nil {
		tc = tlsConf.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(u.Host)
	}
	tlsConn := tls.Client(c, tc)
	_ = tlsConn.SetDeadline(deadline)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	_ = tlsConn.SetDeadline(time.Time{})
	return tlsConn, nil
}

// errTooMuch: the directory sent more than the search accepts.
var errTooMuch = errors.New("the directory's answer exceeds the size limit")

// limitedConn fails reads once left bytes have been read.
type limitedConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
}

func (c *limitedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	left := c.left
	c.mu.Unlock()
	if left <= 0 {
		return 0, errTooMuch
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.left -= int64(n)
	c.mu.Unlock()
	return n, err
}

// search dials u (bounded by ctx: the dial, the bind-less search and the
// reading of the answer all end when ctx does), asks for at most
// q.sizeLimit entries and keeps at most q.maxValues values of at most
// q.maxValue bytes: a
// directory cannot make the gateway hold more than that (issue 15: bounded
// result size).
func search(ctx context.Context, u URL, tlsConf *tls.Config, q query) ([][]byte, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	raw, err := dial(ctx, u, tlsConf, deadline)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, u.Host, err)
	}
	// Every byte the directory sends counts against q.maxBytes: the
	// entry and value limits below act on what is already read, this one
	// on what a hostile or broken directory may make the gateway read.
	conn := ldap.NewConn(&limitedConn{Conn: raw, left: q.maxBytes}, u.Scheme == "ldaps")
	conn.Start()
	defer conn.Close()
	conn.SetTimeout(time.Until(deadline))
	// Close the connection when the context ends, so a directory that
	// accepts and then hangs never holds mail past smime.ldap_timeout.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	secs := int(time.Until(deadline)/time.Second) + 1
	req := ldap.NewSearchRequest(q.base, int(q.scope), ldap.NeverDerefAliases, q.sizeLimit, secs, false, q.filter, q.attrs, nil)
	req.EnforceSizeLimit = true
	res, err := conn.Search(req)
	truncated := err != nil && (ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || errors.Is(err, ldap.ErrSizeLimitExceeded))
	if err != nil && !truncated {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, nil // the base does not exist there: nothing found
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, u.Host, err)
	}
	if res == nil {
		return nil, fmt.Errorf("%w: %s: no search result", ErrUnavailable, u.Host)
	}
	var out [][]byte
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			name, _, _ := strings.Cut(a.Name, ";")
			want := false
			for _, w := range q.attrs {
				w, _, _ = strings.Cut(w, ";")
				want = want || strings.EqualFold(name, w)
			}
			if !want {
				continue
			}
			for _, v := range a.ByteValues {
				if len(v) > q.maxValue {
					continue // an oversized value is no certificate nor domain
				}
				if len(out) >= q.maxValues {
					return out, fmt.Errorf("%w: more than %d values", ErrTruncated, q.maxValues)
				}
				out = append(out, v)
			}
		}
	}
	if truncated {
		return out, fmt.Errorf("%w: more than %d entries", ErrTruncated, q.sizeLimit)
	}
	return out, nil
}

// ErrTruncated: the directory had more than the search keeps; the values
// returned with it are a part. A certificate search uses them; a list
// refresh does not (a part of a list is not the list).
var ErrTruncated = errors.New("discovery: answer truncated")

const (
	// maxCertEntries bounds the entries of a certificate search (issue 15:
	// bounded result size): a domain has one DCA entry, a few at most.
	maxCertEntries = 16
	// maxCertValues bounds the certificates kept from one directory.
	maxCertValues = 32
	// maxCertValue bounds one certificate value: a DCA certificate with
	// its extensions is a few KB.
	maxCertValue = 64 << 10
	// maxCertBytes bounds all a directory may send for one certificate
	// search.
	maxCertBytes = 4 << 20
)
