package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

// spfLookupLimit is RFC 7208 section 4.6.4's bound on the terms that cause
// DNS queries during one evaluation.
const spfLookupLimit = 10

// errSPFPerm marks a problem that makes SPF evaluation end in permerror
// (an include or redirect target without a usable record).
var errSPFPerm = errors.New("permerror")

// spfWalk follows include: and redirect= through DNS, once per domain.
type spfWalk struct {
	a       *Auditor
	records map[string]*spf.Record // by domain, lower case
	lookups int
	macros  bool // a domain-spec with macros was not followed
}

// fetch returns the SPF record of domain. A missing or unusable record is
// an error wrapping errSPFPerm (RFC 7208 sections 5.2 and 6.1: permerror);
// a lookup failure is returned as is.
func (w *spfWalk) fetch(ctx context.Context, domain string) (*spf.Record, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if r, ok := w.records[domain]; ok {
		return r, nil
	}
	txts, err := w.a.Resolver.LookupTXT(ctx, domain)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	txt, err := spf.SelectRecord(txts, false, spf.ScopeMFrom)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errSPFPerm, domain, err)
	}
	if txt == "" {
		return nil, fmt.Errorf("%w: %s has no SPF record", errSPFPerm, domain)
	}
	r, err := spf.ParseRecord(txt)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errSPFPerm, domain, err)
	}
	w.records[domain] = r
	return r, nil
}

// hasMacro reports a domain-spec with macros (RFC 7208 section 7), which
// depend on the message and so cannot be followed here.
func hasMacro(spec string) bool { return strings.Contains(spec, "%") }

// directiveDomain returns the domain-spec of an include: term.
func directiveDomain(d spf.Directive) string {
	t := strings.TrimLeft(d.Text, "+-~?")
	_, spec, _ := strings.Cut(t, ":")
	return spec
}

// terminal returns the qualifier of the "all" that ends evaluation: the
// record's own, or, when it has none, that of its redirect= target (RFC
// 7208 section 6.1: redirect is used only when no "all" is present), and
// a note naming the redirect followed.
func (w *spfWalk) terminal(ctx context.Context, rec *spf.Record) (spf.Qualifier, string, error) {
	var via []string
	for hop := 0; ; hop++ {
		if q := rec.AllQualifier(); q != "" || rec.Redirect == "" {
			note := ""
			if len(via) > 0 {
				note = " (through redirect=" + strings.Join(via, ", redirect=") + ")"
			}
			return q, note, nil
		}
		if hasMacro(rec.Redirect) {
			return "", "", fmt.Errorf("%w: redirect=%s uses macros; cannot tell how the record ends", errSPFPerm, rec.Redirect)
		}
		if hop >= spfLookupLimit {
			return "", "", fmt.Errorf("%w: more than %d redirects", errSPFPerm, spfLookupLimit)
		}
		via = append(via, rec.Redirect)
		next, err := w.fetch(ctx, rec.Redirect)
		if err != nil {
			return "", "", fmt.Errorf("redirect=%s: %w", rec.Redirect, err)
		}
		rec = next
	}
}

// count adds up the DNS-querying terms of rec and of the records it
// includes or redirects to (RFC 7208 section 4.6.4), stopping once past
// the limit (which also ends include loops).
func (w *spfWalk) count(ctx context.Context, rec *spf.Record) error {
	for _, d := range rec.Directives {
		switch d.Mechanism {
		case "a", "mx", "ptr", "exists":
			w.lookups++
		case "include":
			w.lookups++
			if w.lookups > spfLookupLimit {
				return nil
			}
			spec := directiveDomain(d)
			if hasMacro(spec) {
				w.macros = true
				continue
			}
			sub, err := w.fetch(ctx, spec)
			if err != nil {
				return fmt.Errorf("include:%s: %w", spec, err)
			}
			if err := w.count(ctx, sub); err != nil {
				return err
			}
		}
		if w.lookups > spfLookupLimit {
			return nil
		}
	}
	if rec.Redirect != "" && rec.AllQualifier() == "" {
		w.lookups++
		if w.lookups > spfLookupLimit {
			return nil
		}
		if hasMacro(rec.Redirect) {
			w.macros = true
			return nil
		}
		sub, err := w.fetch(ctx, rec.Redirect)
		if err != nil {
			return fmt.Errorf("redirect=%s: %w", rec.Redirect, err)
		}
		return w.count(ctx, sub)
	}
	return nil
}

// parseTagList parses a tag=value list (RFC 6376 section 3.2, also the
// shape of TLS-RPT records, RFC 8460 section 3): whitespace around tags
// and values dropped, a trailing ";" allowed, a repeated tag an error.
func parseTagList(s string) ([]string, map[string]string, error) {
	var order []string
	tags := map[string]string{}
	for _, f := range strings.Split(s, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, nil, fmt.Errorf("field %q is not tag=value", f)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, dup := tags[k]; dup {
			return nil, nil, fmt.Errorf("tag %q repeated", k)
		}
		order = append(order, k)
		tags[k] = v
	}
	return order, tags, nil
}

// parseTLSRPT checks a v=TLSRPTv1 record (RFC 8460 section 3) and returns
// its rua= URIs, each mailto: or https:.
func parseTLSRPT(txt string) ([]string, error) {
	order, tags, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if len(order) == 0 || order[0] != "v" || tags["v"] != "TLSRPTv1" {
		return nil, errors.New("the first field must be v=TLSRPTv1")
	}
	ruaTag, ok := tags["rua"]
	if !ok || ruaTag == "" {
		return nil, errors.New("no rua=: reports have nowhere to go")
	}
	var rua []string
	for _, u := range strings.Split(ruaTag, ",") {
		u = strings.TrimSpace(u)
		l := strings.ToLower(u)
		if !(strings.HasPrefix(l, "mailto:") && len(u) > 7 || strings.HasPrefix(l, "https://") && len(u) > 8) {
			return nil, fmt.Errorf("rua URI %q: want a mailto: or https: URI (RFC 8460 §3)", u)
		}
		rua = append(rua, u)
	}
	return rua, nil
}

// dkimKey is a parsed DKIM key record (RFC 6376 section 3.6.1).
type dkimKey struct {
	typ     string // k=: "rsa" (the default) or "ed25519"
	bits    int    // RSA modulus size
	revoked bool   // empty p=
	testing bool   // t=y
	// err: the record parses but its key is not usable for signing
	// email (unknown key type, undecodable, too short, not for email).
	err error
}

func (k *dkimKey) String() string {
	switch k.typ {
	case "rsa":
		return fmt.Sprintf("RSA key, %d bits", k.bits)
	case "ed25519":
		return "Ed25519 key (RFC 8463)"
	}
	return k.typ + " key"
}

// parseDKIMKey parses a key record: v=DKIM1 first when present, p=
// required (RFC 6376 section 3.6.1). A syntax error is returned as the
// error; a record that parses but whose key is unusable has dkimKey.err.
func parseDKIMKey(txt string) (*dkimKey, error) {
	order, tags, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tags["v"]; ok && (order[0] != "v" || v != "DKIM1") {
		return nil, errors.New("v= must be the first tag and be DKIM1")
	}
	p, ok := tags["p"]
	if !ok {
		return nil, errors.New("no p= tag")
	}
	k := &dkimKey{typ: strings.ToLower(tags["k"])}
	if k.typ == "" {
		k.typ = "rsa"
	}
	for _, flag := range strings.Split(tags["t"], ":") {
		if strings.TrimSpace(flag) == "y" {
			k.testing = true
		}
	}
	p = strings.Join(strings.Fields(p), "") // FWS is allowed inside base64 (RFC 6376 §3.6.1)
	if p == "" {
		k.revoked = true
		return k, nil
	}
	if s, ok := tags["s"]; ok {
		forEmail := false
		for _, st := range strings.Split(s, ":") {
			if st = strings.TrimSpace(st); st == "*" || st == "email" {
				forEmail = true
			}
		}
		if !forEmail {
			k.err = fmt.Errorf("s=%s: the key is not for email", s)
			return k, nil
		}
	}
	if h, ok := tags["h"]; ok && !strings.Contains(":"+strings.ReplaceAll(h, " ", "")+":", ":sha256:") {
		k.err = fmt.Errorf("h=%s: sha256 not allowed; RFC 8301 §3.1 forbids sha1", h)
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		k.err = fmt.Errorf("p= is not base64: %v", err)
		return k, nil
	}
	switch k.typ {
	case "rsa":
		var pub *rsa.PublicKey
		if parsed, err := x509.ParsePKIXPublicKey(der); err == nil {
			pub, _ = parsed.(*rsa.PublicKey)
		} else if pk, err := x509.ParsePKCS1PublicKey(der); err == nil {
			pub = pk
		}
		if pub == nil {
			k.err = errors.New("p= is not an RSA public key")
			return k, nil
		}
		k.bits = pub.N.BitLen()
		if k.bits < dkim.MinRSABits {
			k.err = fmt.Errorf("RSA key of %d bits: at least %d needed (RFC 8301 §3.2)", k.bits, dkim.MinRSABits)
		}
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			k.err = fmt.Errorf("k=ed25519 key of %d bytes, want %d (RFC 8463 §4.2)", len(der), ed25519.PublicKeySize)
		}
	default:
		k.err = fmt.Errorf("k=%s: unknown key type (want rsa or ed25519)", k.typ)
	}
	return k, nil
}
