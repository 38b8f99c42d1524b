package authres

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dmarc"
)

// SPF is the "spf" resinfo (RFC 8601 section 2.7.2; RFC 7208 section
// 9.1): smtp.mailfrom is the MAIL FROM address (or, for a null reverse
// path, omit it and give the HELO name), smtp.helo the HELO name. Empty
// values are left out.
func SPF(result, mailFrom, helo, reason string) Result {
	r := Result{Method: "spf", Value: result, Reason: reason}
	if mailFrom != "" {
		r.Props = append(r.Props, Prop{"smtp", "mailfrom", mailFrom})
	}
	if helo != "" {
		r.Props = append(r.Props, Prop{"smtp", "helo", helo})
	}
	return r
}

// SenderID is the "sender-id" resinfo (RFC 8601 section 2.7.5, RFC 4406):
// header.<field>=<address>, field being the header field the Purported
// Responsible Address came from (RFC 4407 section 2: "from", "sender",
// "resent-from", "resent-sender").
func SenderID(result, field, address, reason string) Result {
	return Result{Method: "sender-id", Value: result, Reason: reason,
		Props: []Prop{{"header", strings.ToLower(field), address}}}
}

// DKIM is the "dkim" resinfo of one verified signature (RFC 8601 section
// 2.7.1, header.b from RFC 6008): header.d, header.i, header.s, header.a
// and header.b, with the failure reason. An l= signature is noted in the
// comment.
func DKIM(sig dkim.Signature) Result {
	r := Result{Method: "dkim", Value: string(sig.Result), Reason: sig.Reason()}
	if sig.BodyLengthLimited {
		r.Comment = "body length limit l="
		if sig.BodyLength >= 0 {
			r.Comment += fmt.Sprint(sig.BodyLength)
		}
	}
	add := func(prop, v string) {
		if v != "" {
			r.Props = append(r.Props, Prop{"header", prop, v})
		}
	}
	add("d", sig.Domain)
	add("i", sig.Identifier)
	add("s", sig.Selector)
	add("a", sig.Algorithm)
	add("b", sig.HeaderB)
	return r
}

// DKIMResults is one "dkim" resinfo per signature, or dkim=none for an
// unsigned message.
func DKIMResults(sigs []dkim.Signature) []Result {
	if len(sigs) == 0 {
		return []Result{{Method: "dkim", Value: string(dkim.None)}}
	}
	out := make([]Result, len(sigs))
	for i, s := range sigs {
		out[i] = DKIM(s)
	}
	return out
}

// DMARC is the "dmarc" resinfo (RFC 7489 section 11.2): header.from, and
// policy.dmarc with the published policy when a record was found; the
// comment gives the record's p=, sp=, pct= and the disposition (upper
// case for what was applied), the reason why a message failed or has no
// policy.
func DMARC(ev dmarc.Evaluation) Result {
	r := Result{Method: "dmarc", Value: string(ev.Result)}
	if ev.Result != dmarc.Pass {
		r.Reason = ev.Reason
	}
	if rec := ev.Record; rec != nil {
		c := "p=" + string(rec.Policy)
		if rec.SubdomainPolicy != "" {
			c += " sp=" + string(rec.SubdomainPolicy)
		}
		if rec.Percent != 100 {
			c += fmt.Sprintf(" pct=%d", rec.Percent)
		}
		c += " dis=" + strings.ToUpper(string(ev.Disposition))
		if !ev.Sampled {
			c += " sampled=no"
		}
		r.Comment = c
	}
	if ev.FromDomain != "" {
		r.Props = append(r.Props, Prop{"header", "from", ev.FromDomain})
	}
	if ev.PublishedPolicy != "" {
		r.Props = append(r.Props, Prop{"policy", "dmarc", string(ev.PublishedPolicy)})
	}
	return r
}
