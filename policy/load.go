package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/contrib"
)

// ErrInvalid is wrapped by every error that says a policy is not valid.
var ErrInvalid = errors.New("invalid policy")

// Problem is one thing wrong with a policy file or an override.
type Problem struct {
	File string // path, "embedded default" or "--set"
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key, "" for syntax errors
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one load; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) recognise a failed load.
func (ps Problems) Unwrap() error { return ErrInvalid }

// EmbeddedName is the Source of the built-in default policy.
const EmbeddedName = "embedded default"

// Load reads the policy file at path (or, when path is "", the default
// policy embedded in the binary: contrib/nzsecure-milter.toml) and applies the
// overrides, each "KEY=VALUE" with VALUE a TOML value. On any problem it
// returns a Problems error listing all of them (never only the first).
func Load(path string, overrides []string) (*Policy, error) {
	if path == "" {
		return Parse(EmbeddedName, contrib.DefaultPolicy, overrides)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data, overrides)
}

// Parse is Load on data already read; name is used in problem reports.
func Parse(name string, data []byte, overrides []string) (*Policy, error) {
	var probs Problems
	values, syntax := flattenTOML(data)
	if syntax != nil {
		return nil, Problems{syntaxProblem(name, syntax)}
	}
	lines := keyLines(data)
	type item struct {
		file string
		line int
		key  string
		val  any
	}
	var items []item
	for _, k := range sortedKeys(values) {
		items = append(items, item{name, lines[k], k, values[k]})
	}
	for i, o := range overrides {
		kv, err := parseOverride(o)
		if err != nil {
			probs = append(probs, Problem{File: "--set", Line: i + 1, Msg: err.Error()})
			continue
		}
		for _, k := range sortedKeys(kv) {
			items = append(items, item{"--set", i + 1, k, kv[k]})
		}
	}

	// The profile decides the defaults, so find it first; the last setting wins.
	profile := ProfileSGE
	for _, it := range items {
		if it.key != "profile" {
			continue
		}
		s, ok := it.val.(string)
		if !ok || profileDefaults(s) == nil {
			probs = append(probs, Problem{it.file, it.line, it.key,
				fmt.Sprintf("must be one of %q, %q, %q; got %s", ProfileSGE, ProfileSecureMail, ProfileSEEMail, show(it.val))})
			continue
		}
		profile = s
	}
	p := profileDefaults(profile)
	p.Source = name
	for _, it := range items {
		if it.key == "profile" {
			continue
		}
		spec, ok := keySpecs[it.key]
		if !ok {
			spec, ok = prefixSpec(it.key)
		}
		if !ok {
			probs = append(probs, Problem{it.file, it.line, it.key, "unknown key" + suggest(it.key)})
			continue
		}
		if err := spec.set(p, it.val); err != nil {
			probs = append(probs, Problem{it.file, it.line, it.key, err.Error()})
		}
	}
	listProbs, listWarnings := applyListFiles(p) // R55, R108: lists read from LDAP
	for _, pr := range listProbs {
		pr.File, pr.Line = name, lines[pr.Key]
		probs = append(probs, pr)
	}
	for _, pr := range listWarnings {
		pr.File, pr.Line = name, lines[pr.Key]
		p.Warnings = append(p.Warnings, pr)
	}
	for _, pr := range crossCheck(p) {
		pr.File, pr.Line = name, lines[pr.Key]
		probs = append(probs, pr)
	}
	for _, pr := range lintWarnings(p) {
		pr.File, pr.Line = name, lines[pr.Key]
		p.Warnings = append(p.Warnings, pr)
	}
	if p.AuthservID == "" {
		p.AuthservIDDefault = true
		if h, err := os.Hostname(); err == nil {
			p.AuthservID = h
		} else {
			p.AuthservID = "localhost"
		}
	}
	p.derived = derive(p)
	if len(probs) > 0 {
		// File problems first, in line order, then the overrides in order.
		sort.SliceStable(probs, func(i, j int) bool {
			a, b := probs[i], probs[j]
			if (a.File == "--set") != (b.File == "--set") {
				return b.File == "--set"
			}
			return a.Line < b.Line
		})
		return nil, probs
	}
	return p, nil
}

// derived is what a transaction would otherwise recompute from the keys.
type derived struct {
	// workspace is inbound.trusted_lists as a Workspace (R108); nil when
	// an entry cannot be one (a "*.suffix" wildcard): no warning is lifted.
	workspace *Workspace
	// lookalike is our domains and the secure lists' exact entries
	// prepared for outbound.lookalike (issue 17).
	lookalike *LookalikeSet
}

func derive(p *Policy) *derived {
	d := &derived{}
	if ws, err := NewWorkspace(p.Inbound.TrustedLists); err == nil {
		d.workspace = ws
	}
	d.lookalike = NewLookalikeSet(p.lookalikeKnown())
	return d
}

// crossCheck reports problems between keys: every by_class word must be a
// classification the policy knows. Problems carry the key; Parse adds lines.
func crossCheck(p *Policy) []Problem {
	var out []Problem
	for class := range p.Outbound.ByClass {
		if _, ok := p.Classification.Levels[class]; !ok {
			out = append(out, Problem{Key: "outbound.by_class." + class,
				Msg: fmt.Sprintf("%q is not a classification of [classification.levels]", class)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// lintWarnings: what is valid but almost surely a mistake.
//
// internal_networks covering the internet: every client in it counts as
// internal, so its mail is taken as outbound: no SPF, Sender ID, DKIM,
// DMARC or warnings, and the MTA may relay it. A prefix shorter than /8
// (IPv4; /104 as IPv4-mapped IPv6) or /16 (IPv6) covers at least 1/256 of
// the address space; 0.0.0.0/0 and ::/0 are all of it. Private ranges
// (10.0.0.0/8, fc00::/7) are long enough not to warn.
func lintWarnings(p *Policy) Problems {
	var out Problems
	for _, n := range p.InternalNetworks {
		short := 8
		switch {
		case n.Addr().Is4In6():
			short = 96 + 8
		case n.Addr().Is6():
			short = 16
		}
		if n.Bits() < short && !(n.Addr().Is6() && !n.Addr().Is4In6() && privateV6.Overlaps(n) && n.Bits() >= privateV6.Bits()) {
			out = append(out, Problem{Key: "internal_networks", Msg: fmt.Sprintf(
				"warning: %s covers the internet (a prefix shorter than /%d): every client in it counts as internal and its mail as outbound, unchecked (no SPF, DKIM, DMARC or warnings); list only your own networks", n, short)})
		}
	}
	if len(p.Domains) == 0 {
		// The embedded default has none: a new installation must set them.
		out = append(out, Problem{Key: "domains", Msg: "warning: no domains configured: every outbound message is refused (R66) and no inbound From: is recognised as ours (005); set domains = [\"your-agency.govt.nz\"]"})
	}
	return append(out, smimeLintWarnings(p)...)
}

// smimeLintWarnings: smime.mode = "on" (the seemail default) without what
// it needs is valid, fail safe, and almost surely a mistake (issue 14):
// with no smime.identities every message to a peer agency is held (SECURE
// DELIVERY DELAYED 211) and no mail encrypted to us can be read; without
// smime.trust_anchors no peer certificate is trusted, so every message to
// a peer is held (201).
func smimeLintWarnings(p *Policy) Problems {
	if p.SMIME.Mode != SMIMEOn {
		return nil
	}
	var out Problems
	switch {
	case len(p.SMIME.Identities) == 0 && len(p.SMIME.RenewalKeys) > 0:
		// A new gateway waiting for its first certificate (R51): the
		// renewal check fetches it for a renewal key once the CA
		// publishes it.
		out = append(out, Problem{Key: "smime.identities", Msg: "warning: smime.mode is on and no identities are set: until a certificate for a key of smime.renewal_keys is fetched from the directories into smime.own_dir (R51; `nzsecure-milter certs renew`), every message to a peer agency is held (SECURE DELIVERY DELAYED 211) and mail encrypted to us cannot be read"})
	case len(p.SMIME.Identities) == 0:
		out = append(out, Problem{Key: "smime.identities", Msg: "warning: smime.mode is on but no identities are set: every message to a peer agency is held (SECURE DELIVERY DELAYED 211) and mail encrypted to us cannot be read; add \"your-agency.govt.nz:/path/cert.pem:/path/key.pem\" or set smime.mode = \"off\""})
	}
	if len(p.SMIME.TrustAnchors) == 0 {
		out = append(out, Problem{Key: "smime.trust_anchors", Msg: "warning: smime.mode is on but no trust anchors are set: no peer certificate is trusted, so every message to a peer agency is held (SECURE DELIVERY DELAYED 201) and no inbound signature verifies"})
	}
	return out
}

// privateV6 is the unique local range (RFC 4193): shorter than /16 but
// not the internet.
var privateV6 = netip.MustParsePrefix("fc00::/7")
