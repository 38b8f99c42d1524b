package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dmarc"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnserr"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
	"github.com/nzsecure-milter/nzsecure-milter/tlspolicy"
)

// Sections cited in the rows: spec 004 (the framework) and the RFCs.
const (
	secSPF           = "004 §8 SPF, §10; RFC 7208 §4.5, §5.1"
	secSPFLookups    = "RFC 7208 §4.6.4"
	secDMARC         = "004 §8 DMARC, §10; RFC 7489 §6.3, §6.6.3"
	secDMARCAdkim    = "004 §8 DKIM alignment, §10; RFC 7489 §3.1"
	secMTASTSRecord  = "004 §8 MTA-STS, §10; RFC 8461 §3.1"
	secMTASTSPolicy  = "004 §8 MTA-STS, §10; RFC 8461 §3.2, §3.3"
	secMTASTSMX      = "004 §8 MTA-STS; RFC 8461 §4.1"
	secTLSRPT        = "004 §8 TLS-RPT, §10; RFC 8460 §3"
	secDKIM          = "004 §8 DKIM, §10; RFC 6376 §3.6.1; RFC 8301 §3.2"
	secNonEmailSPF   = "004 §9 SPF, §10; RFC 7208 §5.1"
	secNonEmailDKIM  = "004 §9 DKIM, §10; RFC 6376 §3.6.1"
	secNonEmailDMARC = "004 §9 DMARC; RFC 7489 §6.3"
	secNonEmailAlign = "004 §9 DMARC; RFC 7489 §3.1"
	secNonEmailMX    = "004 §9; RFC 7505 §3"
)

func row(check string, st Status, section, format string, args ...any) Check {
	return Check{Check: check, Status: st, Reason: fmt.Sprintf(format, args...), Section: section}
}

// isNotFound tells NXDOMAIN/NODATA apart; every other lookup error is a
// temporary failure, reported as Error.
func isNotFound(err error) bool { return errors.Is(err, dnserr.ErrNotFound) }

// Email checks an email enabled domain (spec 004 sections 8 and 10).
func (a *Auditor) Email(ctx context.Context, domain string) DomainReport {
	r := DomainReport{Domain: domain, Kind: KindEmail}
	r.Checks = append(r.Checks, a.emailSPF(ctx, domain)...)
	r.Checks = append(r.Checks, a.emailDMARC(ctx, domain)...)
	r.Checks = append(r.Checks, a.mtaSTS(ctx, domain)...)
	r.Checks = append(r.Checks, a.tlsRPT(ctx, domain))
	r.Checks = append(r.Checks, a.emailDKIM(ctx, domain)...)
	return r
}

// spfRecord fetches and parses the domain's one SPF record (RFC 7208
// section 4.5), or returns the row saying why it cannot.
func (a *Auditor) spfRecord(ctx context.Context, domain, section string) (*spf.Record, *Check) {
	txts, err := a.Resolver.LookupTXT(ctx, domain)
	if err != nil && !isNotFound(err) {
		c := row(CheckSPF, Error, section, "TXT lookup of %s failed: %v", domain, err)
		return nil, &c
	}
	txt, err := spf.SelectRecord(txts, false, spf.ScopeMFrom)
	switch {
	case errors.Is(err, spf.ErrMultipleRecords):
		n := 0
		for _, t := range txts {
			if strings.EqualFold(t, "v=spf1") || len(t) > 6 && strings.EqualFold(t[:7], "v=spf1 ") {
				n++
			}
		}
		c := row(CheckSPF, Fail, section, "%d v=spf1 records: more than one is a permerror (RFC 7208 §4.5), publish exactly one", n)
		return nil, &c
	case err != nil:
		c := row(CheckSPF, Fail, section, "cannot select the SPF record: %v", err)
		return nil, &c
	case txt == "":
		c := row(CheckSPF, Fail, section, "no v=spf1 TXT record at %s", domain)
		return nil, &c
	}
	rec, err := spf.ParseRecord(txt)
	if err != nil {
		c := row(CheckSPF, Fail, section, "%q does not parse (a permerror, RFC 7208 §4.6): %v", txt, err)
		return nil, &c
	}
	return rec, nil
}

// emailSPF: one SPF record ending in -all (spec 004 section 8, "SPF
// Requirement"), and within the 10 DNS-querying terms of RFC 7208 section
// 4.6.4.
func (a *Auditor) emailSPF(ctx context.Context, domain string) []Check {
	rec, bad := a.spfRecord(ctx, domain, secSPF)
	if bad != nil {
		return []Check{*bad}
	}
	w := &spfWalk{a: a, records: map[string]*spf.Record{domain: rec}}
	var out []Check
	q, via, err := w.terminal(ctx, rec)
	switch {
	case err != nil && !isNotFound(err) && !errors.Is(err, errSPFPerm):
		out = append(out, row(CheckSPF, Error, secSPF, "%q: %v", rec.Text, err))
	case err != nil:
		out = append(out, row(CheckSPF, Fail, secSPF, "%q: %v", rec.Text, err))
	case q == spf.QualifierFail:
		out = append(out, row(CheckSPF, Pass, secSPF, "%q ends in -all%s", rec.Text, via))
	case q == spf.QualifierSoftFail:
		out = append(out, row(CheckSPF, Fail, secSPF, "%q ends in ~all%s (softfail): spoofed mail is not refused; §8 requires -all", rec.Text, via))
	case q == spf.QualifierNeutral:
		out = append(out, row(CheckSPF, Fail, secSPF, "%q ends in ?all%s (neutral); §8 requires -all", rec.Text, via))
	case q == spf.QualifierPass:
		out = append(out, row(CheckSPF, Fail, secSPF, "%q ends in +all%s: any host may send as the domain; §8 requires -all", rec.Text, via))
	default:
		out = append(out, row(CheckSPF, Fail, secSPF, "%q has no all mechanism%s: unlisted hosts get neutral (RFC 7208 §4.7); §8 requires -all", rec.Text, via))
	}

	w.lookups = 0
	err = w.count(ctx, rec)
	switch {
	case err != nil && !isNotFound(err) && !errors.Is(err, errSPFPerm):
		out = append(out, row(CheckSPFLookups, Error, secSPFLookups, "cannot count the DNS lookups: %v", err))
	case err != nil:
		out = append(out, row(CheckSPFLookups, Fail, secSPFLookups, "evaluation ends in permerror: %v", err))
	case w.lookups > spfLookupLimit:
		out = append(out, row(CheckSPFLookups, Fail, secSPFLookups, "more than %d DNS-querying terms (include, a, mx, ptr, exists, redirect): evaluation ends in permerror", spfLookupLimit))
	case w.macros:
		out = append(out, row(CheckSPFLookups, Warn, secSPFLookups, "%d DNS-querying terms counted, not counting the records behind macro domain-specs", w.lookups))
	default:
		out = append(out, row(CheckSPFLookups, Pass, secSPFLookups, "%d of at most %d DNS-querying terms", w.lookups, spfLookupLimit))
	}
	return out
}

// dmarcRecord fetches the DMARC record of domain, falling back to its
// organisational domain (RFC 7489 section 6.6.3). inherited is true when the
// record is the organisational domain's: its sp= (or p=) then applies.
func (a *Auditor) dmarcRecord(ctx context.Context, domain, section string) (rec *dmarc.Record, at string, inherited bool, bad *Check) {
	at = "_dmarc." + domain
	rec, err := dmarc.FetchRecord(ctx, a.Resolver.LookupTXT, domain)
	if errors.Is(err, dmarc.ErrNoRecord) {
		if org := dmarc.OrganizationalDomain(domain); org != domain {
			at, inherited = "_dmarc."+org, true
			rec, err = dmarc.FetchRecord(ctx, a.Resolver.LookupTXT, org)
			if errors.Is(err, dmarc.ErrNoRecord) {
				c := row(CheckDMARC, Fail, section, "no DMARC record at _dmarc.%s nor at its organisational domain's %s", domain, at)
				return nil, at, false, &c
			}
		}
	}
	var c Check
	switch {
	case err == nil:
		return rec, at, inherited, nil
	case errors.Is(err, dmarc.ErrNoRecord):
		c = row(CheckDMARC, Fail, section, "no DMARC record at %s", at)
	case errors.Is(err, dmarc.ErrMultipleRecords), errors.Is(err, dmarc.ErrInvalidRecord):
		c = row(CheckDMARC, Fail, section, "%s: %v (receivers then apply no DMARC policy)", at, err)
	default:
		c = row(CheckDMARC, Error, section, "TXT lookup of %s failed: %v", at, err)
	}
	return nil, at, false, &c
}

// effectivePolicy is p=, or for a record inherited from the organisational
// domain sp= when present (RFC 7489 section 6.3).
func effectivePolicy(rec *dmarc.Record, inherited bool) (dmarc.Policy, string) {
	if inherited && rec.SubdomainPolicy != "" {
		return rec.SubdomainPolicy, "sp"
	}
	return rec.Policy, "p"
}

// emailDMARC: p=reject (spec 004 section 8, "DMARC Requirements"; a
// quarantine is only a warning, none fails), pct=100, and adkim=s
// recommended for domains not used for bulk mail.
func (a *Auditor) emailDMARC(ctx context.Context, domain string) []Check {
	rec, at, inherited, bad := a.dmarcRecord(ctx, domain, secDMARC)
	if bad != nil {
		return []Check{*bad}
	}
	pol, tag := effectivePolicy(rec, inherited)
	from := at
	if inherited {
		from += " (the organisational domain's record)"
	}
	var c Check
	switch {
	case pol == dmarc.PolicyReject && rec.Percent < 100:
		c = row(CheckDMARC, Warn, secDMARC, "%s: %s=reject but pct=%d: the other %d%% of failing mail is only quarantined (RFC 7489 §6.6.4)", from, tag, rec.Percent, 100-rec.Percent)
	case pol == dmarc.PolicyReject:
		c = row(CheckDMARC, Pass, secDMARC, "%s: %s=reject, pct=100", from, tag)
	case pol == dmarc.PolicyQuarantine:
		c = row(CheckDMARC, Warn, secDMARC, "%s: %s=quarantine: §8 requires p=reject", from, tag)
	default:
		c = row(CheckDMARC, Fail, secDMARC, "%s: %s=%s: failing mail is delivered; §8 requires p=reject", from, tag, pol)
	}
	out := []Check{c}
	if rec.DKIMAlignment == dmarc.Strict {
		out = append(out, row(CheckDMARCAlignment, Pass, secDMARCAdkim, "%s: adkim=s", at))
	} else {
		out = append(out, row(CheckDMARCAlignment, Warn, secDMARCAdkim, "%s: adkim=r (relaxed): §8 recommends adkim=s unless the domain sends bulk mail", at))
	}
	return out
}

// mtaSTS: an _mta-sts TXT record (RFC 8461 section 3.1), a policy fetched
// over HTTPS in enforce mode (section 3.2; spec 004 section 8, "MTA-STS
// Requirement") whose mx patterns match every MX host (section 4.1).
func (a *Auditor) mtaSTS(ctx context.Context, domain string) []Check {
	name := "_mta-sts." + domain
	txts, err := a.Resolver.LookupTXT(ctx, name)
	if err != nil && !isNotFound(err) {
		return []Check{row(CheckMTASTSRecord, Error, secMTASTSRecord, "TXT lookup of %s failed: %v", name, err)}
	}
	id, err := tlspolicy.ParseSTSRecord(txts)
	switch {
	case errors.Is(err, tlspolicy.ErrNoPolicy):
		return []Check{row(CheckMTASTSRecord, Fail, secMTASTSRecord, "no v=STSv1 TXT record at %s", name)}
	case err != nil:
		return []Check{row(CheckMTASTSRecord, Fail, secMTASTSRecord, "%s: %v", name, err)}
	}
	out := []Check{row(CheckMTASTSRecord, Pass, secMTASTSRecord, "%s: v=STSv1, id=%s", name, id)}

	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	p, err := a.stsCache().Get(ctx, domain)
	switch {
	case err != nil && errors.Is(err, dnserr.ErrTemporary):
		return append(out, row(CheckMTASTSPolicy, Error, secMTASTSPolicy, "%v", err))
	case err != nil:
		return append(out, row(CheckMTASTSPolicy, Fail, secMTASTSPolicy, "policy %s not usable: %v", url, err))
	case p.Mode == tlspolicy.ModeEnforce:
		out = append(out, row(CheckMTASTSPolicy, Pass, secMTASTSPolicy, "mode: enforce, max_age: %d", int64(p.MaxAge.Seconds())))
	case p.Mode == tlspolicy.ModeTesting:
		out = append(out, row(CheckMTASTSPolicy, Warn, secMTASTSPolicy, "mode: testing: senders report TLS failures but still deliver (RFC 8461 §5); §8 requires enforce"))
	default:
		return append(out, row(CheckMTASTSPolicy, Fail, secMTASTSPolicy, "mode: %s: the policy is withdrawn; §8 requires enforce", p.Mode))
	}
	return append(out, a.mxCoverage(ctx, domain, p))
}

// mxCoverage checks that every MX host of domain matches the policy's mx
// patterns (RFC 8461 section 4.1): senders enforcing the policy refuse to
// deliver to a host it does not list.
func (a *Auditor) mxCoverage(ctx context.Context, domain string, p *tlspolicy.STSPolicy) Check {
	mxs, err := a.Resolver.LookupMX(ctx, domain)
	switch {
	case err != nil && !isNotFound(err):
		return row(CheckMTASTSMX, Error, secMTASTSMX, "MX lookup of %s failed: %v", domain, err)
	case err != nil:
		// No MX: mail goes to the domain itself (RFC 5321 §5.1).
		if p.MatchMX(domain) {
			return row(CheckMTASTSMX, Pass, secMTASTSMX, "no MX record; the implicit MX %s matches the policy", domain)
		}
		return row(CheckMTASTSMX, Fail, secMTASTSMX, "no MX record, and the implicit MX %s is not in the policy's mx list %v", domain, p.MX)
	case isNullMX(mxs):
		return row(CheckMTASTSMX, Fail, secMTASTSMX, "null MX (RFC 7505): the domain accepts no mail, yet is audited as an email domain")
	}
	var hosts, missing []string
	for _, mx := range mxs {
		h := strings.TrimSuffix(strings.ToLower(mx.Host), ".")
		hosts = append(hosts, h)
		if !p.MatchMX(h) {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return row(CheckMTASTSMX, Fail, secMTASTSMX, "MX host(s) %s not matched by the policy's mx %s: enforcing senders will not deliver to them",
			strings.Join(missing, ", "), strings.Join(p.MX, ", "))
	}
	return row(CheckMTASTSMX, Pass, secMTASTSMX, "every MX host (%s) matches the policy", strings.Join(hosts, ", "))
}

// isNullMX reports a null MX: one MX record, preference 0, host "." (RFC
// 7505 section 3).
func isNullMX(mxs []*net.MX) bool {
	return len(mxs) == 1 && mxs[0].Pref == 0 && (mxs[0].Host == "." || mxs[0].Host == "")
}

// hasNullMX reports a null MX among several records, which RFC 7505
// section 3 forbids.
func hasNullMX(mxs []*net.MX) bool {
	return slices.ContainsFunc(mxs, func(mx *net.MX) bool { return mx.Host == "." || mx.Host == "" })
}

// tlsRPT: a TLS-RPT record at _smtp._tls (RFC 8460 section 3; spec 004
// section 8, "TLS-RPT Requirement", whose example spells the name
// "_smtptls": the RFC's "_smtp._tls" is what reporters query).
func (a *Auditor) tlsRPT(ctx context.Context, domain string) Check {
	name := "_smtp._tls." + domain
	txts, err := a.Resolver.LookupTXT(ctx, name)
	if err != nil && !isNotFound(err) {
		return row(CheckTLSRPT, Error, secTLSRPT, "TXT lookup of %s failed: %v", name, err)
	}
	var recs []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=TLSRPTv1") {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return row(CheckTLSRPT, Fail, secTLSRPT, "no v=TLSRPTv1 TXT record at %s", name)
	case 1:
	default:
		return row(CheckTLSRPT, Fail, secTLSRPT, "%d v=TLSRPTv1 records at %s: reporters then assume none (RFC 8460 §3)", len(recs), name)
	}
	rua, err := parseTLSRPT(recs[0])
	if err != nil {
		return row(CheckTLSRPT, Fail, secTLSRPT, "%s: %q: %v", name, recs[0], err)
	}
	return row(CheckTLSRPT, Pass, secTLSRPT, "%s: rua=%s", name, strings.Join(rua, ","))
}

// selectorsFor lists the DKIM selectors to check for domain.
func (a *Auditor) selectorsFor(domain string) []string {
	var out []string
	for _, s := range append(slices.Clone(a.Selectors), a.DomainSelectors[domain]...) {
		s = strings.ToLower(s)
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// emailDKIM: every selector given publishes a usable key (RFC 6376 section
// 3.6.1): not revoked, RSA of at least 2048 bits (RFC 8301 section 3.2,
// dkim.MinRSABits) or Ed25519 (RFC 8463). Spec 004 section 8 requires all
// outbound mail signed; DNS alone cannot show that, only that keys exist.
func (a *Auditor) emailDKIM(ctx context.Context, domain string) []Check {
	sels := a.selectorsFor(domain)
	if len(sels) == 0 {
		return []Check{row(CheckDKIM, Warn, secDKIM, "no selector given (--selector): DNS cannot list a domain's DKIM keys")}
	}
	var out []Check
	for _, sel := range sels {
		name := sel + "._domainkey." + domain
		key, bad := a.dkimKey(ctx, name, secDKIM)
		if bad != nil {
			out = append(out, *bad)
			continue
		}
		switch {
		case key.revoked:
			out = append(out, row(CheckDKIM, Fail, secDKIM, "%s: empty p=: the key is revoked, signatures with it fail", name))
		case key.err != nil:
			out = append(out, row(CheckDKIM, Fail, secDKIM, "%s: %v", name, key.err))
		case key.testing:
			out = append(out, row(CheckDKIM, Warn, secDKIM, "%s: %s, but t=y: the domain says it is only testing DKIM", name, key))
		default:
			out = append(out, row(CheckDKIM, Pass, secDKIM, "%s: %s", name, key))
		}
	}
	return out
}

// dkimKey fetches and parses the key record at name, or returns the row
// saying why it cannot.
func (a *Auditor) dkimKey(ctx context.Context, name, section string) (*dkimKey, *Check) {
	txts, err := a.Resolver.LookupTXT(ctx, name)
	var c Check
	switch {
	case err != nil && !isNotFound(err):
		c = row(CheckDKIM, Error, section, "TXT lookup of %s failed: %v", name, err)
	case len(txts) == 0:
		c = row(CheckDKIM, Fail, section, "no key record at %s", name)
	case len(txts) > 1:
		c = row(CheckDKIM, Fail, section, "%d TXT records at %s: verifiers' results are undefined (RFC 6376 §3.6.2.2)", len(txts), name)
	default:
		key, err := parseDKIMKey(txts[0])
		if err != nil {
			c = row(CheckDKIM, Fail, section, "%s: %q: %v", name, txts[0], err)
			break
		}
		return key, nil
	}
	return nil, &c
}
