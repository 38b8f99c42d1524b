package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// Outbound domain S/MIME (RFC 3183; R62-R72, Table 1 sending column,
// issue 14 point 3). The pipeline looks the certificates up
// (pipeline.SMIMEEnv) and hands the engine SMIMEOutbound; the engine
// decides, per recipient, which form of the message it gets:
//
//   - plain: out of scope (SMIMEScope) or inside the agency, as before;
//   - S/MIME: in scope and SMIMESendOutcome is "": signed with our newest
//     valid DCA certificate (R37, R70, R71), then encrypted to the peer's
//     DCA certificate with the strongest cipher both support (R23-R26,
//     R85), then DKIM signed (DKIM always signs the final form);
//   - held: in scope but the certificates do not allow it (201, 202, 211,
//     212): kept by the gateway (pipeline.HoldStore), the sender and the
//     sender's postmaster told SECURE DELIVERY DELAYED (Table 1).
//
// Fail safe: a domain in scope that the pipeline did not look up is
// judged as having no certificate (201), never sent in clear.

// SMIMEOutbound is what the pipeline looked up for one outbound message.
type SMIMEOutbound struct {
	// On: smime.mode is on and the pipeline looked the facts up.
	On bool `json:"on"`
	// Own is our signing identity for the sender's domain (R37).
	Own SMIMEOwn `json:"own"`
	// Peers are the recipient domains (lower case) in scope, each with
	// what the gateway has for it; a domain absent is taken as having no
	// certificate at all. Inbound, the envelope sender's domain when in
	// scope: receipts and reports go there (R62).
	Peers map[string]SMIMEPeer `json:"peers,omitempty"`
	// NoticeOwn is our identity for the domain notices come from
	// (postmaster@ the first of domains, R92), for notices to a peer.
	NoticeOwn SMIMEOwn `json:"notice_own"`
}

// FormKind names a form of the message.
type FormKind string

const (
	FormPlain FormKind = "plain" // the message as before: edits, DKIM
	FormSMIME FormKind = "smime" // signed and encrypted to one peer domain
	FormHeld  FormKind = "held"  // kept by the gateway for a certificate problem
)

// TransformSMIMESignEncrypt signs the current message as an opaque
// signed-data entity with our identity (Transform.Signer), then encrypts
// it to the peer certificate (Transform.Cert) with Transform.Cipher
// (RFC 8551 sections 3.2, 3.5.2, 3.7; RFC 3183). Listed before dkim-sign.
const TransformSMIMESignEncrypt TransformKind = "smime-sign-encrypt"

// NoticeDelayed is the SECURE DELIVERY DELAYED notice (Table 1, Table 2
// row 2) to the sender and the sender's postmaster, with Code 201-212.
const NoticeDelayed NoticeKind = "delayed"

// NoticeCertReplaced tells a peer agency's postmaster that the untrusted
// certificate we held for its domain was replaced by a valid one LDAP
// discovery found (Table 1, sending, "Untrusted / Unknown CA": "Success:
// Send message. Notify Recipient's Postmaster"; SMIMEPeer.ReplacedUntrusted).
const NoticeCertReplaced NoticeKind = "cert-replaced"

// Copy is a form of the message other than the one the MTA's own
// transaction carries (Verdict.Transforms): its recipients leave the main
// transaction and go in this form. Every envelope recipient is in exactly
// one of: the main transaction, Verdict.RemoveRcpts, one Copy.
type Copy struct {
	Form  FormKind `json:"form"`
	Rcpts []string `json:"recipients"`
	// Transforms of an S/MIME copy: smime-sign-encrypt, then dkim-sign.
	// The verdict's header edits (Verdict.Edits) apply to every form.
	Transforms []Transform `json:"transforms,omitempty"`
	// Domain is the recipient domain (an S/MIME or held copy), or our
	// sending domain for a hold on our own certificate (211, 212).
	Domain string `json:"domain,omitempty"`
	// Code and Reason, for a held copy: the Table 3 code and why.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Hold, for a held copy: the message is held for an administrator
	// (HoldKind, adminhold.go), not for a certificate problem.
	Hold HoldKind `json:"hold,omitempty"`
}

// MainRcpts are the recipients the MTA's own transaction keeps: the
// envelope's less those removed and those that go in a copy.
func (v Verdict) MainRcpts(env Envelope) []string {
	drop := append([]string(nil), v.RemoveRcpts...)
	for _, c := range v.Copies {
		drop = append(drop, c.Rcpts...)
	}
	return without(env.Rcpts, drop)
}

// MainForm is the form of the main transaction: smime when its
// transforms sign and encrypt, plain otherwise.
func (v Verdict) MainForm() FormKind {
	for _, t := range v.Transforms {
		if t.Kind == TransformSMIMESignEncrypt {
			return FormSMIME
		}
	}
	return FormPlain
}

// smimeOutbound splits the recipients of an accepted outbound message by
// form (the rules above). It runs after routeOutbound and the other
// outbound rules, so only the recipients the message may go to are split.
// The plain recipients, if any, stay in the main transaction; otherwise
// the first S/MIME form becomes the main one; with neither, the message
// is discarded from the MTA (every recipient is in a held copy).
func (p *Policy) smimeOutbound(v *Verdict, t Transaction) {
	if p.SMIME.Mode == SMIMEOn && v.Direction == Outbound && v.Action == Quarantine {
		p.smimeQuarantineCaution(v, t)
		return
	}
	if p.SMIME.Mode != SMIMEOn || v.Direction != Outbound || v.Action != Accept {
		return
	}
	out := t.SMIMEOut
	own := out.Own
	if own.Domain == "" {
		own.Domain = p.smimeSenderDomain(t)
	}
	var plain []string
	smimeBy := map[string][]string{}
	held := map[[2]string]*Copy{}
	var heldOrder [][2]string
	var domains []string
	for _, rcpt := range without(t.Envelope.Rcpts, v.RemoveRcpts) {
		domain := SMIMERcptDomain(rcpt)
		if alt := smimeRewrittenDomain(rcpt, domain); alt != "" && !p.IsOurDomain(alt) {
			// The MTA would rewrite it (swap_bangpath, allow_percent_hack) to
			// a domain this milter never judged: refused, never guessed.
			v.RemoveRcpts = append(v.RemoveRcpts, rcpt)
			v.reason("recipient <%s> refused: the MTA may deliver it to %s (bang path or percent hack), which domain S/MIME cannot judge from the address as given (R62)", rcpt, alt)
			continue
		}
		if domain == "" || p.IsOurDomain(domain) {
			plain = append(plain, rcpt) // never leaves the agency
			continue
		}
		peer, ok := out.Peers[domain]
		if !ok {
			peer = SMIMEPeer{Domain: domain}
		}
		in, why := p.SMIMEScope(domain, peer.HasCerts)
		if !in {
			plain = append(plain, rcpt)
			continue
		}
		code, problem := SMIMESendOutcome(peer, own)
		if !out.On && code == "" {
			code, problem = "201", "the certificates for "+domain+" were not looked up"
		}
		if code == "" {
			if _, seen := smimeBy[domain]; !seen {
				domains = append(domains, domain)
				v.reason("S/MIME to %s: %s; signed with %s (%s), encrypted to %s with %s (R62-R72, R85)",
					domain, why, own.Fingerprint[:min(16, len(own.Fingerprint))], own.Domain, peer.Fingerprint[:min(16, len(peer.Fingerprint))], peer.Cipher)
			}
			smimeBy[domain] = append(smimeBy[domain], rcpt)
			continue
		}
		hd := domain
		if code == "211" || code == "212" {
			hd = own.Domain
		}
		k := [2]string{hd, code}
		if held[k] == nil {
			held[k] = &Copy{Form: FormHeld, Domain: hd, Code: code, Reason: problem}
			heldOrder = append(heldOrder, k)
			v.reason("held for secure delivery (SECURE DELIVERY DELAYED %s): %s is in S/MIME scope (%s) but %s (Table 1)", code, domain, why, problem)
		}
		held[k].Rcpts = append(held[k].Rcpts, rcpt)
	}
	if len(smimeBy) == 0 && len(held) == 0 {
		if len(v.MainRcpts(t.Envelope)) == 0 {
			v.Action = Discard
			v.reason("no recipient is left for the MTA's own transaction: %s", v.FormsSummary(t.Envelope))
		}
		return
	}
	sort.Strings(domains)
	dkim := p.dkimTransform(t.Headers)
	var copies []Copy
	for _, d := range domains {
		peer := out.Peers[d]
		tr := []Transform{{Kind: TransformSMIMESignEncrypt, Domain: d, Signer: own.Fingerprint, Cert: peer.Fingerprint, Cipher: peer.Cipher}}
		if dkim != nil {
			tr = append(tr, *dkim)
		}
		copies = append(copies, Copy{Form: FormSMIME, Rcpts: smimeBy[d], Transforms: tr, Domain: d})
		p.certReplacedNotice(v, d, peer, smimeBy[d])
	}
	if len(plain) == 0 && len(copies) > 0 {
		// Every recipient that goes now gets S/MIME: the MTA's own
		// transaction carries the first S/MIME form, no extra copy.
		main := copies[0]
		copies = copies[1:]
		// chooseTransforms adds dkim-sign after it, last (G-DKIM).
		v.Transforms = append(v.Transforms, main.Transforms[0])
	}
	v.Copies = append(v.Copies, copies...)
	for _, k := range heldOrder {
		c := held[k]
		v.Copies = append(v.Copies, *c)
		p.delayedNotices(v, t, *c)
		p.certRequestNotice(v, t, *c) // R44, R51
	}
	if len(v.MainRcpts(t.Envelope)) == 0 {
		v.Action = Discard
		v.reason("no recipient is left for the MTA's own transaction: %s", v.FormsSummary(t.Envelope))
	}
}

// certReplacedNotice lists, for a peer domain whose untrusted stored
// certificate discovery replaced by the valid one this message is
// encrypted to, the notice to the recipient's postmaster (Table 1,
// sending, "Untrusted / Unknown CA": "Success: Send message. Notify
// Recipient's Postmaster"). filterNotices applies R93-R94 to it and
// smimeNotices signs and encrypts it to the new certificate (R62); the
// notifier's rate limit R95.
func (p *Policy) certReplacedNotice(v *Verdict, domain string, peer SMIMEPeer, rcpts []string) {
	if len(peer.ReplacedUntrusted) == 0 {
		return
	}
	reason := fmt.Sprintf("Untrusted certificate(s) of %s replaced: %s; now encrypting to %s (SHA-256 fingerprints).",
		domain, strings.Join(peer.ReplacedUntrusted, ", "), peer.Fingerprint)
	v.Notices = append(v.Notices, Notice{Kind: NoticeCertReplaced, To: "postmaster@" + domain, Rcpts: rcpts, Reason: reason})
	v.reason("the untrusted certificate(s) of %s were replaced by one LDAP discovery found: its postmaster is told (Table 1)", domain)
}

// smimeQuarantineCaution: mail held in the MTA's hold queue for an
// administrator ([SECRET] under seemail, R110; unreadable content) is
// released as it is, without passing the milter again, so a peer agency's
// recipient would get it neither signed nor encrypted (R62; README
// "Domain S/MIME"). The held notice to the administrator says so, naming
// those recipients, before the release command is used.
func (p *Policy) smimeQuarantineCaution(v *Verdict, t Transaction) {
	var peers []string
	for _, rcpt := range without(t.Envelope.Rcpts, v.RemoveRcpts) {
		d := SMIMERcptDomain(rcpt)
		if d == "" || p.IsOurDomain(d) {
			continue
		}
		if in, _ := p.SMIMEScope(d, t.SMIMEOut.Peers[d].HasCerts); in {
			peers = append(peers, rcpt)
		}
	}
	if len(peers) == 0 {
		return
	}
	caution := fmt.Sprintf(" CAUTION: a message released from the hold queue leaves as it is, without passing this gateway again: %s would receive it NOT signed or encrypted (domain S/MIME, R62).", strings.Join(peers, ", "))
	for i := range v.Notices {
		if v.Notices[i].Kind == NoticeHeld {
			v.Notices[i].Reason += caution
		}
	}
	v.reason("held for an administrator with peer agency recipients in S/MIME scope (%s): released from the hold queue it would leave unsigned and unencrypted (R62)", strings.Join(peers, ", "))
}

// smimeRewrittenDomain is the domain an MTA may deliver rcpt to other
// than the one written after its last "@" (domain): the first hop of a
// UUCP bang path ("agency-b.govt.nz!bob", which Postfix's swap_bangpath
// makes bob@agency-b.govt.nz), or the domain after a "%" in the local part
// ("bob%agency-b.govt.nz@mx.agency.govt.nz", which allow_percent_hack
// makes bob@agency-b.govt.nz when the host is local to the MTA; the milter
// cannot know which hosts are), or any other hop of either form. "" when
// the address has no such form.
// Both forms delivered a peer's recipient in clear (RFC 5321 section 3.6
// and appendix C: obsolete and not to be relied on).
//
// Only a name that can be a domain with more than one label counts ("50%off"
// and "uunet!bob" name none a peer could be), so ordinary local parts with
// a "%" or "!" are not refused.
func smimeRewrittenDomain(rcpt, domain string) string {
	local, _ := SplitAddress(rcpt)
	if !strings.ContainsAny(local, "!%") {
		return ""
	}
	// Every hop, not only the first: "localhost!agency-b.govt.nz!carol"
	// is carol@agency-b.govt.nz once the local host is stripped.
	for _, c := range strings.FieldsFunc(local, func(r rune) bool { return r == '!' || r == '%' }) {
		if d, ok := message.NormalizeDomain(c); ok && strings.Contains(d, ".") && d != domain {
			return d
		}
	}
	return ""
}

// dkimTransform is the dkim-sign step chooseTransforms would list for the
// message (G-DKIM), nil when the author domain has no key.
func (p *Policy) dkimTransform(hs []Header) *Transform {
	if d := message.Authors(HeaderValues(hs, "From")).Domain(); d != "" && p.hasDKIMKey(d) {
		return &Transform{Kind: TransformDKIMSign, Domain: d}
	}
	return nil
}

// smimeSenderDomain is the domain we sign as (R37, R63-R64): the From:
// author's (checkOutboundFrom made it one of ours), else MAIL FROM's.
func (p *Policy) smimeSenderDomain(t Transaction) string {
	if d := message.Authors(HeaderValues(t.Headers, "From")).Domain(); d != "" {
		return strings.ToLower(d)
	}
	return strings.ToLower(senderDomain(t.Envelope.From))
}

// SMIMESenderDomain is the domain whose identity signs t's outbound mail
// (for the pipeline's look-up of SMIMEOutbound.Own).
func (p *Policy) SMIMESenderDomain(t Transaction) string { return p.smimeSenderDomain(t) }

// delayedNotices lists SECURE DELIVERY DELAYED for a held copy to the
// sender and the sender's postmaster (Table 1: "Notify Sender, Sender's
// Postmaster"); filterNotices applies R92-R95 to both.
func (p *Policy) delayedNotices(v *Verdict, t Transaction, c Copy) {
	reason := fmt.Sprintf("%s The system will keep trying (R57); it gives up after %s.", c.Reason, p.SMIME.GiveUp)
	var to []string
	if s := t.Envelope.From; s != "" {
		to = append(to, s)
	}
	if d := senderDomain(t.Envelope.From); d != "" {
		to = append(to, "postmaster@"+strings.ToLower(d))
	} else {
		to = append(to, p.Postmaster())
	}
	for _, addr := range to {
		v.Notices = append(v.Notices, Notice{Kind: NoticeDelayed, To: addr, Code: c.Code, Rcpts: c.Rcpts, Reason: reason})
	}
}

// FormsSummary says where each recipient goes, for the decision log: the
// main transaction's form, each copy, the removed ones.
func (v Verdict) FormsSummary(env Envelope) string {
	var parts []string
	if main := v.MainRcpts(env); len(main) > 0 {
		parts = append(parts, fmt.Sprintf("%s (MTA transaction): %s", v.MainForm(), strings.Join(main, ", ")))
	}
	for _, c := range v.Copies {
		s := string(c.Form)
		if c.Form == FormHeld && c.Hold != "" {
			s += " for the administrator (" + c.Hold + ")"
		} else if c.Form == FormHeld {
			s += " " + c.Code
		}
		parts = append(parts, fmt.Sprintf("%s (%s): %s", s, c.Domain, strings.Join(c.Rcpts, ", ")))
	}
	if len(v.RemoveRcpts) > 0 {
		parts = append(parts, "removed: "+strings.Join(v.RemoveRcpts, ", "))
	}
	return strings.Join(parts, "; ")
}

// HeldRcpts are the recipients of v's held copies.
func (v Verdict) HeldRcpts() []string {
	var out []string
	for _, c := range v.Copies {
		if c.Form == FormHeld {
			out = append(out, c.Rcpts...)
		}
	}
	return out
}

// smimeNotices: R62, "sign / encrypt all email to another Secure Email
// Agency, with no exceptions i.e. including non-delivery response
// receipts, delivery receipts": a notice to a domain in scope gets the
// smime-sign-encrypt transform (signed as the notices' domain,
// NoticeOwn). One that cannot be signed and encrypted (Table 1) is not
// sent in clear: it is dropped with the reason (a notice is not held;
// the original's decision is logged).
func (p *Policy) smimeNotices(v *Verdict, t Transaction) {
	if p.SMIME.Mode != SMIMEOn || len(v.Notices) == 0 {
		return
	}
	kept := v.Notices[:0:0]
	for _, n := range v.Notices {
		if n.Kind == NoticeCertRequest {
			// R44: signed only (by the notifier): we hold no certificate of
			// the peer to encrypt to; that is why we ask.
			kept = append(kept, n)
			continue
		}
		d := SMIMERcptDomain(n.To)
		if alt := smimeRewrittenDomain(n.To, d); alt != "" && !p.IsOurDomain(alt) {
			// The MTA may deliver it to alt, which is not judged here.
			v.reason("%s notice to <%s> not sent: the MTA may deliver it to %s (bang path or percent hack), which domain S/MIME cannot judge (R62)", n.Kind, n.To, alt)
			continue
		}
		if len(n.Transforms) > 0 {
			// Already decided (the answer to a signed ping, R98).
			kept = append(kept, n)
			continue
		}
		if d == "" || p.IsOurDomain(d) {
			kept = append(kept, n)
			continue
		}
		peer, ok := t.SMIMEOut.Peers[d]
		if !ok {
			peer = SMIMEPeer{Domain: d}
		}
		if in, _ := p.SMIMEScope(d, peer.HasCerts); !in {
			kept = append(kept, n)
			continue
		}
		own := t.SMIMEOut.NoticeOwn
		if own.Domain == "" && len(p.Domains) > 0 {
			own.Domain = p.Domains[0]
		}
		code, why := SMIMESendOutcome(peer, own)
		if !t.SMIMEOut.On && code == "" {
			code, why = "201", "the certificates for "+d+" were not looked up"
		}
		if code != "" && n.Kind == NoticeCertAnswer {
			// The requester may not hold our certificate yet, and the
			// answer is our public certificate: signed only, not dropped.
			v.reason("%s notice to <%s> signed only: %s (Table 1, %s)", n.Kind, n.To, why, code)
			kept = append(kept, n)
			continue
		}
		if code != "" {
			v.reason("%s notice to <%s> not sent: it must be signed and encrypted (R62) but %s (Table 1, %s)", n.Kind, n.To, why, code)
			continue
		}
		n.Transforms = []Transform{{Kind: TransformSMIMESignEncrypt, Domain: d, Signer: own.Fingerprint, Cert: peer.Fingerprint, Cipher: peer.Cipher}}
		v.reason("%s notice to <%s> signed and encrypted (R62)", n.Kind, n.To)
		kept = append(kept, n)
	}
	v.Notices = kept
}
