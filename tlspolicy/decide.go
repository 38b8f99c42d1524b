package tlspolicy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Decider turns the policy's secure-domain lists and MTA-STS policies into
// Postfix TLS policies (smtp_tls_policy_maps values).
type Decider struct {
	// Policy returns the policy in force (it changes on SIGHUP).
	Policy func() *policy.Policy
	// STS discovers MTA-STS policies; nil turns MTA-STS off.
	STS *STSCache
	Log *slog.Logger
}

// Lookup answers one socketmap request. The key is the next-hop domain
// Postfix is delivering to; "[host]:port" next hops (explicit relays) are not
// recipient domains and get NOTFOUND, so Postfix's own default applies.
func (d *Decider) Lookup(ctx context.Context, name, key string) Reply {
	domain := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(key)), ".")
	if domain == "" || strings.HasPrefix(domain, "[") || strings.ContainsAny(domain, " :/@") {
		return Reply{Status: NotFound}
	}
	p := d.Policy()
	if data, list := secureListPolicy(p, domain); data != "" {
		d.log().Info("tls policy", "domain", domain, "source", list, "policy", data)
		return Reply{OK, data}
	}
	if d.STS == nil || !p.TLSPolicy.MTASTS {
		return Reply{Status: NotFound}
	}
	sts, err := d.STS.Get(ctx, domain)
	switch {
	case errors.Is(err, ErrNoPolicy):
		return Reply{Status: NotFound}
	case err != nil:
		// RFC 8461 section 5: without a usable policy, deliver as before.
		d.log().Warn("MTA-STS policy unavailable; no TLS policy applied", "domain", domain, "error", err.Error())
		return Reply{Status: NotFound}
	case sts.Mode == ModeTesting:
		d.log().Info("MTA-STS testing policy: not enforced", "domain", domain, "mx", sts.MX)
		return Reply{Status: NotFound}
	case sts.Mode != ModeEnforce:
		return Reply{Status: NotFound}
	}
	data := fmt.Sprintf("secure match=%s servername=hostname protocols=%s", postfixMatch(sts.MX), protocols(p))
	d.log().Info("tls policy", "domain", domain, "source", "mta-sts", "policy", data, "policy_id", sts.ID)
	return Reply{OK, data}
}

// secureListPolicy is the policy for a domain on a secure list, "" if none.
func secureListPolicy(p *policy.Policy, domain string) (data, list string) {
	o := &p.Outbound
	switch {
	case o.SecureDomains.Match(domain):
		list = "secure_domains"
	case o.SEEMailDomains.Match(domain):
		list = "seemail_domains"
	case o.SecureMailDomains.Match(domain):
		list = "securemail_domains"
	case p.TLSPolicy.Exceptions && o.Exceptions.Match(domain):
		list = "exceptions"
	default:
		return "", ""
	}
	return levelPolicy(p), list
}

func levelPolicy(p *policy.Policy) string {
	if p.TLSPolicy.Level == policy.TLSSecure {
		return "secure match=nexthop:dot-nexthop protocols=" + protocols(p)
	}
	return "encrypt protocols=" + protocols(p)
}

func protocols(p *policy.Policy) string {
	return ">=TLSv" + p.TLSPolicy.MinTLS
}

// postfixMatch converts MTA-STS MX patterns to Postfix's match= syntax:
// "*.example.com" becomes ".example.com" (Postfix's parent-domain form).
func postfixMatch(mx []string) string {
	out := make([]string, len(mx))
	for i, m := range mx {
		if suffix, ok := strings.CutPrefix(m, "*."); ok {
			m = "." + suffix
		}
		out[i] = m
	}
	return strings.Join(out, ":")
}

// WritePostmap writes the secure lists as a Postfix TLS policy table for
// `postmap` (for sites that prefer a hash table to the socketmap service).
// Wildcards become Postfix's ".suffix" parent-domain entries.
func WritePostmap(w io.Writer, p *policy.Policy) error {
	lines := map[string]string{}
	add := func(set policy.DomainSet) {
		for _, e := range set.Entries() {
			if suffix, ok := strings.CutPrefix(e, "*."); ok {
				e = "." + suffix
			}
			lines[e] = levelPolicy(p)
		}
	}
	add(p.Outbound.SecureDomains)
	add(p.Outbound.SEEMailDomains)
	add(p.Outbound.SecureMailDomains)
	if p.TLSPolicy.Exceptions {
		add(p.Outbound.Exceptions)
	}
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if _, err := fmt.Fprintf(w, "# TLS policy table written by nzsecure-milter from %s; run postmap on it.\n", p.Source); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "%s %s\n", k, lines[k]); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decider) log() *slog.Logger {
	if d.Log == nil {
		return slog.Default()
	}
	return d.Log
}
