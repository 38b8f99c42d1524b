package policy

import (
	"fmt"
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
	case routing == Hold && len(external) > 0:
		v.Action = Quarantine
		v.reason("classification %s is held for an administrator (R110); release with: postsuper -H %s", class, queueIDOr(t.Envelope.QueueID))
		v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to external recipients %s held (R110)", class, strings.Join(external, ", ")))
		v.Notices = append(v.Notices, Notice{Kind: NoticeHeld, To: p.Postmaster(), Rcpts: external, Code: WarningSecureDeliveryFailure,
			Reason: fmt.Sprintf("A %s message from %s is held in the queue. Release it with: postsuper -H %s", class, t.Envelope.From, queueIDOr(t.Envelope.QueueID))})
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
	if len(allowed) == 0 || p.Outbound.Partial == "refuse" {
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
