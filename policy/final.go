package policy

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// The steps that make an end-of-message verdict final (issue 13 point 2):
// the warning graded (R199, R108), the body transforms to run in order,
// and the notices filtered by the loop and postmaster rules (R92-R95).
// The milter and notify carry the result out and decide nothing; only the
// rate limit (R94/R95 frequency) stays outside, because its state is the
// running process's.

// Warning severities (R199 HARD/SOFT, R108 NO warning).
const (
	SeverityHard = "hard"
	SeveritySoft = "soft"
	SeverityNone = "none"
)

// TransformKind names one step of the body transform chain.
type TransformKind string

const (
	// TransformWarnWrap: a new text part with the warning, the original
	// attached as message/rfc822 (R76-R80, DESIGN.md "Warnings").
	TransformWarnWrap TransformKind = "warn-wrap"
	// TransformWarnPrepend: a banner at the top of the text parts.
	TransformWarnPrepend TransformKind = "warn-prepend"
	// TransformWarnHeader: X-NZ-Secure-Warning only; no body change.
	TransformWarnHeader TransformKind = "warn-header"
	// TransformDKIMSign: DKIM signatures of Domain (G-DKIM), always the
	// last step so they cover the final form.
	TransformDKIMSign TransformKind = "dkim-sign"
)

// Transform is one step of the chain, in the order the verdict lists them.
type Transform struct {
	Kind TransformKind `json:"kind"`
	// Code is the Table 3 warning code (warn-* steps).
	Code string `json:"code,omitempty"`
	// Domain is the signing domain (dkim-sign), the peer domain
	// (smime-sign-encrypt).
	Domain string `json:"domain,omitempty"`
	// smime-sign-encrypt (issue 14): Signer is the SHA-256 fingerprint of
	// our identity that signs, Cert the peer certificate's encrypted to,
	// Cipher the content cipher (smime.Cipher's name).
	Signer string `json:"signer,omitempty"`
	Cert   string `json:"cert,omitempty"`
	Cipher string `json:"cipher,omitempty"`
}

// finish makes v final: grading, transforms, notices. t is the whole
// transaction as the engine saw it.
func (p *Policy) finish(v *Verdict, t Transaction) {
	p.gradeWarning(v, t.Headers)
	p.filterNotices(v, t)
	p.smimeNotices(v, t) // R62: notices to a peer agency signed and encrypted
	p.chooseTransforms(v, t.Headers)
}

// gradeWarning applies R199 (list-server mail: the spoofing warnings 002
// and 005 are SOFT, shown as a header only) and R108 (a From: of a
// trusted-list domain, naming exactly one author and no other domain
// anywhere: no 002/005 at all; issue 12, an ambiguous or impersonating
// From: keeps its warning). Other codes stay HARD, in the policy's mode.
func (p *Policy) gradeWarning(v *Verdict, hs []Header) {
	if v.WarningCode == "" {
		return
	}
	v.WarningSeverity = SeverityHard
	if v.WarningMode == "" {
		return // deleted (inbound.unverified = "delete"): nothing to show
	}
	spoofing := v.WarningCode == WarningForgedAgency || v.WarningCode == WarningOwnAgency
	if !spoofing {
		return
	}
	if ws := p.workspace(); ws != nil {
		a := message.Authors(HeaderValues(hs, "From"))
		if m, ok := a.Author(); ok && len(a.Candidates) == 1 && ws.Contains(m.Address()) {
			v.WarningSeverity, v.WarningMode = SeverityNone, ""
			v.reason("warning %s not shown: the sender's domain is on the trusted (workspace) list (R108)", v.WarningCode)
			return
		}
	}
	if marker, _, ok := ListMarker(hs); ok {
		v.WarningSeverity, v.WarningMode = SeveritySoft, WarnHeader
		v.reason("warning %s shown as a header only: list-server mail (%s, R199)", v.WarningCode, marker)
	}
}

// workspace is the trusted-list domains as a Workspace, built once per load
// (Parse); a Policy built by hand gets it built on each call. nil when the
// list cannot be one (then no warning is lifted: fail safe).
func (p *Policy) workspace() *Workspace {
	if p.derived != nil {
		return p.derived.workspace
	}
	ws, err := NewWorkspace(p.Inbound.TrustedLists)
	if err != nil {
		return nil
	}
	return ws
}

// filterNotices drops the notices the loop and postmaster rules forbid
// (R93-R95, ShouldNotify, for every From: field): a held-mail notice goes
// to our own postmaster and is always sent. Each dropped one is a reason.
func (p *Policy) filterNotices(v *Verdict, t Transaction) {
	if len(v.Notices) == 0 {
		return
	}
	froms := HeaderValues(t.Headers, "From")
	if len(froms) == 0 {
		froms = []string{""}
	}
	kept := v.Notices[:0:0]
notices:
	for _, n := range v.Notices {
		// A held-mail notice, and a SECURE DELIVERY DELAYED one to our
		// own postmaster (Table 1), go to our side about mail we keep: no
		// answer to the sender, always sent.
		// A certificate request is about held mail, not an answer to its
		// sender; a certificate answer was checked by answerRequest (R44).
		if n.Kind != NoticeHeld && n.Kind != NoticeCertRequest && n.Kind != NoticeCertAnswer && !(n.Kind == NoticeDelayed && p.ourPostmaster(n.To)) {
			for _, from := range froms {
				if ok, why := ShouldNotify(from, t.Envelope.From, NotifyContext{To: n.To, Inbound: v.Direction == Inbound, Headers: t.Headers}); !ok {
					v.reason("%s notice to <%s> not sent: %s", n.Kind, n.To, why)
					continue notices
				}
			}
		}
		kept = append(kept, n)
	}
	v.Notices = kept
}

// ourPostmaster: addr is postmaster@ one of our domains, or notify.admin.
func (p *Policy) ourPostmaster(addr string) bool {
	local, domain := SplitAddress(addr)
	return strings.EqualFold(BareAddress(addr), p.Postmaster()) || strings.EqualFold(local, "postmaster") && p.IsOurDomain(domain)
}

// chooseTransforms lists the body transforms of a kept message: the
// warning (inbound), then DKIM over the final form (outbound accepted
// mail whose single From: author is in a domain with a key, G-DKIM).
func (p *Policy) chooseTransforms(v *Verdict, hs []Header) {
	if v.Action != Accept && v.Action != Quarantine {
		return
	}
	switch v.WarningMode {
	case WarnWrap:
		v.Transforms = append(v.Transforms, Transform{Kind: TransformWarnWrap, Code: v.WarningCode})
	case WarnPrepend:
		v.Transforms = append(v.Transforms, Transform{Kind: TransformWarnPrepend, Code: v.WarningCode})
	case WarnHeader:
		v.Transforms = append(v.Transforms, Transform{Kind: TransformWarnHeader, Code: v.WarningCode})
	}
	if v.Action == Accept && v.Direction == Outbound {
		if d := message.Authors(HeaderValues(hs, "From")).Domain(); d != "" && p.hasDKIMKey(d) {
			v.Transforms = append(v.Transforms, Transform{Kind: TransformDKIMSign, Domain: d})
		}
	}
}

// hasDKIMKey reports whether dkim.keys holds a key for domain.
func (p *Policy) hasDKIMKey(domain string) bool {
	for _, k := range p.DKIM.Keys {
		if strings.EqualFold(k.Domain, domain) {
			return true
		}
	}
	return false
}

// String is the step as the decision log writes it.
func (t Transform) String() string {
	switch {
	case t.Code != "":
		return fmt.Sprintf("%s(%s)", t.Kind, t.Code)
	case t.Domain != "":
		return fmt.Sprintf("%s(%s)", t.Kind, t.Domain)
	}
	return string(t.Kind)
}
