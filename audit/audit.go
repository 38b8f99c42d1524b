// Package audit checks domains' DNS against the agency deployment checklist
// of the Secure Email Common Implementation Framework (spec 004 section 10):
// for email enabled domains (section 8) an SPF record ending in -all (RFC
// 7208), a DMARC record with p=reject and adkim=s (RFC 7489), an MTA-STS
// policy in enforce mode covering the MX hosts (RFC 8461), a TLS-RPT record
// (RFC 8460) and published DKIM keys (RFC 6376); for non-email domains
// (section 9) "v=spf1 -all", an empty "v=DKIM1; p=" key at *._domainkey,
// DMARC p=reject and no MX or a null MX (RFC 7505).
//
// Every check gives one row with a status (pass, warn, fail, error), a
// reason and the sections it comes from. A DNS lookup that fails
// temporarily makes its row "error": the audit cannot tell, which is not
// the same as the domain failing.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/tlspolicy"
)

// Status is the outcome of one check.
type Status string

// Statuses. Pass and Warn keep the exit status 0; Fail and Error make it 1.
const (
	Pass  Status = "pass"
	Warn  Status = "warn"
	Fail  Status = "fail"
	Error Status = "error" // a DNS or network failure: the check could not be made
)

// Domain kinds.
const (
	KindEmail    = "email"
	KindNonEmail = "non-email"
)

// Check names, as they appear in reports.
const (
	CheckSPF            = "spf"
	CheckSPFLookups     = "spf-lookups"
	CheckDMARC          = "dmarc"
	CheckDMARCAlignment = "dmarc-alignment"
	CheckMTASTSRecord   = "mta-sts-record"
	CheckMTASTSPolicy   = "mta-sts-policy"
	CheckMTASTSMX       = "mta-sts-mx"
	CheckTLSRPT         = "tls-rpt"
	CheckDKIM           = "dkim"
	CheckMX             = "mx"
)

// Check is one row of a report.
type Check struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Reason  string `json:"reason"`
	Section string `json:"section"`
}

// DomainReport holds the checks of one domain, in a fixed order.
type DomainReport struct {
	Domain string  `json:"domain"`
	Kind   string  `json:"kind"`
	Checks []Check `json:"checks"`
}

// Summary counts the checks by status.
type Summary struct {
	Pass  int `json:"pass"`
	Warn  int `json:"warn"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
}

// Report is the result of an audit.
type Report struct {
	Domains []DomainReport `json:"domains"`
	Summary Summary        `json:"summary"`
}

// OK reports whether every check passed or only warned.
func (r *Report) OK() bool { return r.Summary.Fail == 0 && r.Summary.Error == 0 }

// ExitCode is the command's exit status for the report: 0 when every check
// passed or warned, 1 when any failed or could not be made.
func (r *Report) ExitCode() int {
	if r.OK() {
		return 0
	}
	return 1
}

func (r *Report) count() {
	r.Summary = Summary{}
	for _, d := range r.Domains {
		for _, c := range d.Checks {
			switch c.Status {
			case Pass:
				r.Summary.Pass++
			case Warn:
				r.Summary.Warn++
			case Fail:
				r.Summary.Fail++
			default:
				r.Summary.Error++
			}
		}
	}
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteTable writes the report as an aligned table, one row per check,
// then a summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tKIND\tCHECK\tSTATUS\tSECTION\tREASON")
	for _, d := range r.Domains {
		for _, c := range d.Checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Domain, d.Kind, c.Check, strings.ToUpper(string(c.Status)), c.Section, oneLine(c.Reason))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "compliant (every check passed or warned)"
	if !r.OK() {
		verdict = "NOT compliant"
	}
	_, err := fmt.Fprintf(w, "\n%d domain(s): %d pass, %d warn, %d fail, %d error: %s\n",
		len(r.Domains), r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Summary.Error, verdict)
	return err
}

// oneLine keeps a table row on one line whatever a DNS record holds.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// Resolver is the DNS the audit reads; *dnsresolver.Resolver and
// *dnstest.Zone satisfy it. Errors must wrap dnserr.ErrNotFound for
// NXDOMAIN and NODATA; anything else counts as a temporary failure.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Auditor runs the checks. Its zero value is not usable: Resolver is
// required.
type Auditor struct {
	Resolver Resolver
	// HTTP fetches MTA-STS policies (RFC 8461 section 3.3). It must
	// verify certificates; nil means a default client using the system's
	// resolver and roots (see Run for one that resolves through Resolver).
	HTTP *http.Client
	// Selectors lists the DKIM selectors to check for every email domain;
	// DomainSelectors adds selectors for one domain (lower case, no
	// trailing dot). DNS cannot enumerate selectors (RFC 6376 section
	// 3.6.2.1), so without any the DKIM row only warns.
	Selectors       []string
	DomainSelectors map[string][]string
	// Parallel bounds how many domains are audited at once (default 8).
	Parallel int

	once sync.Once
	sts  *tlspolicy.STSCache
}

func (a *Auditor) stsCache() *tlspolicy.STSCache {
	a.once.Do(func() {
		a.sts = &tlspolicy.STSCache{LookupTXT: a.Resolver.LookupTXT, NotFound: dnserr.ErrNotFound, HTTP: a.HTTP}
	})
	return a.sts
}

// Audit checks the email domains then the non-email ones, each domain's
// report in the order given.
func (a *Auditor) Audit(ctx context.Context, email, nonEmail []string) *Report {
	type job struct {
		domain string
		kind   string
	}
	var jobs []job
	for _, d := range email {
		jobs = append(jobs, job{d, KindEmail})
	}
	for _, d := range nonEmail {
		jobs = append(jobs, job{d, KindNonEmail})
	}
	r := &Report{Domains: make([]DomainReport, len(jobs))}
	par := a.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if j.kind == KindEmail {
				r.Domains[i] = a.Email(ctx, j.domain)
			} else {
				r.Domains[i] = a.NonEmail(ctx, j.domain)
			}
		}()
	}
	wg.Wait()
	r.count()
	return r
}

// NormalizeDomain lower-cases a domain name and drops a trailing dot; it
// refuses names that cannot be DNS names.
func NormalizeDomain(s string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" || len(d) > 253 || strings.Contains(d, "..") || strings.HasPrefix(d, ".") {
		return "", fmt.Errorf("invalid domain %q", s)
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) > 63 {
			return "", fmt.Errorf("invalid domain %q: label longer than 63 bytes", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("invalid domain %q: character %q (give internationalised names as A-labels)", s, c)
			}
		}
	}
	return d, nil
}
