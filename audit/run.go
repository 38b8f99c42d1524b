package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/clockcheck"
)

// ErrUsage is matched (errors.Is) by the errors of Run that come from its
// configuration (no domain, a malformed domain or selector): the command
// exits 2 for them.
var ErrUsage = errors.New("audit: usage error")

// usageError is a configuration problem; it reads as its message alone.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Config is one run of the audit command.
type Config struct {
	// Domains are the email enabled domains, NonEmail the others (spec
	// 004 sections 8 and 9). At least one domain is needed.
	Domains  []string
	NonEmail []string
	// Selectors are DKIM selectors: "SEL" for every email domain,
	// "DOMAIN:SEL" for one.
	Selectors []string
	// DNSServers are the resolvers asked ("HOST:PORT"); empty means those
	// of /etc/resolv.conf. DNSTimeout bounds one query (0: the resolver's
	// default).
	DNSServers []string
	DNSTimeout time.Duration
	// JSON selects the JSON output instead of the table.
	JSON bool
	// Clock, when set, reads the local host's clock state: the report
	// ends with a "host" row for it (R90, R141; clockcheck.Read).
	Clock func() clockcheck.State

	// Resolver, when set, is used instead of one built from DNSServers.
	Resolver Resolver
	// HTTPClient, when set, fetches the MTA-STS policies. Otherwise a
	// client is built that resolves the mta-sts host names through the
	// audit's resolver (so --dns applies to them too) and verifies
	// certificates against the system roots (RFC 8461 section 3.3).
	HTTPClient *http.Client
}

// Run audits the configured domains and writes the report to w, as a table
// or JSON. It returns the report (whose ExitCode is the command's exit
// status) or an error: one matching ErrUsage for a configuration problem, else
// a failure to set up the resolver or to write.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Report, error) {
	email, err := normalizeAll(cfg.Domains)
	if err != nil {
		return nil, err
	}
	nonEmail, err := normalizeAll(cfg.NonEmail)
	if err != nil {
		return nil, err
	}
	if len(email)+len(nonEmail) == 0 {
		return nil, usageErr("no domain to audit: name them, or set domains in the policy")
	}
	for _, d := range nonEmail {
		for _, e := range email {
			if d == e {
				return nil, usageErr("%s is given both as an email and as a non-email domain", d)
			}
		}
	}
	a := &Auditor{Resolver: cfg.Resolver, HTTP: cfg.HTTPClient, DomainSelectors: map[string][]string{}}
	for _, s := range cfg.Selectors {
		dom, sel, scoped := strings.Cut(s, ":")
		if !scoped {
			dom, sel = "", s
		}
		if !validSelector(sel) {
			return nil, usageErr("DKIM selector %q: want SELECTOR or DOMAIN:SELECTOR", s)
		}
		if !scoped {
			a.Selectors = append(a.Selectors, sel)
			continue
		}
		d, err := NormalizeDomain(dom)
		if err != nil {
			return nil, usageErr("selector %q: %v", s, err)
		}
		a.DomainSelectors[d] = append(a.DomainSelectors[d], sel)
	}
	if a.Resolver == nil {
		r, err := dnsresolver.New(dnsresolver.Config{Servers: cfg.DNSServers, Timeout: cfg.DNSTimeout})
		if err != nil {
			return nil, fmt.Errorf("DNS resolver: %w", err)
		}
		a.Resolver = r
	}
	if a.HTTP == nil {
		a.HTTP = httpClient(a.Resolver)
	}

	rep := a.Audit(ctx, email, nonEmail)
	if cfg.Clock != nil {
		rep.Domains = append(rep.Domains, hostReport(cfg.Clock))
		rep.count()
	}
	if cfg.JSON {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteTable(w)
	}
	return rep, err
}

func normalizeAll(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		d, err := NormalizeDomain(s)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}

// validSelector accepts dot-separated labels of letters, digits, "-" and
// "_" (RFC 6376 section 3.1).
func validSelector(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ipResolver is the part of *dnsresolver.Resolver httpClient needs.
type ipResolver interface {
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

// httpClient fetches MTA-STS policies (RFC 8461 section 3.3: HTTPS with a
// valid certificate; STSCache refuses redirects). When r can resolve
// addresses, host names are resolved through it rather than the system.
func httpClient(r Resolver) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the policy host is contacted directly
	if ipr, ok := r.(ipResolver); ok {
		dialer := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := ipr.LookupIP(ctx, "ip", host)
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", host, err)
			}
			var firstErr error
			for _, ip := range ips {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
				if err == nil {
					return c, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("%s has no address", host)
			}
			return nil, firstErr
		}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}
