package audit

import (
	"context"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dmarc"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

// NonEmail checks a domain that sends and receives no mail (spec 004
// section 9 and the "All Non-Email Enabled Domains" part of section 10):
// "v=spf1 -all", an empty key "v=DKIM1; p=" at *._domainkey, DMARC
// p=reject with strict alignment, and no MX or a null MX (RFC 7505).
func (a *Auditor) NonEmail(ctx context.Context, domain string) DomainReport {
	r := DomainReport{Domain: domain, Kind: KindNonEmail}
	r.Checks = append(r.Checks, a.nonEmailSPF(ctx, domain))
	r.Checks = append(r.Checks, a.nonEmailDKIM(ctx, domain))
	r.Checks = append(r.Checks, a.nonEmailDMARC(ctx, domain)...)
	r.Checks = append(r.Checks, a.nonEmailMX(ctx, domain))
	return r
}

// nonEmailSPF: the record authorises no host and ends in -all (spec 004
// section 9, "SPF"), so every message fails SPF (RFC 7208 section 5.1).
func (a *Auditor) nonEmailSPF(ctx context.Context, domain string) Check {
	rec, bad := a.spfRecord(ctx, domain, secNonEmailSPF)
	if bad != nil {
		return *bad
	}
	if len(rec.Directives) == 1 && rec.Directives[0].Mechanism == "all" && rec.Directives[0].Qualifier == spf.QualifierFail {
		return row(CheckSPF, Pass, secNonEmailSPF, "%q denies every sender", rec.Text)
	}
	return row(CheckSPF, Fail, secNonEmailSPF, "%q: a non-email domain's record must be exactly \"v=spf1 -all\"", rec.Text)
}

// nonEmailDKIM: an empty public key at *._domainkey (spec 004 section 9,
// "DKIM"): a wildcard answers for every selector, and an empty p= is a
// revoked key (RFC 6376 section 3.6.1), so every signature fails. The
// literal name "*._domainkey.D" is asked: a DNS query for the wildcard's
// own owner name returns it (RFC 4592 section 2.2.1).
func (a *Auditor) nonEmailDKIM(ctx context.Context, domain string) Check {
	name := "*._domainkey." + domain
	key, bad := a.dkimKey(ctx, name, secNonEmailDKIM)
	if bad != nil {
		if bad.Status == Fail && strings.HasPrefix(bad.Reason, "no key record") {
			bad.Reason += `: publish "v=DKIM1; p=" so that signatures in the domain's name fail`
		}
		return *bad
	}
	if key.revoked {
		return row(CheckDKIM, Pass, secNonEmailDKIM, "%s: empty p=: every signature fails", name)
	}
	return row(CheckDKIM, Fail, secNonEmailDKIM, "%s publishes a key: a non-email domain's must be empty (\"v=DKIM1; p=\")", name)
}

// nonEmailDMARC: p=reject (spec 004 section 9, "DMARC"), published at the
// domain itself: a parent's sp=reject is not enough by section 9's own
// example 2 (inherited reject is a warning here), and strict alignment
// (adkim=s, aspf=s).
func (a *Auditor) nonEmailDMARC(ctx context.Context, domain string) []Check {
	rec, at, inherited, bad := a.dmarcRecord(ctx, domain, secNonEmailDMARC)
	if bad != nil {
		return []Check{*bad}
	}
	pol, tag := effectivePolicy(rec, inherited)
	var c Check
	switch {
	case pol != dmarc.PolicyReject:
		c = row(CheckDMARC, Fail, secNonEmailDMARC, "%s: %s=%s: §9 requires p=reject", at, tag, pol)
	case inherited:
		c = row(CheckDMARC, Warn, secNonEmailDMARC, "no record at _dmarc.%s; the organisational domain's %s=reject applies, but §9 asks every non-email domain for its own", domain, tag)
	case rec.Percent < 100:
		c = row(CheckDMARC, Warn, secNonEmailDMARC, "%s: p=reject but pct=%d: §9 rejects 100%% of failing mail", at, rec.Percent)
	default:
		c = row(CheckDMARC, Pass, secNonEmailDMARC, "%s: p=reject", at)
	}
	out := []Check{c}
	var relaxed []string
	if rec.DKIMAlignment != dmarc.Strict {
		relaxed = append(relaxed, "adkim=r")
	}
	if rec.SPFAlignment != dmarc.Strict {
		relaxed = append(relaxed, "aspf=r")
	}
	if len(relaxed) > 0 {
		out = append(out, row(CheckDMARCAlignment, Warn, secNonEmailAlign, "%s: %s: §9 sets strict alignment (adkim=s; aspf=s)", at, strings.Join(relaxed, ", ")))
	} else {
		out = append(out, row(CheckDMARCAlignment, Pass, secNonEmailAlign, "%s: adkim=s, aspf=s", at))
	}
	return out
}

// nonEmailMX: no MX, or a null MX (RFC 7505 section 3) saying outright
// that the domain accepts no mail.
func (a *Auditor) nonEmailMX(ctx context.Context, domain string) Check {
	mxs, err := a.Resolver.LookupMX(ctx, domain)
	switch {
	case err != nil && !isNotFound(err):
		return row(CheckMX, Error, secNonEmailMX, "MX lookup of %s failed: %v", domain, err)
	case err != nil || len(mxs) == 0:
		return row(CheckMX, Pass, secNonEmailMX, "no MX record (a null MX \"0 .\" would say so explicitly, RFC 7505)")
	case isNullMX(mxs):
		return row(CheckMX, Pass, secNonEmailMX, "null MX \"0 .\": the domain accepts no mail")
	case hasNullMX(mxs):
		return row(CheckMX, Fail, secNonEmailMX, "a null MX among other MX records (RFC 7505 §3 forbids mixing them)")
	}
	var hosts []string
	for _, mx := range mxs {
		hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
	}
	return row(CheckMX, Fail, secNonEmailMX, "MX %s: a non-email domain should publish no MX or a null MX \"0 .\"", strings.Join(hosts, ", "))
}
