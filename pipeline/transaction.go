// Package pipeline is the one transaction driver (issue 13 point 3): the
// milter's callbacks feed it in `serve`, and `check` feeds it from a file,
// so `check --output` is what the MTA delivers. It drives the sender
// checks (policy.Checker), the streaming classifier, the spool, the
// engine's At* stages and the body transform chain. It does not know the
// milter protocol.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// CheckTimeout bounds the sender checks of one stage; under Postfix's
// milter_command_timeout (30s), so a slow DNS ends in our 451, not in a
// dropped milter connection.
const CheckTimeout = 25 * time.Second

// State is what a transaction runs with: the policy, its checks and its
// DKIM signers, as one consistent set (serve swaps the set on SIGHUP; a
// transaction keeps the one it began with).
type State struct {
	Policy  *policy.Policy
	Checker policy.Checker
	Signers Signers
	// Classify are the scanner's options, ClassifyOptions(Policy), built
	// once per policy load by NewState; nil: built for each transaction.
	Classify *classify.Options
	// SMIME is the S/MIME env of the load (issue 14), nil when
	// smime.mode is off.
	SMIME *SMIMEEnv
	// Hold keeps mail held on a certificate problem (issue 14; the
	// held-mail helper's store); nil: such mail is tempfailed.
	Hold HoldStore
	// Known is the first-contact store (outbound.first_contact, issue
	// 17), kept by the process across reloads; nil: every address counts
	// as new and nothing is recorded.
	Known KnownStore
	// SelftestKey verifies the X-NZ-Selftest tokens of self-test
	// scenario messages (package selftest, R19-R21); kept across reloads.
	SelftestKey []byte
}

// classifyOptions are the scanner's options of the load: computed once by
// NewState, or here for a State built by hand.
func (st State) classifyOptions() classify.Options {
	if st.Classify != nil {
		return *st.Classify
	}
	return ClassifyOptions(st.Policy)
}

// NewState builds what one policy load runs with: its DKIM signers (keys
// read once) and its classifier options, not recomputed per transaction
// (issue 13 point 5), and with smime.mode on its S/MIME env. It fails
// when a DKIM key or, with S/MIME on, a trust anchor cannot be loaded.
func NewState(p *policy.Policy, ck policy.Checker) (State, error) {
	sg, err := NewSigners(p)
	if err != nil {
		return State{}, err
	}
	opts := ClassifyOptions(p)
	st := State{Policy: p, Checker: ck, Signers: sg, Classify: &opts}
	if p.SMIME.Mode == policy.SMIMEOn {
		if st.SMIME, err = NewSMIMEEnv(p, true); err != nil {
			return State{}, err
		}
	}
	return st, nil
}

// headersCap is the header count Begin makes room for: an inbound
// message through a large provider carries 15 to 25.
const headersCap = 24

// Transaction is one message, from MAIL FROM to end of message.
type Transaction struct {
	st      State
	pol     *policy.Policy
	conn    policy.Conn
	env     policy.Envelope
	start   time.Time
	wants   policy.Wants
	mail    policy.MailChecks
	header  policy.HeaderChecks
	scanner *classify.Scanner
	scanErr error
	line    []byte // scan's buffer
	eoh     bool   // the blank line after the headers was fed to the scanner
	scanned bool   // the scanner was closed; result and scanErr are final
	result  classify.Result
	headers []policy.Header // values as a reader sees them (leading blanks removed)
	raw     []policy.Header // values exactly as received, for DKIM and the output
	size    int64
	tooBig  bool
	bodyErr error
	body    *Spool
	spools  []*Spool // the chain's, closed with the transaction
	failure error    // the gateway's own failure that tempfailed the message
	smimeIn *smimeIn // inbound S/MIME found at end of message (issue 14)
	// released: the administrator holds this message was released from
	// (policy.Transaction.Released; the held-mail re-run sets them).
	released []string
}

// Begin starts a transaction at MAIL FROM: it runs the checks the policy
// wants at this stage and returns the MAIL FROM verdict (Continue when the
// transaction goes on). The caller closes the transaction.
func Begin(st State, conn policy.Conn, env policy.Envelope, now time.Time) (*Transaction, policy.Verdict, error) {
	p := st.Policy
	t := &Transaction{st: st, pol: p, conn: conn, env: env, start: now,
		body: NewSpool(p.Limits.MemorySpool, p.Limits.SpoolDir)}
	// Room for a usual header block in one allocation for both lists
	// (they grow apart when a message has more).
	hs := make([]policy.Header, 0, 2*headersCap)
	t.headers, t.raw = hs[:0:headersCap], hs[headersCap:headersCap]
	var err error
	if t.scanner, err = classify.NewScanner(st.classifyOptions()); err != nil {
		t.Close()
		return nil, policy.Verdict{}, fmt.Errorf("classification scanner: %w", err)
	}
	t.wants = p.Wants(conn, env)
	if t.wants.Any() {
		ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
		t.mail = st.Checker.Mail(ctx, t.wants, conn, env)
		cancel()
	}
	v := p.AtMailFrom(conn, env, t.mail)
	return t, v, nil
}

// Policy is the policy the transaction began with.
func (t *Transaction) Policy() *policy.Policy { return t.pol }

// Conn is the connection the transaction is on.
func (t *Transaction) Conn() policy.Conn { return t.conn }

// Envelope is the envelope so far.
func (t *Transaction) Envelope() policy.Envelope { return t.env }

// Start is when the transaction began (MAIL FROM).
func (t *Transaction) Start() time.Time { return t.start }

// Size is the header and body bytes seen (limits.max_message_size).
func (t *Transaction) Size() int64 { return t.size }

// Headers are the headers so far, values as a reader sees them.
func (t *Transaction) Headers() []policy.Header { return t.headers }

// Scan is the classifier's result, after EndOfMessage.
func (t *Transaction) Scan() classify.Result { return t.result }

// SetQueueID records the MTA's queue ID once it is known.
func (t *Transaction) SetQueueID(id string) {
	if id != "" {
		t.env.QueueID = id
	}
}

// Rcpt adds an envelope recipient (RCPT TO, without angle brackets).
func (t *Transaction) Rcpt(addr string) { t.env.Rcpts = append(t.env.Rcpts, addr) }

// Header adds one header: value exactly as received after the colon (with
// the leading space, as Postfix sends it under OptHeaderLeadingSpace).
// Its size counts towards the limit, refused at end of headers.
func (t *Transaction) Header(name, value string) {
	t.headers = append(t.headers, policy.Header{Name: name, Value: strings.TrimLeft(value, " \t")})
	t.raw = append(t.raw, policy.Header{Name: name, Value: value})
	t.size += int64(len(name) + len(value) + 3)
	t.scan(name, ":", value, "\r\n")
}

// scan feeds the classifier the parts as one write, through a buffer the
// transaction keeps (not a conversion per part); a failure is kept and
// turns the end of message into a tempfail (never an unscanned accept).
func (t *Transaction) scan(parts ...string) {
	if t.scanErr != nil {
		return
	}
	t.line = t.line[:0]
	for _, p := range parts {
		t.line = append(t.line, p...)
	}
	if _, err := t.scanner.Write(t.line); err != nil {
		t.scanErr = err
	}
	if cap(t.line) > 64<<10 {
		t.line = nil // one huge header: not kept for the rest
	}
}

// EndOfHeaders runs the header checks (Sender ID on the PRA) and returns
// the end-of-headers verdict: a refusal when the headers alone pass
// limits.max_message_size, Continue when the transaction goes on.
func (t *Transaction) EndOfHeaders() policy.Verdict {
	if t.tooBig || t.size > t.pol.Limits.MaxMessageSize {
		return t.final(t.tooBigVerdict())
	}
	t.endHeaders()
	if t.wants.SenderIDPRA {
		ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
		t.header = t.st.Checker.Headers(ctx, t.wants, t.conn, t.env, t.mail, t.headers)
		cancel()
	}
	return t.final(t.pol.AtHeaders(t.view(), t.header))
}

// final is where a verdict leaves the driver.
func (t *Transaction) final(v policy.Verdict) policy.Verdict { return v }

// view is the engine's view of the transaction so far.
func (t *Transaction) view() policy.Transaction {
	return policy.Transaction{Conn: t.conn, Envelope: t.env, Headers: t.headers, Mail: t.mail, Header: t.header, Received: t.start}
}

// OverLimit marks the message as past limits.max_message_size before all
// of it could be fed (`check` reading a header block larger than the
// limit): it is refused at the next stage, as serve refuses it.
func (t *Transaction) OverLimit() { t.tooBig = true }

// BodyChunk feeds a piece of the body. What goes wrong here (the size
// limit, the spool) is kept and answered at end of message.
func (t *Transaction) BodyChunk(chunk []byte) {
	if t.tooBig || t.bodyErr != nil {
		return
	}
	t.endHeaders()
	t.size += int64(len(chunk))
	if t.size > t.pol.Limits.MaxMessageSize {
		// Stop spooling and scanning: the message will be refused.
		t.tooBig = true
		return
	}
	if t.scanErr == nil {
		if _, err := t.scanner.Write(chunk); err != nil {
			t.scanErr = err
		}
	}
	if _, err := t.body.Write(chunk); err != nil {
		t.bodyErr = err
	}
}

// endHeaders feeds the scanner the blank line that ends the header block,
// once.
func (t *Transaction) endHeaders() {
	if !t.eoh {
		t.eoh = true
		t.scan("\r\n")
	}
}

// Classified ends the scan and gives its result: at end of message, or for
// `check`'s report after an earlier verdict (what the message carries,
// though the gateway decided before reading it). Called again, it gives
// the same result.
func (t *Transaction) Classified() (classify.Result, error) {
	if !t.scanned {
		t.endHeaders()
		t.scanned = true
		res, err := t.scanner.Close()
		if err == nil {
			err = t.scanErr
		}
		t.result, t.scanErr = res, err
	}
	return t.result, t.scanErr
}

// tooBigVerdict refuses a message past limits.max_message_size (RFC 3463
// 5.3.4: message too big for system).
func (t *Transaction) tooBigVerdict() policy.Verdict {
	limit := t.pol.Limits.MaxMessageSize
	return policy.Verdict{Stage: "size", Direction: t.pol.Direction(t.conn, t.env), Action: policy.Reject, Classification: policy.Unclassified,
		Reply:   &policy.Reply{Code: 552, Status: "5.3.4", Text: fmt.Sprintf("Message too big: this gateway accepts at most %d bytes", limit)},
		Reasons: []string{fmt.Sprintf("message passed limits.max_message_size (%d bytes)", limit)}}
}

// tempfail is the verdict when the gateway itself fails: the MTA keeps
// the message and the sender retries; never an accept.
func (t *Transaction) tempfail(stage policy.Stage, reason string) policy.Verdict {
	return policy.Verdict{Stage: stage, Direction: t.pol.Direction(t.conn, t.env), Action: policy.Tempfail, Classification: policy.Unclassified,
		Reply:   &policy.Reply{Code: 451, Status: "4.3.0", Text: "Temporary failure in the secure-email filter; please try again later"},
		Reasons: []string{reason}}
}

// EndOfMessage classifies, runs the message checks (DKIM, DMARC) and
// returns the engine's final verdict.
func (t *Transaction) EndOfMessage() policy.Verdict {
	if t.tooBig {
		return t.final(t.tooBigVerdict())
	}
	if t.bodyErr != nil {
		t.failure = fmt.Errorf("spooling the body: %w", t.bodyErr)
		return t.final(t.tempfail("body", "spooling the body failed: "+t.bodyErr.Error()))
	}
	res, err := t.Classified()
	if err != nil {
		t.failure = fmt.Errorf("classification scanner: %w", err)
		return t.final(t.tempfail(policy.StageEOM, "classification scanner failed: "+err.Error()))
	}
	x := t.view()
	x.Classification, x.RSVPDR, x.Unreadable = res.Classification, res.RSVPDR, res.Unreadable
	if err := t.inboundSMIME(&x); err != nil {
		t.failure = fmt.Errorf("classifying the decrypted S/MIME content: %w", err)
		return t.final(t.tempfail(policy.StageEOM, "classifying the decrypted S/MIME content failed: "+err.Error()))
	}
	if t.st.Known != nil {
		x.Known = t.st.Known
	}
	x.Released = t.released
	if t.wants.DKIM || t.wants.DMARC {
		ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
		// The message is read only when there is a signature to verify
		// (most mail has none), so its header block is written then.
		x.Message = t.st.Checker.Message(ctx, t.wants, t.conn, t.env, t.headers, t.mail,
			&lazyReader{open: func() io.Reader { return io.MultiReader(HeaderBlock(t.raw), t.body.Reader()) }})
		cancel()
	}
	if t.st.SMIME != nil {
		// Outbound S/MIME facts (issue 14); CRL fetches are bounded by
		// smime.crl_timeout, the whole look-up by CheckTimeout.
		ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
		x.SMIMEOut = t.lookupSMIMEOut(ctx, x)
		cancel()
		// R44: an answer to our certificate request (certanswer.go).
		ctx, cancel = context.WithTimeout(context.Background(), CheckTimeout)
		x.CertAnswer = t.lookupCertAnswer(ctx, x)
		cancel()
	}
	return t.final(t.pol.AtEndOfMessage(x))
}

// SetReleased tells the engine, at end of message, that an administrator
// released this message from the holds kinds names (policy.HoldKind;
// `held release` re-runs a held message with them).
func (t *Transaction) SetReleased(kinds []string) {
	t.released = append([]string(nil), kinds...)
}

// Failure is the gateway's own failure (spool, classifier) that made
// EndOfMessage tempfail the message, nil otherwise: an error to log, not a
// decision about the message.
func (t *Transaction) Failure() error { return t.failure }

// Steps are the body transforms of v as chain steps, in the verdict's
// order; none unless the message is kept.
func (t *Transaction) Steps(v policy.Verdict) ([]Step, error) {
	if v.Action != policy.Accept && v.Action != policy.Quarantine {
		return nil, nil
	}
	if len(v.Transforms) == 0 {
		return nil, nil // most inbound mail: nothing to render or sign
	}
	var steps []Step
	evidence := WithoutForgedWarnings(t.headers)
	for _, tr := range v.Transforms {
		switch tr.Kind {
		case policy.TransformSMIMEUnwrap:
			if t.smimeIn == nil || !t.smimeIn.facts.Unwrapped {
				return nil, fmt.Errorf("body transform %q without an unwrapped S/MIME entity", tr.Kind)
			}
			steps = append(steps, UnwrapStep{Inner: t.smimeIn.inner, Body: t.smimeIn.body})
			// The warning after it refers to, and wraps, what the recipient
			// gets: the unwrapped Content-* headers (issue 14 point 4).
			evidence = policy.ApplyEdits(evidence, contentSwapEdits(evidence, t.smimeIn.inner))
		case policy.TransformWarnWrap, policy.TransformWarnPrepend, policy.TransformWarnHeader:
			steps = append(steps, WarnStep{Policy: t.pol, Transform: tr, Evidence: evidence})
		case policy.TransformDKIMSign:
			// A domain the engine names but no signer loaded for (a key
			// that failed to load refuses the policy, so only a name
			// mismatch): signed by no one, as before.
			steps = append(steps, SignStep{Signer: t.st.Signers[tr.Domain]})
		case policy.TransformSMIMESignEncrypt:
			steps = append(steps, SMIMEStep{Env: t.st.SMIME, Transform: tr})
		default:
			return nil, fmt.Errorf("unknown body transform %q", tr.Kind)
		}
	}
	return steps, nil
}

// Output runs the verdict's header edits and body transforms on the
// message: the net header edits and the final body. For a verdict that
// does not keep the message, the output has no edits.
func (t *Transaction) Output(v policy.Verdict) (*Output, error) {
	steps, err := t.Steps(v)
	if err != nil {
		return nil, err
	}
	return t.Run(v, steps)
}

// Run is Output with the given steps (tests put extra steps in the chain).
func (t *Transaction) Run(v policy.Verdict, steps []Step) (*Output, error) {
	var edits []policy.HeaderEdit
	if v.Action == policy.Accept || v.Action == policy.Quarantine {
		edits = v.Edits
	}
	return RunChain(t.raw, edits, t.body, steps, func() *Spool {
		return NewSpool(t.pol.Limits.MemorySpool, t.pol.Limits.SpoolDir)
	}, &t.spools)
}

// Close frees the spools; safe to call twice.
func (t *Transaction) Close() error {
	var first error
	for _, s := range append([]*Spool{t.body}, t.spools...) {
		if s == nil {
			continue
		}
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	t.body, t.spools = nil, nil
	return first
}

// lazyReader opens its reader at the first Read.
type lazyReader struct {
	open func() io.Reader
	r    io.Reader
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		l.r = l.open()
	}
	return l.r.Read(p)
}
