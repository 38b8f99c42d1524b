package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// Misdirected mail (issue 17, spec 000 "Government to Citizen
// communications": "Agencies MUST implement robust controls to prevent
// information being sent to the wrong email address(es)"). A recipient
// domain that looks like one of our domains or an exact entry of a secure
// list without being it is most likely a typing error or a deliberate
// lookalike registration; mail to it is refused or held
// (outbound.lookalike).
//
// The rules, in order (each compares the recipient with every known domain;
// a recipient equal to a known domain, or below one, is that domain's and
// never a lookalike):
//
//  1. confusable characters: after UTS #46 mapping, the Unicode form with
//     combining marks removed (NFD), Greek, Cyrillic, Armenian and Latin
//     letters that look like another Latin one mapped to that letter
//     (UTS #39 confusables) and 0->o, 1->l, i->l, rn->m, vv->w, equals the
//     known domain's form ("аgency.govt.nz" with a Cyrillic а,
//     "agency.g0vt.nz", "rnfat.govt.nz"). Any length: this is not a typo
//     but a name built to be read as another.
//  2. dots and hyphens: the same letters with dots and hyphens removed
//     ("agency-govt.nz", "agencygovt.nz", "agen-cy.govt.nz").
//  3. labels: the known domain's labels with one dropped or added, the
//     first label kept ("agency.nz", "agency.govt.co.nz"), or the known
//     domain followed by more labels ("agency.govt.nz.evil.example").
//  4. suffix: the same first label and number of labels, the rest one or
//     two edits away ("agency.gov.nz" for "agency.govt.nz", "agency.co.nz"
//     for "agency.com.nz"), or a government name with another top-level
//     domain ("agency.govt.com").
//  5. typing errors: the registrable label (the label before the public
//     suffix, publicsuffix list) under the same suffix at Damerau-
//     Levenshtein distance 1 (an added, dropped, changed or swapped
//     letter) when the known label has at least 5 characters, or distance 2
//     when it has at least 12, and closer to exactly one known domain than to
//     any other. Short labels are names in their own right: "ird", "mfe",
//     "msd" and "moh" are four agencies, so "mod" is not a misspelling of
//     "moh".
//
//  6. below a lookalike: a parent of the recipient domain that is not a
//     public suffix matches rules 1-5 ("mail.agency.gov.nz",
//     "govt.agency.nz" below "agency.nz").
//
// Rule 3 also takes the known domain's labels in another order
// ("govt.agency.nz", "nz.govt.agency").
//
// Wildcard entries ("*.govt.nz") name no one domain and are not compared.

// lookalikeLatin maps the lower-case Greek and Cyrillic letters a reader
// cannot tell from Latin ones in a domain (UTS #39 confusables; the same
// idea as classify's latinLookalike, which maps capitals for markings).
var lookalikeLatin = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'һ': 'h', 'і': 'i', 'ї': 'i', 'ј': 'j',
	'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't', 'у': 'y',
	'х': 'x', 'ѕ': 's', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ү': 'y', 'ӏ': 'l', 'ɡ': 'g',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o',
	'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w',
	// Armenian
	'օ': 'o', 'ս': 'u', 'ո': 'n', 'հ': 'h', 'ց': 'g', 'զ': 'q', 'ա': 'w',
	// Latin letters that read as others
	'ı': 'i', 'ł': 'l', 'ɑ': 'a', 'ɩ': 'l', 'ƅ': 'b', 'ɒ': 'a', 'ø': 'o', 'đ': 'd', 'ħ': 'h',
}

// lookalikeSkeleton is d's confusable form (rule 1). d is an A-label form.
func lookalikeSkeleton(d string) string {
	if strings.Contains(d, "xn--") {
		if u, err := idna.Lookup.ToUnicode(d); err == nil {
			d = u
		}
	}
	var b strings.Builder
	// Accents and other combining marks are left out ("agéncy",
	// "írd"): a reader skims past them, and UTS #46 keeps them.
	for _, r := range norm.NFD.String(d) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if l, ok := lookalikeLatin[r]; ok {
			r = l
		}
		switch r {
		case '0':
			r = 'o'
		case '1', 'i':
			r = 'l'
		}
		b.WriteRune(r)
	}
	s := strings.ReplaceAll(b.String(), "rn", "m")
	return strings.ReplaceAll(s, "vv", "w")
}

// flatReplacer removes dots and hyphens (rule 2); built once, since a
// Replacer builds its tables on first use.
var flatReplacer = strings.NewReplacer(".", "", "-", "")

// lookalikeName is a domain split for comparison.
type lookalikeName struct {
	domain   string   // A-label form
	skeleton string   // rule 1
	flat     string   // rule 2: skeleton without dots and hyphens
	labels   []string // skeleton labels
	label    string   // registrable label (skeleton)
	suffix   string   // public suffix (skeleton)
	// rawLabel is the registrable label as written (A-label form): the
	// skeleton's "rn"->"m" and "vv"->"w" change a label's length, so a
	// typing error next to them ("parnter" for "partner") is one edit
	// away only as written.
	rawLabel string
}

func newLookalikeName(d string) (lookalikeName, bool) {
	d, ok := message.NormalizeDomain(d)
	if !ok || strings.HasPrefix(d, "*") {
		return lookalikeName{}, false
	}
	n := lookalikeName{domain: d, skeleton: lookalikeSkeleton(d)}
	n.flat = flatReplacer.Replace(n.skeleton)
	n.labels = strings.Split(n.skeleton, ".")
	suffix, _ := publicsuffix.PublicSuffix(d)
	k := strings.Count(suffix, ".") + 1
	// The skeleton maps letters, never dots: raw has as many labels.
	raw := strings.Split(d, ".")
	if len(raw) != len(n.labels) {
		raw = n.labels
	}
	switch {
	case k < len(n.labels):
		n.suffix = strings.Join(n.labels[len(n.labels)-k:], ".")
		n.label = n.labels[len(n.labels)-k-1]
		n.rawLabel = raw[len(raw)-k-1]
	case len(n.labels) >= 2:
		// A domain that is itself on the public suffix list
		// (parliament.nz, govt.nz): its first label is its name, so that
		// parliment.nz is a typing error of it.
		n.suffix = strings.Join(n.labels[1:], ".")
		n.label = n.labels[0]
		n.rawLabel = raw[0]
	}
	return n, true
}

// Lookalike reports whether rcptDomain looks like one of known without
// being it or below it: intended is the known domain it most likely means,
// why the rule that matched. Entries of known that are wildcards or not
// domains are ignored.
func Lookalike(rcptDomain string, known []string) (intended, why string, ok bool) {
	return NewLookalikeSet(known).Match(rcptDomain)
}

// LookalikeSet is a list of known domains prepared once (per policy load)
// for Match.
type LookalikeSet struct {
	names []lookalikeName
	// exact holds the known domains and their organisations (registrable
	// domains, eTLD+1): a recipient equal to one or below one is its own
	// (gcsb.govt.nz when nzism.gcsb.govt.nz is known), not a lookalike.
	exact map[string]bool
	// memo keeps the answers for the domains seen lately: a gateway
	// sees the same few hundred domains all day, and a Match (UTS #46,
	// the skeleton, the public suffix list) costs microseconds each
	// message (issue 13). Match is a pure function of the set and the
	// domain, so the memo changes no decision.
	memoMu sync.Mutex
	memo   map[string]lookalikeAnswer
}

type lookalikeAnswer struct {
	intended, why string
	ok            bool
}

// maxLookalikeMemo bounds the memo; when full it starts again.
const maxLookalikeMemo = 4096

// NewLookalikeSet prepares known; wildcards and entries that are not
// domains are left out.
func NewLookalikeSet(known []string) *LookalikeSet {
	s := &LookalikeSet{exact: map[string]bool{}}
	var orgs []string
	for _, k := range known {
		n, valid := newLookalikeName(k)
		if !valid || s.exact[n.domain] {
			continue
		}
		s.exact[n.domain] = true
		s.names = append(s.names, n)
		if org, err := publicsuffix.EffectiveTLDPlusOne(n.domain); err == nil {
			orgs = append(orgs, org)
		}
	}
	// The organisations themselves are compared too: with
	// nzism.gcsb.govt.nz known, gcsb.gov.nz looks like gcsb.govt.nz.
	for _, org := range orgs {
		if s.exact[org] {
			continue
		}
		if o, valid := newLookalikeName(org); valid {
			s.exact[org] = true
			s.names = append(s.names, o)
		}
	}
	return s
}

// Len is the number of known domains.
func (s *LookalikeSet) Len() int { return len(s.names) }

// Match is Lookalike against the prepared set.
func (s *LookalikeSet) Match(rcptDomain string) (intended, why string, ok bool) {
	s.memoMu.Lock()
	a, hit := s.memo[rcptDomain]
	s.memoMu.Unlock()
	if hit {
		return a.intended, a.why, a.ok
	}
	intended, why, ok = s.match(rcptDomain)
	s.memoMu.Lock()
	if s.memo == nil || len(s.memo) >= maxLookalikeMemo {
		s.memo = make(map[string]lookalikeAnswer, 64)
	}
	s.memo[rcptDomain] = lookalikeAnswer{intended, why, ok}
	s.memoMu.Unlock()
	return intended, why, ok
}

func (s *LookalikeSet) match(rcptDomain string) (intended, why string, ok bool) {
	r, valid := newLookalikeName(rcptDomain)
	if !valid {
		return "", "", false
	}
	if s.exact[r.domain] {
		return "", "", false // that domain's own
	}
	// Below a known domain is that domain's own, unless the known domain
	// is a public suffix: under govt.nz (on a list by mistake, or as a
	// domain of its own) every agency is registered, heath.govt.nz
	// included.
	for d := r.domain; ; {
		_, rest, more := strings.Cut(d, ".")
		if !more {
			break
		}
		d = rest
		if s.exact[d] {
			if ps, _ := publicsuffix.PublicSuffix(d); ps == d {
				break
			}
			return "", "", false
		}
	}
	if intended, why, ok = s.matchName(r); ok {
		return intended, why, true
	}
	// Rule 6: below a lookalike. Whoever holds agency.gov.nz holds
	// mail.agency.gov.nz; whoever holds agency.nz holds govt.agency.nz.
	// Parents that are public suffixes (gov.nz is not one, govt.nz and
	// co.nz are) are shared by everyone under them and say nothing.
	for d := r.domain; ; {
		_, rest, more := strings.Cut(d, ".")
		if !more || !strings.Contains(rest, ".") {
			break
		}
		d = rest
		if ps, _ := publicsuffix.PublicSuffix(d); ps == d {
			break
		}
		p, valid := newLookalikeName(d)
		if !valid {
			break
		}
		if intended, why, ok = s.matchName(p); ok {
			return intended, fmt.Sprintf("below %s: %s", d, why), true
		}
	}
	return "", "", false
}

// matchName applies rules 1-5 to r, a domain that is neither known nor
// below a known one.
func (s *LookalikeSet) matchName(r lookalikeName) (intended, why string, ok bool) {
	names := s.names
	for _, n := range names {
		if r.skeleton == n.skeleton {
			return n.domain, "confusable characters", true
		}
	}
	for _, n := range names {
		if r.flat == n.flat {
			return n.domain, "dots or hyphens moved", true
		}
	}
	for _, n := range names {
		if strings.HasPrefix(r.skeleton, n.skeleton+".") {
			return n.domain, "the domain followed by other labels", true
		}
		if len(r.labels) == len(n.labels)-1 && r.labels[0] == n.labels[0] && subsequence(r.labels, n.labels) {
			return n.domain, "a label dropped", true
		}
		if len(r.labels) == len(n.labels)+1 && r.labels[0] == n.labels[0] && subsequence(n.labels, r.labels) {
			return n.domain, "a label added", true
		}
		if len(r.labels) == len(n.labels) && len(r.labels) > 1 && sameLabels(r.labels, n.labels) {
			return n.domain, "labels in another order", true
		}
	}
	if r.label == "" {
		return "", "", false
	}
	for _, n := range names {
		if len(r.labels) < 2 || len(r.labels) != len(n.labels) || r.labels[0] != n.labels[0] {
			continue
		}
		// The first label kept, the rest (the suffix, whether or not the
		// public suffix list has the wrong one: gov.nz is not on it) one
		// or two edits away.
		rs, ns := strings.Join(r.labels[1:], "."), strings.Join(n.labels[1:], ".")
		if lookalikeDistance(rs, ns, 2) <= 2 || governmentTLDSwap(r.labels, n.labels) {
			return n.domain, fmt.Sprintf("%s instead of %s", rs, ns), true
		}
	}
	// Known domains under one registrable domain (agency.govt.nz and
	// mail.agency.govt.nz) are one candidate, named by the shortest.
	best, bestKey, bestD, ties := "", "", 3, 0
	for _, n := range names {
		if n.suffix != r.suffix || n.label == "" {
			continue
		}
		max := 0
		switch l := len(n.label); {
		case l >= 12:
			max = 2
		case l >= 5:
			max = 1
		}
		d := min(lookalikeDistance(n.label, r.label, max), lookalikeDistance(n.rawLabel, r.rawLabel, max))
		if d > max {
			continue
		}
		key := n.label + "." + n.suffix
		switch {
		case d < bestD:
			best, bestKey, bestD, ties = n.domain, key, d, 1
		case d == bestD && key == bestKey:
			if len(n.domain) < len(best) {
				best = n.domain
			}
		case d == bestD:
			ties++
		}
	}
	if best != "" && ties == 1 {
		return best, "a typing error", true
	}
	return "", "", false
}

// governmentTLDSwap: r is the known government domain n (a "govt" label
// before its top-level domain, as in agency.govt.nz) with only the
// top-level domain changed, as in agency.govt.com: whoever holds govt.com
// can name hosts after every agency. Only for government names: a company
// name under another country's suffix (example.co.uk for example.co.nz)
// is most likely a company of its own.
func governmentTLDSwap(r, n []string) bool {
	k := len(n)
	return k >= 3 && len(r) == k && n[k-2] == "govt" && r[k-1] != n[k-1] && slices.Equal(r[:k-1], n[:k-1])
}

// sameLabels reports whether a and b (of one length) hold the same labels,
// in any order.
func sameLabels(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// subsequence reports whether a is b with some elements removed, in order.
func subsequence(a, b []string) bool {
	i := 0
	for _, x := range b {
		if i < len(a) && a[i] == x {
			i++
		}
	}
	return i == len(a)
}

// lookalikeDistance is the optimal-string-alignment Damerau-Levenshtein distance
// of a and b (adjacent swaps count one), or max+1 when it is above max
// (bounded work for long names).
func lookalikeDistance(as, bs string, max int) int {
	if len(as) > 253 || len(bs) > 253 {
		return max + 1
	}
	// In characters, not bytes: "agéncy" is one edit from "agency".
	a, b := []rune(as), []rune(bs)
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			c := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				c = min(c, prev2[j-2]+1)
			}
			cur[j] = c
			rowMin = min(rowMin, c)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max+1)
}

// lookalikeKnown lists the domains a recipient is compared with: our own
// and the exact entries of the secure lists (wildcards name no one domain).
func (p *Policy) lookalikeKnown() []string {
	known := append([]string(nil), p.Domains...)
	o := &p.Outbound
	for _, s := range []DomainSet{o.SecureDomains, o.SEEMailDomains, o.SecureMailDomains, o.Exceptions} {
		for _, e := range s.entries {
			if !strings.HasPrefix(e, "*") {
				known = append(known, e)
			}
		}
	}
	return known
}

// knownPeerGateway: the recipient's domain is a peer agency we hold a DCA
// certificate for (the S/MIME facts of the transaction, issue 14). Such a
// certificate is stored only after it chained to an accredited CA (R50,
// R179-R180) or by the administrator, so the domain is a real gateway, not
// a typing error: agency-b.govt.nz is one edit from agency-a.govt.nz.
func knownPeerGateway(t Transaction, rcpt string) bool {
	peer, ok := t.SMIMEOut.Peers[SMIMERcptDomain(rcpt)]
	return ok && peer.HasCerts
}

// lookalikeSet is our domains and the secure lists' exact entries,
// prepared once per load (derived), or now for a Policy built by hand.
func (p *Policy) lookalikeSet() *LookalikeSet {
	if p.derived != nil && p.derived.lookalike != nil {
		return p.derived.lookalike
	}
	return NewLookalikeSet(p.lookalikeKnown())
}

// lookalikeMatch is the lookalike set's Match, except for the domains the
// administrator allows (outbound.lookalike_allow).
func (p *Policy) lookalikeMatch(domain string) (intended, why string, ok bool) {
	if p.Outbound.LookalikeAllow.Match(domain) {
		return "", "", false
	}
	if d, valid := message.NormalizeDomain(domain); valid && p.Outbound.LookalikeAllow.Match(d) {
		return "", "", false
	}
	return p.lookalikeSet().Match(domain)
}

// decideLookalike applies outbound.lookalike to the recipients still on an
// outbound message (issue 17, spec 000 Government to Citizen): mail of any
// classification to a domain that looks like a known one is refused for
// that recipient (split per outbound.partial) or held; each is an audit
// line (R113). Recipients in our own domains and domains not like any known
// one are not affected.
func (p *Policy) decideLookalike(v *Verdict, t Transaction) {
	if p.Outbound.Lookalike == LookalikeOff || len(t.Envelope.Rcpts) == 0 {
		return
	}
	set := p.lookalikeSet()
	if set.Len() == 0 {
		return
	}
	var bad, texts, remaining []string
	for _, rcpt := range t.Envelope.Rcpts {
		removed := slices.Contains(v.RemoveRcpts, rcpt)
		_, domain, _ := strings.Cut(rcpt, "@")
		if p.IsOurDomain(domain) || knownPeerGateway(t, rcpt) {
			remaining = append(remaining, rcpt)
			continue
		}
		intended, why, ok := p.lookalikeMatch(domain)
		if !ok {
			if !removed {
				remaining = append(remaining, rcpt)
			}
			continue
		}
		text := fmt.Sprintf("recipient domain %s looks like %s", strings.ToLower(domain), intended)
		if removed {
			// Already removed by the routing rule (and audited there): the
			// sender's NDR still names the likely intended domain.
			v.misdirected = append(v.misdirected, text)
			continue
		}
		bad, texts = append(bad, rcpt), append(texts, text)
		for i := range v.Recipients {
			if v.Recipients[i].Address == rcpt {
				v.Recipients[i].Allowed = false
				v.Recipients[i].Reason = text + " (" + why + "): misdirected mail"
			}
		}
		verb := "refused"
		if p.Outbound.Lookalike == LookalikeHold {
			verb = "held"
			if t.released(HoldLookalike) {
				verb = "released by the administrator"
			}
		}
		v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to %s %s: %s (%s): misdirected mail (spec 000 Government to Citizen)", v.Classification, rcpt, verb, text, why))
	}
	if len(bad) == 0 {
		return
	}
	summary := clip(strings.Join(texts, "; "), 300)
	if p.Outbound.Lookalike == LookalikeHold && t.released(HoldLookalike) {
		for i := range v.Recipients {
			if slices.Contains(bad, v.Recipients[i].Address) {
				v.Recipients[i].Allowed, v.Recipients[i].Reason = true, "released by the administrator (possibly misdirected: "+v.Recipients[i].Reason+")"
			}
		}
		v.releasedReason(HoldLookalike, summary)
		return
	}
	if p.Outbound.Lookalike == LookalikeHold {
		release := p.adminRelease(v, t)
		p.holdForAdmin(v, HoldLookalike, fmt.Sprintf("%s: held as possibly misdirected mail; release with: %s", summary, release),
			fmt.Sprintf("A message from %s is held %s as possibly misdirected: %s. Release it with: %s", t.Envelope.From, p.adminHeldWhere(v, t), summary, release),
			bad, WarningSecureDeliveryFailure)
		return
	}
	if len(remaining) == 0 || p.Outbound.Partial == PartialRefuse {
		v.refuse(550, "5.7.1", summary+": not sent (misdirected mail)")
		return
	}
	v.RemoveRcpts = append(v.RemoveRcpts, bad...)
	v.misdirected = append(v.misdirected, texts...)
	v.reason("removed %d recipient(s) as misdirected mail: %s", len(bad), summary)
}
