// Package checks runs the sender checks that need the network (SPF, Sender
// ID; later DKIM and DMARC) and hands their results to the policy engine as
// plain values. The milter and `check` share it, so both decide alike.
package checks

import (
	"context"
	"io"
	"net"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dmarc"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnsresolver"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Scopes of policy.AuthCheck as the runner fills them.
const (
	ScopeMailFrom   = "mfrom"
	ScopeHELO       = "helo"
	ScopeSenderIDMF = "senderid-mfrom"
	ScopePRA        = "pra"
)

// Runner implements policy.Checker with the SPF/Sender ID evaluator, the
// DKIM verifier and DMARC, all on one (caching) resolver.
type Runner struct {
	SPF       *spf.Evaluator
	LookupTXT func(ctx context.Context, name string) ([]string, error)
}

var _ policy.Checker = (*Runner)(nil)

// NewRunner makes a runner on the policy's DNS servers (dns.servers, or the
// system's) with a cache, naming this host as receiver for %{r}.
func NewRunner(p *policy.Policy, receiver string) (*Runner, *dnsresolver.Resolver, error) {
	res, err := dnsresolver.New(dnsresolver.Config{Servers: p.Runtime.DNS.Servers, Timeout: p.Runtime.DNS.Timeout})
	if err != nil {
		return nil, nil, err
	}
	return &Runner{SPF: &spf.Evaluator{Resolver: res, Receiver: receiver, Timeout: SPFTimeout}, LookupTXT: res.LookupTXT}, res, nil
}

// SPFTimeout bounds one SPF evaluation: the milter's per-stage deadline
// (pipeline.CheckTimeout, 25s), above RFC 7208 section 4.6.4's 20 seconds,
// so that the stage's context alone bounds it and the evaluator sets no
// timer of its own per message.
const SPFTimeout = 25 * time.Second

// Mail runs the MAIL FROM checks w asks for: SPF of MAIL FROM, or of HELO
// when MAIL FROM is null (RFC 7208 section 2.3), and Sender ID's mfrom scope.
func (r *Runner) Mail(ctx context.Context, w policy.Wants, c policy.Conn, e policy.Envelope) policy.MailChecks {
	var mc policy.MailChecks
	ip := net.IP(c.ClientIP.AsSlice())
	var mailFrom *spf.Outcome // SPF of MAIL FROM, when it ran
	if w.SPF {
		switch {
		case !c.ClientIP.IsValid():
			mc.SPF = unknownClient(ScopeMailFrom, e.From)
		case e.From != "":
			o, _ := r.SPF.CheckMailFrom(ctx, ip, e.From, c.HELO)
			mc.SPF, mailFrom = convert(ScopeMailFrom, o), &o
			mc.SPF.SenderIDSame = o.SenderIDSame
		default:
			mc.SPFHelo = fromOutcome(ScopeHELO)(r.SPF.CheckHELO(ctx, ip, c.HELO))
		}
	}
	if w.SenderIDMF && e.From != "" {
		switch {
		case !c.ClientIP.IsValid():
			mc.SenderIDMF = unknownClient(ScopeSenderIDMF, e.From)
		case mailFrom != nil && mailFrom.SenderIDSame:
			// The same identity, and no spf2.0 record on the way: Sender
			// ID would select and evaluate exactly what SPF did.
			mc.SenderIDMF = convert(ScopeSenderIDMF, *mailFrom)
		default:
			mc.SenderIDMF = fromOutcome(ScopeSenderIDMF)(r.SPF.CheckSenderID(ctx, ip, spf.ScopeMFrom, e.From, c.HELO))
		}
	}
	return mc
}

// Headers runs Sender ID on the Purported Responsible Address (RFC 4407).
func (r *Runner) Headers(ctx context.Context, w policy.Wants, c policy.Conn, e policy.Envelope, mc policy.MailChecks, hs []policy.Header) policy.HeaderChecks {
	var hc policy.HeaderChecks
	if !w.SenderIDPRA {
		return hc
	}
	if !c.ClientIP.IsValid() {
		hc.SenderIDPRA = unknownClient(ScopePRA, "")
		return hc
	}
	sh := hs // spf.Header and policy.Header are both message.Header
	// The PRA once (RFC 4407 section 2), for the check and for the field
	// it came from: CheckPRA is PRA then CheckSenderID.
	addr, field, err := spf.PRA(sh)
	if err != nil {
		hc.SenderIDPRA = convert(ScopePRA, spf.Outcome{Result: spf.PermError, Scope: spf.ScopePRA, Err: err})
		return hc
	}
	if s := mc.SPF; s != nil && s.SenderIDSame && addr == e.From && s.Identity == e.From {
		// The PRA is the MAIL FROM address (the usual case) and no spf2.0
		// record was on SPF's way: the PRA check would repeat SPF's
		// evaluation step by step (spf.Outcome.SenderIDSame).
		pra := *s
		pra.Scope, pra.SenderIDSame = ScopePRA, false
		hc.SenderIDPRA = &pra
	} else {
		hc.SenderIDPRA = fromOutcome(ScopePRA)(r.SPF.CheckSenderID(ctx, net.IP(c.ClientIP.AsSlice()), spf.ScopePRA, addr, c.HELO))
	}
	hc.SenderIDPRA.Field = strings.ToLower(field)
	return hc
}

// Message verifies every DKIM signature (RFC 6376) and evaluates DMARC
// (RFC 7489) from the SPF and DKIM results.
func (r *Runner) Message(ctx context.Context, w policy.Wants, c policy.Conn, e policy.Envelope, hs []policy.Header, mc policy.MailChecks, msg io.Reader) policy.MessageChecks {
	var out policy.MessageChecks
	if !w.DKIM && !w.DMARC {
		return out
	}
	// Most mail has no signature: then there is nothing to verify, and
	// reading the message again for one costs a buffer and a header parse
	// a message (issue 13 point 7, the inbound throughput).
	var sigs []dkim.Signature
	var err error
	if hasDKIMSignature(hs) {
		sigs, err = dkim.Verify(ctx, msg, dkim.VerifyOptions{LookupTXT: r.LookupTXT})
	}
	if err != nil {
		out.DKIM = append(out.DKIM, policy.DKIMCheck{Result: policy.ResultTempError, Detail: "reading the message: " + err.Error()})
	}
	var dr []dmarc.DKIMResult
	for _, sg := range sigs {
		d := policy.DKIMCheck{Result: policy.CheckResult(sg.Result), Domain: sg.Domain, Selector: sg.Selector, HeaderB: sg.HeaderB,
			Algorithm: sg.Algorithm, BodyLengthLimited: sg.BodyLengthLimited}
		if sg.Err != nil {
			d.Detail = sg.Err.Error()
		}
		out.DKIM = append(out.DKIM, d)
		dr = append(dr, dmarc.DKIMResult{Domain: sg.Domain, Result: string(sg.Result)})
	}
	if len(sigs) == 0 && err == nil {
		out.DKIM = append(out.DKIM, policy.DKIMCheck{Result: policy.ResultNone})
	}
	if !w.DMARC {
		return out
	}
	in := dmarc.Input{From: policy.HeaderValues(hs, "From"), DKIM: dr}
	switch {
	case mc.SPF != nil:
		in.SPFResult, in.SPFDomain = string(mc.SPF.Result), mc.SPF.Domain
	case mc.SPFHelo != nil:
		in.SPFResult, in.SPFDomain = string(mc.SPFHelo.Result), mc.SPFHelo.Domain
	}
	ev, err := dmarc.Evaluate(ctx, in, dmarc.Options{LookupTXT: r.LookupTXT})
	d := &policy.DMARCCheck{Result: policy.CheckResult(ev.Result), Disposition: string(ev.Disposition), Published: string(ev.PublishedPolicy),
		FromDomain: ev.FromDomain, SPFAligned: ev.SPFAligned, DKIMAligned: ev.DKIMAligned, Reason: ev.Reason}
	if err != nil && d.Reason == "" {
		d.Reason = err.Error()
	}
	if d.Disposition == "" {
		d.Disposition = "none"
	}
	out.DMARC = d
	return out
}

// hasDKIMSignature: a DKIM-Signature field among hs, named as dkim.Verify
// reads names (auth/dkim fieldName: case-insensitive, blanks around
// the name ignored).
func hasDKIMSignature(hs []policy.Header) bool {
	for _, h := range hs {
		if strings.EqualFold(strings.TrimSpace(h.Name), "DKIM-Signature") {
			return true
		}
	}
	return false
}

// fromOutcome converts an evaluation; the error is in o.Err as well.
func fromOutcome(scope string) func(o spf.Outcome, _ error) *policy.AuthCheck {
	return func(o spf.Outcome, _ error) *policy.AuthCheck { return convert(scope, o) }
}

func convert(scope string, o spf.Outcome) *policy.AuthCheck {
	a := &policy.AuthCheck{
		Result:       policy.CheckResult(o.Result),
		Scope:        scope,
		Identity:     o.Identity,
		Domain:       o.Domain,
		Explanation:  o.Explanation,
		RecordFound:  o.Record != "",
		AllQualifier: string(o.AllQualifier),
		// M-SEC: an spf2.0 record of another scope is a Sender ID record.
		OtherScopeRecord: o.OtherScopeRecord,
	}
	if o.Err != nil {
		a.Detail = o.Err.Error()
	}
	return a
}

// unknownClient: without the client's address nothing can be evaluated.
func unknownClient(scope, identity string) *policy.AuthCheck {
	return &policy.AuthCheck{Result: policy.ResultNone, Scope: scope, Identity: identity, Detail: "the client IP address is unknown"}
}
