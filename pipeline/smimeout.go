package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Outbound domain S/MIME in the mail path (issue 14 point 3, R62-R72):
// the look-up the engine decides on (lookupSMIMEOut), the chain step that
// signs and encrypts (SMIMEStep), and the one way a verdict's forms are
// carried out (Forms, CarryOut), shared by the milter and the held-mail
// retry.

// ErrSMIMEStep is wrapped by every failure of the sign+encrypt step: the
// message is then tempfailed, never sent in clear.
var ErrSMIMEStep = errors.New("S/MIME sign+encrypt")

// ErrNoHoldStore: a verdict holds recipients but no HoldStore is
// configured; the transaction is tempfailed (nothing lost).
var ErrNoHoldStore = errors.New("no hold store for mail held on a certificate problem")

// ErrNoSubmitter: a verdict has a copy to submit but no Submitter is
// configured; the transaction is tempfailed.
var ErrNoSubmitter = errors.New("no submitter for the extra copies of a message")

// lookupSMIMEOut gives the engine the S/MIME facts of a message (plain
// values, the engine does no I/O). Outbound: for each recipient domain in
// scope (policy.SMIMEScope, which needs only whether the peer store holds
// a certificate), what the gateway has for it (SMIMEEnv.Peer: validation,
// CRLs), and our identity for the sender's domain. Inbound: the envelope
// sender's domain, where receipts and reports go (R62). Out-of-scope and
// our own domains are not looked up.
func (t *Transaction) lookupSMIMEOut(ctx context.Context, x policy.Transaction) policy.SMIMEOutbound {
	e := t.st.SMIME
	out := policy.SMIMEOutbound{}
	if e == nil || t.pol.SMIME.Mode != policy.SMIMEOn {
		return out
	}
	out.On = true
	outbound := t.pol.Direction(t.conn, t.env) == policy.Outbound
	addrs := x.Envelope.Rcpts
	if !outbound {
		addrs = []string{x.Envelope.From}
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		d := policy.SMIMERcptDomain(a)
		if d == "" || seen[d] || t.pol.IsOurDomain(d) {
			continue
		}
		seen[d] = true
		has := false
		if e.Store != nil {
			certs, _ := e.Store.Certificates(d)
			has = len(certs) > 0
		}
		// The answer to a signed ping goes to the pinging domain's
		// certificate even outside smime.encrypt_to (R98).
		if in, _ := t.pol.SMIMEScope(d, has); !in && (outbound || t.pol.PingAnswerDomain(x) != d) {
			continue
		}
		if out.Peers == nil {
			out.Peers = map[string]policy.SMIMEPeer{}
		}
		out.Peers[d] = e.Peer(ctx, d)
	}
	if len(out.Peers) == 0 {
		return out
	}
	if outbound {
		out.Own = e.Own(ctx, t.pol.SMIMESenderDomain(x))
	}
	if len(t.pol.Domains) > 0 {
		if nd := strings.ToLower(t.pol.Domains[0]); outbound && nd == out.Own.Domain {
			out.NoticeOwn = out.Own
		} else {
			out.NoticeOwn = e.Own(ctx, nd)
		}
	}
	return out
}

// SignEncryptMessage runs the smime-sign-encrypt transform tr over a whole
// message (a notice the gateway generated, R62): data is its header block
// and body, CRLF line ends; the result is the message as it leaves.
func (e *SMIMEEnv) SignEncryptMessage(data []byte, tr policy.Transform) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	hs, err := ReadRawHeaders(br, int64(len(data))+1)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the message: %v", ErrSMIMEStep, err)
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	ch, err := SMIMEStep{Env: e, Transform: tr}.Run(Current{Headers: hs, Body: func() io.Reader { return bytes.NewReader(body) }})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(message.HeaderBlock(policy.ApplyEdits(hs, ch.Edits), "\r\n"))
	if _, err := io.Copy(&b, ch.Body); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SMIMEStep signs the current message with our identity and encrypts it
// to the peer's certificate, as the engine's smime-sign-encrypt transform
// names them (by SHA-256 fingerprint: the engine decided on exactly these
// certificates). The content headers (Content-*) and the body become the
// signed MIME entity (RFC 8551 section 3.1); it is signed opaque
// (application/pkcs7-mime; smime-type=signed-data, section 3.5.2, with our
// certificate and chain, R70, and SMIMECapabilities, R71), and that entity
// is encrypted (section 3.2: enveloped-data) with Transform.Cipher (R85).
// The other headers (From, To, Subject, ...) stay outside, as RFC 3183
// domain gateways send them; DKIM signs the result after this step.
type SMIMEStep struct {
	Env       *SMIMEEnv
	Transform policy.Transform
}

func (s SMIMEStep) Run(cur Current) (Change, error) {
	if s.Env == nil {
		return Change{}, fmt.Errorf("%w: no S/MIME env", ErrSMIMEStep)
	}
	id := s.identity()
	if id == nil {
		return Change{}, fmt.Errorf("%w: our identity %s is not loaded", ErrSMIMEStep, s.Transform.Signer)
	}
	peer, err := s.peerCert()
	if err != nil {
		return Change{}, err
	}
	c, err := ParseCipher(s.Transform.Cipher)
	if err != nil {
		return Change{}, err
	}
	var inner bytes.Buffer
	inner.WriteString(message.HeaderBlock(contentHeaders(cur.Headers), "\r\n"))
	if _, err := io.Copy(&inner, io.LimitReader(cur.Body(), smime.MaxDER+1)); err != nil {
		return Change{}, fmt.Errorf("%w: reading the body: %v", ErrSMIMEStep, err)
	}
	if inner.Len() > smime.MaxDER {
		// Never a truncated signature: the message is tempfailed.
		return Change{}, fmt.Errorf("%w: %w: the message is over %d bytes", ErrSMIMEStep, smime.ErrTooLarge, smime.MaxDER)
	}
	sig, err := smime.Sign(inner.Bytes(), id, false)
	if err != nil {
		return Change{}, fmt.Errorf("%w: %w", ErrSMIMEStep, err)
	}
	env, err := smime.Encrypt(smime.SignedEntity(sig), []*x509.Certificate{peer}, c)
	if err != nil {
		return Change{}, fmt.Errorf("%w: %w", ErrSMIMEStep, err)
	}
	// The content headers move inside; the enveloped entity's take their
	// place (contentSwapEdits, as the inbound unwrap does the reverse).
	hdr, body, ok := bytes.Cut(smime.EnvelopedEntity(env), []byte("\r\n\r\n"))
	if !ok {
		return Change{}, fmt.Errorf("%w: enveloped entity without a header block", ErrSMIMEStep)
	}
	var ehs []policy.Header // smime.EnvelopedEntity writes unfolded lines
	for _, line := range strings.Split(string(hdr), "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		ehs = append(ehs, policy.Header{Name: name, Value: value})
	}
	return Change{Edits: contentSwapEdits(cur.Headers, ehs), Body: bytes.NewReader(body)}, nil
}

// isContentHeader: the MIME headers that describe the body (RFC 2045
// section 9: Content-*), which move into the signed entity.
func isContentHeader(name string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimRight(name, " \t")), "content-")
}

func (s SMIMEStep) identity() *smime.Identity {
	for _, id := range s.Env.Identities {
		if smime.Fingerprint(id.Cert) == s.Transform.Signer {
			return id
		}
	}
	return nil
}

func (s SMIMEStep) peerCert() (*x509.Certificate, error) {
	if s.Env.Store == nil {
		return nil, fmt.Errorf("%w: no peer store (%s)", ErrSMIMEStep, s.Env.StoreNote)
	}
	certs, err := s.Env.Store.Certificates(s.Transform.Domain)
	if err != nil {
		return nil, fmt.Errorf("%w: peer store: %w", ErrSMIMEStep, err)
	}
	for _, c := range certs {
		if smime.Fingerprint(c) == s.Transform.Cert {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: certificate %s of %s is no longer in the peer store", ErrSMIMEStep, s.Transform.Cert, s.Transform.Domain)
}

// ParseCipher reads a cipher name as smime.Cipher.String writes it (the
// engine's Transform.Cipher, policy.SMIMEPeer.Cipher); "" is AES-256-CBC
// (smime.Capabilities.Strongest with nothing known).
func ParseCipher(name string) (smime.Cipher, error) {
	for _, c := range []smime.Cipher{smime.CipherAES256, smime.CipherAES128, smime.Cipher3DES} {
		if c.String() == name {
			return c, nil
		}
	}
	if name == "" {
		return smime.CipherAES256, nil
	}
	return smime.CipherUnknown, fmt.Errorf("%w: unknown cipher %q", ErrSMIMEStep, name)
}

// Form is one form of a message as a verdict sends it (issue 14): its
// recipients and, for a form that leaves, the message as it leaves.
type Form struct {
	Kind  policy.FormKind
	Rcpts []string
	// Main: the MTA's own transaction carries this form (the milter
	// applies Output's edits and body to it); the others are submitted.
	Main bool
	// Output is the form as it leaves; nil for a held form.
	Output *Output
	// Held describes a held form (Kind held); its message is Original.
	Held *HeldMessage
}

// Forms carries out the transform chain for every form of v: the main
// transaction's (v.Transforms, for the recipients v.MainRcpts names; none
// when v discards the message) and each of v.Copies (the verdict's header
// edits, then the copy's transforms). Every recipient of the envelope is
// in exactly one form or in v.RemoveRcpts. The milter applies the main
// form and hands the rest to CarryOut; the held-mail retry, which has no
// MTA transaction, hands CarryOut all of them with mainByMTA false.
func (t *Transaction) Forms(v policy.Verdict) ([]Form, error) {
	var forms []Form
	if v.Action == policy.Accept || v.Action == policy.Quarantine {
		out, err := t.Output(v)
		if err != nil {
			return nil, err
		}
		forms = append(forms, Form{Kind: v.MainForm(), Rcpts: v.MainRcpts(t.env), Main: true, Output: out})
	}
	if v.Action != policy.Accept && v.Action != policy.Discard {
		return forms, nil
	}
	for _, c := range v.Copies {
		if c.Form == policy.FormHeld {
			env := t.env
			env.Rcpts = distinctRcpts(c.Rcpts)
			forms = append(forms, Form{Kind: c.Form, Rcpts: c.Rcpts, Held: &HeldMessage{Conn: t.conn, Envelope: env,
				Domain: c.Domain, Code: c.Code, Reason: c.Reason, Received: t.start,
				AdminHold: c.Hold, Released: append([]string(nil), t.released...)}})
			continue
		}
		vc := v
		vc.Action, vc.Transforms = policy.Accept, c.Transforms
		out, err := t.Output(vc)
		if err != nil {
			return nil, fmt.Errorf("%s copy for %s: %w", c.Form, strings.Join(c.Rcpts, ", "), err)
		}
		forms = append(forms, Form{Kind: c.Form, Rcpts: c.Rcpts, Output: out})
	}
	return forms, nil
}

// Original is the message as received (headers as received, body), what
// a held form keeps: the retry runs it through the chain again.
func (t *Transaction) Original() io.Reader {
	return io.MultiReader(HeaderBlock(t.raw), t.body.Reader())
}

// The held-mail retry (R57) re-enters here: it feeds the held original
// (HeldMessage.Conn, .Envelope with the held recipients, the stored
// message) through Begin, Rcpt, Header, EndOfHeaders, BodyChunk and
// EndOfMessage of a State built as serve builds it (the S/MIME facts are
// looked up afresh), then calls Forms on the verdict and CarryOut with
// mainByMTA false, so every form that can leave is submitted. A form still
// held comes back as a held form: the retrier keeps its stored copy
// rather than Put it again (pass a HoldStore that does so), and sends the
// verdict's SECURE DELIVERY DELAYED notices no more often than R94 allows.

// CarryOut does what the forms not carried by the MTA's own transaction
// need, in this order: each held form is Put in hold (on stable storage
// when Put returns), then each other form is submitted through sub, with
// the envelope sender env.From and the form's recipients. mainByMTA: the
// MTA's transaction carries the main form (the milter); false submits it
// too (the held-mail retry). The first failure is returned: the caller
// tempfails the whole transaction, so nothing is lost (a retry may then
// hold or submit a copy twice: a duplicate, never a loss). It returns one
// line per form for the decision log.
func (t *Transaction) CarryOut(ctx context.Context, forms []Form, sub notify.Submitter, hold HoldStore, mainByMTA bool) (done []string, err error) {
	// A failure after a hold was stored: the caller tempfails (the milter)
	// or keeps the entry it retried (the held-mail retry), so the message
	// comes back whole and would be stored again: one more entry per
	// attempt while the MTA cannot take the copies, each sent later. The
	// entries this call stored are removed again when the store can.
	var stored []string
	defer func() {
		if err == nil || len(stored) == 0 {
			return
		}
		r, ok := hold.(interface{ Remove(id string) error })
		if !ok {
			return
		}
		for _, id := range stored {
			if rerr := r.Remove(id); rerr != nil {
				done = append(done, fmt.Sprintf("held entry %s not removed after the failure (it may be sent twice): %v", id, rerr))
			} else {
				done = append(done, fmt.Sprintf("held entry %s removed again after the failure", id))
			}
		}
	}()
	for _, f := range forms {
		if f.Kind != policy.FormHeld {
			continue
		}
		if hold == nil {
			return done, fmt.Errorf("%w: recipients %s", ErrNoHoldStore, strings.Join(f.Rcpts, ", "))
		}
		id, err := hold.Put(ctx, *f.Held, t.Original())
		if err != nil {
			return done, fmt.Errorf("holding %s: %w", strings.Join(f.Rcpts, ", "), err)
		}
		stored = append(stored, id)
		done = append(done, fmt.Sprintf("held %s (%s) as %s: %s", f.Held.Code, f.Held.Domain, id, strings.Join(f.Rcpts, ", ")))
	}
	for _, f := range forms {
		if f.Kind == policy.FormHeld || (f.Main && mainByMTA) || len(f.Rcpts) == 0 {
			if f.Main && mainByMTA && len(f.Rcpts) > 0 {
				done = append(done, fmt.Sprintf("%s in the MTA's transaction: %s", f.Kind, strings.Join(f.Rcpts, ", ")))
			}
			continue
		}
		if sub == nil {
			return done, fmt.Errorf("%w: recipients %s", ErrNoSubmitter, strings.Join(f.Rcpts, ", "))
		}
		var b bytes.Buffer
		if _, err := f.Output.WriteTo(&b); err != nil {
			return done, fmt.Errorf("rendering the %s copy: %w", f.Kind, err)
		}
		if err := sub.Submit(ctx, t.env.From, distinctRcpts(f.Rcpts), b.Bytes()); err != nil {
			return done, fmt.Errorf("submitting the %s copy for %s: %w", f.Kind, strings.Join(f.Rcpts, ", "), err)
		}
		done = append(done, fmt.Sprintf("%s submitted as a copy: %s", f.Kind, strings.Join(f.Rcpts, ", ")))
	}
	return done, nil
}

// distinctRcpts is rcpts with each address once (compared without regard
// to case, as policy's recipient lists are): a recipient given twice in
// RCPT TO gets one copy of a submitted or held form, not two. The form's
// own list keeps every spelling, so the milter deletes each from the
// MTA's transaction (DeleteRecipient matches the address as given).
func distinctRcpts(rcpts []string) []string {
	var out []string
	for _, r := range rcpts {
		dup := false
		for _, o := range out {
			dup = dup || strings.EqualFold(o, r)
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}
