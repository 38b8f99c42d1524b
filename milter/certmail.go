package milter

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/certmail"
)

// Certificate requests by mail (R44, R51): the notifier builds and signs
// the request and the answer the engine lists (policy/certrequest.go).

// certLimiter is the process's rate limit of requests and answers: one
// request per peer domain and one answer per requesting domain per
// smime.retry_interval (R94-R95 frequency). It is the process's, so a
// reload that rebuilds the notifier does not reset it.
var certLimiter certmail.Limiter

// certMailTimeout bounds choosing our identity (its CRL is checked).
const certMailTimeout = 20 * time.Second

func (n *Notifier) certLimiter() *certmail.Limiter {
	if n.CertLimiter != nil {
		return n.CertLimiter
	}
	return &certLimiter
}

// certMail builds a certificate request or answer. A request is signed
// here (multipart/signed: the peer has no certificate of ours to check an
// encrypt to, and a gateway reads
// a multipart/signed one even without S/MIME); an answer is
// signed here too unless the engine listed smime-sign-encrypt for it
// (R62: we hold the requester's certificate), which Send applies.
func (n *Notifier) certMail(p *policy.Policy, nt policy.Notice, hs []policy.Header) (*notify.Message, error) {
	if n.SMIME == nil {
		return nil, errNoSMIMEEnv
	}
	_, toDomain := policy.SplitAddress(nt.To)
	ctx, cancel := context.WithTimeout(context.Background(), certMailTimeout)
	defer cancel()
	id := n.SMIME.Signer(ctx, nt.From)
	if id == nil {
		return nil, fmt.Errorf("no valid DCA identity of %s to sign with (R37, R44)", nt.From)
	}
	// One per domain per interval; a new key of ours (a renewed DCA
	// certificate signs now) may ask or answer again at once.
	key := string(nt.Kind) + ":" + toDomain + ":" + smime.Fingerprint(id.Cert)
	if !n.certLimiter().Allow(key, p.SMIME.RetryInterval) {
		n.Log.Info("certificate mail suppressed by the rate limit (one per domain per smime.retry_interval)", "kind", string(nt.Kind), "to", nt.To, "interval", p.SMIME.RetryInterval.String())
		return nil, errSuppressed
	}
	switch nt.Kind {
	case policy.NoticeCertRequest:
		r := certmail.Request{OurDomain: nt.From, PeerDomain: toDomain, Hostname: p.AuthservID}
		rhs, err := r.Headers()
		if err != nil {
			return nil, err
		}
		data, err := certmail.Signed(rhs, r.Content(), id)
		if err != nil {
			return nil, err
		}
		// The envelope sender is our DCA address, not the null sender: the
		// answer goes there (a peer never answers the null sender, R93).
		return &notify.Message{EnvelopeFrom: certmail.DCAAddress(nt.From), Rcpts: []string{nt.To}, Data: data, Kind: "certificate request"}, nil
	case policy.NoticeCertAnswer:
		a := certmail.AnswerMsg{OurDomain: nt.From, To: nt.To, Target: certmail.DCAAddress(nt.From), Hostname: p.AuthservID}
		if ids := policy.HeaderValues(hs, "Message-ID"); len(ids) > 0 {
			a.InReplyTo = strings.TrimSpace(ids[0])
		}
		a.Certs, a.Chain = ourValidCerts(ctx, n.SMIME, id, nt.From)
		ahs, err := a.Headers()
		if err != nil {
			return nil, err
		}
		content, err := a.Content()
		if err != nil {
			return nil, err
		}
		data := certmail.Plain(ahs, content)
		if len(nt.Transforms) == 0 {
			if data, err = certmail.Signed(ahs, content, id); err != nil {
				return nil, err
			}
		}
		// The null sender: a failure of the answer cannot loop (R93).
		return &notify.Message{Rcpts: []string{nt.To}, Data: data, Kind: "certificate answer"}, nil
	}
	return nil, fmt.Errorf("unknown certificate notice %q", nt.Kind)
}

// ourValidCerts are our DCA certificates of domain that are valid now, the
// signing one (newest valid, R37) first, and the chain certificates of
// them all (for the .p7c).
func ourValidCerts(ctx context.Context, e *pipeline.SMIMEEnv, first *smime.Identity, domain string) (leaves, chain []*x509.Certificate) {
	seen := map[string]bool{}
	add := func(id *smime.Identity) {
		fp := smime.Fingerprint(id.Cert)
		if seen[fp] {
			return
		}
		seen[fp] = true
		leaves = append(leaves, id.Cert)
		for _, c := range id.Chain {
			if f := smime.Fingerprint(c); !seen[f] {
				seen[f] = true
				chain = append(chain, c)
			}
		}
	}
	add(first)
	for _, id := range e.Identities {
		if strings.EqualFold(id.Domain, domain) && e.Validator.Validate(ctx, id.Cert, domain, id.Chain).State == smime.StateValid {
			add(id)
		}
	}
	return leaves, chain
}
