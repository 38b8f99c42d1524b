package policy

import (
	"fmt"
	"slices"
	"strings"
)

// RouteHeader is added to mail that may leave only over TLS when
// outbound.route_header is on, for milter_header_checks to route it to a
// TLS-only transport (issue 7; contrib/postfix).
const RouteHeader = "X-NZ-Secure-Route"

// routeOutbound decides, per recipient, whether the message's classification
// may reach it (M-OUT, R110-R112, R115, G-DLP), and so whether the message
// is delivered, split, refused or held. Breach attempts are recorded (R113).
func (p *Policy) routeOutbound(v *Verdict, t Transaction) {
	class := v.Classification
	routing, known := p.Outbound.ByClass[class]
	if !known {
		// A marking without a rule: when in doubt, hold (never send).
		routing = Hold
		v.reason("no outbound.by_class rule for classification %s: held", class)
	}

	var allowed, refused, external []string
	for _, rcpt := range t.Envelope.Rcpts {
		d := p.decideRecipient(routing, rcpt)
		v.Recipients = append(v.Recipients, d)
		if d.Internal {
			allowed = append(allowed, rcpt)
			continue
		}
		external = append(external, rcpt)
		if d.Allowed {
			allowed = append(allowed, rcpt)
		} else {
			refused = append(refused, rcpt)
		}
	}

	if rank, _ := p.Classification.Rank(class); rank > 0 || !known {
		// RFC 8689: a sender may not waive TLS for classified mail.
		if n := v.deleteAll(t.Headers, "TLS-Required"); n > 0 {
			v.reason("removed TLS-Required header from %s mail (RFC 8689 section 5)", class)
		}
	}

	switch {
	case routing == Hold && len(external) > 0 && t.released(HoldClassified):
		for i := range v.Recipients {
			if !v.Recipients[i].Internal {
				v.Recipients[i].Allowed, v.Recipients[i].Reason = true, "released by the administrator (R110)"
			}
		}
		v.releasedReason(HoldClassified, fmt.Sprintf("%s message to %s", class, strings.Join(external, ", ")))
		if p.Outbound.RouteHeader {
			v.addHeader(RouteHeader, "tls")
		}
		return
	case routing == Hold && len(external) > 0:
		release := p.adminRelease(v, t)
		p.holdForAdmin(v, HoldClassified, fmt.Sprintf("classification %s is held for an administrator (R110); release with: %s", class, release),
			fmt.Sprintf("A %s message from %s is held %s. Release it with: %s", class, t.Envelope.From, p.adminHeldWhere(v, t), release),
			external, WarningSecureDeliveryFailure)
		v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to external recipients %s held (R110)", class, strings.Join(external, ", ")))
		return
	case len(refused) == 0:
		if p.Outbound.RouteHeader && (routing == SecureOnly || routing == SEEMailOnly || routing == ExceptionOnly) && len(external) > 0 {
			v.addHeader(RouteHeader, "tls")
			v.reason("%s mail routed to the TLS-only transport (%s: tls)", class, RouteHeader)
		}
		return
	}
	for _, r := range refused {
		v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to %s refused: %s (R113)", class, r, routingRule(routing)))
	}
	if len(allowed) == 0 || p.Outbound.Partial == PartialRefuse {
		v.refuse(550, "5.7.1", fmt.Sprintf("Message classified [%s] refused: %s; not permitted: %s",
			class, routingRule(routing), clip(strings.Join(refused, ", "), 300)))
		return
	}
	v.RemoveRcpts = refused
	v.reason("removed %d recipient(s) that %s may not reach (%s): %s", len(refused), class, routingRule(routing), strings.Join(refused, ", "))
	if p.Outbound.RouteHeader && routing != BestEffort {
		v.addHeader(RouteHeader, "tls")
	}
}

// decideUnreadable applies classification.unreadable to outbound mail whose
// content the scanner could not read in full (issue 11, fail safe): what was
// not read may hold any marking, so mail that leaves the agency is decided as
// if the worst were there. Recipients in our own domains are not affected
// (the worst marking may reach them, M-OUT). Every such decision is an audit
// line like a breach (R113).
func (p *Policy) decideUnreadable(v *Verdict, t Transaction) {
	if len(t.Unreadable) == 0 {
		return
	}
	why := clip(strings.Join(t.Unreadable, "; "), 500)
	var external []string
	for _, d := range v.Recipients {
		if !d.Internal && !slices.Contains(v.RemoveRcpts, d.Address) {
			external = append(external, d.Address)
		}
	}
	if len(external) == 0 {
		v.reason("content could not be read in full, but every recipient is in our own domains: %s", why)
		return
	}
	rcpts := strings.Join(external, ", ")
	switch p.Classification.Unreadable {
	case UnreadableAccept:
		v.reason("content could not be read in full; sent on the classification found (%s) because classification.unreadable = accept: %s", v.Classification, why)
		v.Breaches = append(v.Breaches, fmt.Sprintf("message with unreadable content to external recipients %s accepted by policy (classification.unreadable = accept): %s", rcpts, why))
	case UnreadableRefuse:
		v.Breaches = append(v.Breaches, fmt.Sprintf("message with unreadable content to external recipients %s refused (classification.unreadable = refuse): %s", rcpts, why))
		v.refuse(550, "5.7.1", "Message refused: this gateway could not read all of its content to check its classification ("+clip(why, 200)+"); send it unencrypted, uncompressed or as plain text")
	default: // UnreadableHold, also for a zero Policy
		if t.released(HoldUnreadable) {
			v.releasedReason(HoldUnreadable, "content could not be read in full: "+why)
			v.Breaches = append(v.Breaches, fmt.Sprintf("message with unreadable content to external recipients %s released by the administrator (classification.unreadable = hold): %s", rcpts, why))
			return
		}
		release := p.adminRelease(v, t)
		p.holdForAdmin(v, HoldUnreadable, fmt.Sprintf("content could not be read in full, held for an administrator as if classified (classification.unreadable = hold); release with: %s: %s", release, why),
			fmt.Sprintf("A message from %s is held %s because this gateway could not read all of its content to check its classification: %s. Release it with: %s", t.Envelope.From, p.adminHeldWhere(v, t), why, release),
			external, WarningSecureDeliveryFailure)
		v.Breaches = append(v.Breaches, fmt.Sprintf("message with unreadable content to external recipients %s held (classification.unreadable = hold): %s", rcpts, why))
	}
}

// decideRecipient applies one routing decision to one recipient.
func (p *Policy) decideRecipient(routing Routing, rcpt string) RecipientDecision {
	d := RecipientDecision{Address: rcpt, Routing: routing}
	_, domain, _ := strings.Cut(rcpt, "@")
	o := &p.Outbound
	switch {
	case p.IsOurDomain(domain):
		d.Allowed, d.Internal, d.Reason = true, true, "recipient in our own domains"
	case routing == BestEffort:
		d.Allowed, d.Reason = true, "unclassified mail goes best effort (M-OUT)"
	case routing == Hold:
		d.Reason = "held for an administrator (R110)"
	case o.Exceptions.Match(domain):
		d.Allowed, d.Reason = true, "exception-list domain"
	case routing == ExceptionOnly:
		d.Reason = "not an exception-list domain (G-DLP)"
	case o.SEEMailDomains.Match(domain):
		d.Allowed, d.Reason = true, "SEEMail domain"
	case routing == SEEMailOnly:
		d.Reason = "not a SEEMail or exception-list domain (R112)"
	case o.SecureMailDomains.Match(domain):
		d.Allowed, d.Reason = true, "SecureMail domain"
	case o.SecureDomains.Match(domain):
		d.Allowed, d.Reason = true, "secure domain (TLS enforced)"
	default:
		d.Reason = "not on a secure-domain list (R115)"
	}
	return d
}

// routingRule says in words what a routing allows, for replies and logs.
func routingRule(r Routing) string {
	switch r {
	case SecureOnly:
		return "it may go only to secure, SEEMail, SecureMail or exception-list domains (R111, R115)"
	case SEEMailOnly:
		return "it may go only to SEEMail or exception-list domains (R112)"
	case ExceptionOnly:
		return "it may go only to the agency's exception-list domains (G-DLP)"
	case Hold:
		return "it is held for an administrator (R110)"
	}
	return "it may go to any recipient"
}

func queueIDOr(id string) string {
	if id == "" {
		return "<queue id>"
	}
	return id
}
