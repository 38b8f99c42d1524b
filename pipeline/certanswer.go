package pipeline

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/certmail"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// PeerLearned, when set (serve), is told of a peer domain that has a
// valid certificate in the store now because an answer to our certificate
// request brought it (R44, R51): the held-mail retrier retries that
// domain's mail at once instead of at the next smime.retry_interval.
var PeerLearned func(domain string)

// lookupCertAnswer reads an answer to our certificate request (R44): a
// message to the DCA address of one of our domains carrying certificate
// attachments (smime/certmail.ParseAnswer: .cer/.crt DER or PEM, .p7b/.p7c
// certs-only PKCS#7, bounded). Each certificate is judged for the From:
// author's domain as a discovered one is (chain to an accredited CA, dates,
// CRL, the DCA naming rules R45-R47: smime.Validator) and a valid one is
// stored in the peer store, or queued in smime.pending under
// smime.discovery = "approve" (R54). The answer is read after the inbound
// S/MIME layers are removed (a signed or signed+encrypted answer), else as
// received. nil: not an answer (not to that address, no certificate
// attachment, unreadable as a whole): the message is then judged like any
// other, never consumed unread.
func (t *Transaction) lookupCertAnswer(ctx context.Context, x policy.Transaction) *policy.CertAnswerFacts {
	e := t.st.SMIME
	if e == nil || e.Store == nil || !t.pol.RequestByMail() {
		return nil
	}
	to := false
	for _, r := range x.Envelope.Rcpts {
		to = to || t.pol.IsCertAnswerAddress(r)
	}
	if !to {
		return nil
	}
	domain := strings.ToLower(message.Authors(policy.HeaderValues(t.headers, "From")).Domain())
	if domain == "" || t.pol.IsOurDomain(domain) {
		return nil
	}
	entity, ok := t.answerEntity()
	if !ok {
		return nil
	}
	a, err := certmail.ParseAnswer(entity)
	if err != nil && (a.Attachments == 0 || !errors.Is(err, certmail.ErrNoCerts)) {
		return nil
	}
	facts := &policy.CertAnswerFacts{Domain: domain, Certs: len(a.Certs), Problems: a.Problems}
	if x.SMIMEIn != nil {
		facts.Signed = x.SMIMEIn.Verified()
	}
	judgeAnswer(ctx, e, t.pol, domain, a, facts)
	if (len(facts.Stored) > 0 || len(facts.Known) > 0) && PeerLearned != nil {
		PeerLearned(domain)
	}
	return facts
}

// answerEntity is the entity the certificates are read from: the inner
// entity of the inbound S/MIME layers, or the message as received;
// false when it is over certmail.MaxAnswer.
func (t *Transaction) answerEntity() ([]byte, bool) {
	if t.smimeIn != nil && t.smimeIn.facts.Unwrapped {
		if len(t.smimeIn.body) > certmail.MaxAnswer {
			return nil, false
		}
		var b bytes.Buffer
		b.WriteString(message.HeaderBlock(t.smimeIn.inner, "\r\n"))
		b.Write(t.smimeIn.body)
		return b.Bytes(), true
	}
	var b bytes.Buffer
	b.WriteString(message.HeaderBlock(t.raw, "\r\n"))
	if _, err := io.Copy(&b, io.LimitReader(t.body.Reader(), certmail.MaxAnswer+1)); err != nil || b.Len() > certmail.MaxAnswer {
		return nil, false
	}
	return b.Bytes(), true
}

// judgeAnswer validates and stores the certificates of an answer for
// domain. CA certificates are chain material, not candidates.
func judgeAnswer(ctx context.Context, e *SMIMEEnv, p *policy.Policy, domain string, a certmail.Answer, f *policy.CertAnswerFacts) {
	have, _ := e.Store.Certificates(domain)
	if in, why := p.SMIMEScope(domain, len(have) > 0); !in {
		f.Rejected = append(f.Rejected, "the domain is not in S/MIME scope: "+why)
		return
	}
	dp := p.SMIME.Discovery
	pending := &discovery.Pending{Dir: dp.Pending}
	for _, c := range a.Certs {
		if c.IsCA {
			continue
		}
		fp := smime.Fingerprint(c)
		short := fp[:16]
		vd := e.Validator.Validate(ctx, c, domain, a.Certs)
		if vd.State != smime.StateValid {
			f.Rejected = append(f.Rejected, short+": "+string(vd.State)+": "+vd.Reason)
			continue
		}
		if containsFingerprint(have, fp) {
			f.Known = append(f.Known, short)
			continue
		}
		if dp.Mode == discovery.ModeApprove {
			// R54: the administrator approves (certs approve FINGERPRINT).
			if pending.Rejected(domain, fp) {
				f.Rejected = append(f.Rejected, short+": rejected by the administrator")
				continue
			}
			if _, err := pending.Add(domain, c); err != nil {
				f.Rejected = append(f.Rejected, short+": cannot queue for approval: "+err.Error())
				continue
			}
			f.Pending = append(f.Pending, short)
			continue
		}
		if _, err := e.Store.Add(domain, c); err != nil {
			f.Rejected = append(f.Rejected, short+": cannot store: "+err.Error())
			continue
		}
		f.Stored = append(f.Stored, short)
	}
}

func containsFingerprint(certs []*x509.Certificate, fp string) bool {
	for _, c := range certs {
		if smime.Fingerprint(c) == fp {
			return true
		}
	}
	return false
}
