package milter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// session is the state of one MTA connection (one SMTP connection), which
// may carry several transactions.
type session struct {
	gomilter.NoOpMilter
	srv  *Server
	conn policy.Conn
	mta  string // the MTA's host name (macro j)

	// The current transaction; tx is nil outside MAIL FROM .. end.
	tx *transaction
}

// transaction is one message: from MAIL FROM to end of message or abort.
type transaction struct {
	pol     *policy.Policy // the policy it started with
	checker policy.Checker
	wants   policy.Wants
	mail    policy.MailChecks
	header  policy.HeaderChecks
	start   time.Time
	scanner *classify.Scanner // trigger words, fed as the message streams in
	scanErr error
	// markings and problems of the scan, for the decision log
	markings []classify.Marking
	problems []string
	env      policy.Envelope
	headers  []policy.Header
	raw      []policy.Header // values exactly as received, for DKIM
	signers  signers         // of the policy it started with
	signed   int             // DKIM signatures added
	size     int64           // header and body bytes seen, for limits.max_message_size
	tooBig   bool            // passed limits.max_message_size: refused at end of message
	bodyErr  error           // spooling failed: tempfailed at end of message
	body     *Spool
}

// tempfailReply is given when the milter itself fails: the MTA keeps the
// message (4xx) and the sender retries; never an accept.
const tempfailText = "4.3.0 Temporary failure in the secure-email filter; please try again later"

// guard turns a panic in a callback into a logged temporary failure, so a bug
// can never let a message through unfiltered.
func (s *session) guard(stage string, resp **gomilter.Response, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.srv.log.Error("internal error; transaction tempfailed", "stage", stage, "panic", fmt.Sprint(r),
		"stack", string(debug.Stack()), "client_ip", s.conn.ClientIP.String())
	*resp, *err = gomilter.RejectWithCodeAndReason(451, tempfailText)
	s.endTransaction()
}

func (s *session) NewConnection(m gomilter.Modifier) error {
	s.conn = policy.Conn{}
	s.endTransaction()
	return nil
}

func (s *session) Connect(host string, family string, port uint16, addr string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("connect", &resp, &err)
	s.conn = policy.Conn{ClientName: host, Daemon: m.Get(gomilter.MacroDaemonName)}
	if ip, perr := netip.ParseAddr(addr); perr == nil {
		s.conn.ClientIP = ip.Unmap()
	}
	s.mta = m.Get(gomilter.MacroMTAFQDN)
	s.conn.MTA = policy.MTAFromVersion(m.Get(gomilter.MacroMTAVersion))
	return gomilter.RespContinue, nil
}

func (s *session) Helo(name string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("helo", &resp, &err)
	s.conn.HELO = name
	s.readTLS(m)
	return gomilter.RespContinue, nil
}

// readTLS copies the TLS macros into the connection state when the MTA sent
// them (at HELO after STARTTLS, and at MAIL).
func (s *session) readTLS(m gomilter.Modifier) {
	if v, ok := m.GetEx(gomilter.MacroTlsVersion); ok && v != "" {
		s.conn.TLS.Version = v
		s.conn.TLS.Cipher = m.Get(gomilter.MacroCipher)
		s.conn.TLS.CipherBits, _ = strconv.Atoi(m.Get(gomilter.MacroCipherBits))
	}
}

func (s *session) MailFrom(from string, esmtpArgs string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("mail", &resp, &err)
	s.endTransaction()
	s.readTLS(m)
	if s.srv.draining.Load() {
		return gomilter.RejectWithCodeAndReason(421, "4.3.2 The secure-email filter is restarting; please try again shortly")
	}
	st := s.srv.state.Load()
	pol := withMTAName(st.pol, s.mta)
	s.tx = &transaction{
		pol:     pol,
		checker: st.checker,
		signers: st.signers,
		start:   time.Now(),
		env: policy.Envelope{
			QueueID:  m.Get(gomilter.MacroQueueId),
			From:     gomilter.RemoveAngle(from),
			AuthUser: m.Get(gomilter.MacroAuthAuthen),
		},
		body: NewSpool(pol.Limits.MemorySpool, pol.Limits.SpoolDir),
	}
	s.srv.inflight.Add(1)
	if s.tx.scanner, err = classify.NewScanner(ClassifyOptions(pol)); err != nil {
		return nil, fmt.Errorf("classification scanner: %w", err)
	}
	s.tx.wants = pol.Wants(s.conn, s.tx.env)
	if s.tx.wants.Any() {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		s.tx.mail = s.tx.checker.Mail(ctx, s.tx.wants, s.conn, s.tx.env)
		cancel()
	}
	v := pol.AtMailFrom(s.conn, s.tx.env, s.tx.mail)
	if !v.Final() {
		return gomilter.RespContinue, nil
	}
	return s.finish(v, nil)
}

func (s *session) RcptTo(rcptTo string, esmtpArgs string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("rcpt", &resp, &err)
	if s.tx == nil {
		return gomilter.RespContinue, nil
	}
	s.queueID(m)
	s.tx.env.Rcpts = append(s.tx.env.Rcpts, gomilter.RemoveAngle(rcptTo))
	return gomilter.RespContinue, nil
}

func (s *session) Data(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("data", &resp, &err)
	s.queueID(m)
	return gomilter.RespContinue, nil
}

func (s *session) Header(name string, value string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("header", &resp, &err)
	if s.tx == nil {
		return gomilter.RespContinue, nil
	}
	// OptHeaderLeadingSpace: the value keeps the space after the colon; the
	// engine sees the value as a reader would.
	s.tx.headers = append(s.tx.headers, policy.Header{Name: name, Value: strings.TrimLeft(value, " \t")})
	s.tx.raw = append(s.tx.raw, policy.Header{Name: name, Value: value})
	// Counted here, refused at end of headers: Postfix is asked not to
	// wait for a reply to each header (OptNoHeaderReply).
	s.tx.size += int64(len(name) + len(value) + 3)
	s.scan(name, ":", value, "\r\n")
	return gomilter.RespContinue, nil
}

// scan feeds the classification scanner; a scanner failure is kept and
// turns the end of message into a tempfail (never an unscanned accept).
func (s *session) scan(parts ...string) {
	if s.tx.scanErr != nil {
		return
	}
	for _, p := range parts {
		if _, err := s.tx.scanner.Write([]byte(p)); err != nil {
			s.tx.scanErr = err
			return
		}
	}
}

func (s *session) Headers(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("eoh", &resp, &err)
	s.queueID(m)
	if s.tx == nil {
		return gomilter.RespContinue, nil
	}
	if resp, err := s.grow(0); resp != gomilter.RespContinue || err != nil {
		return resp, err
	}
	s.scan("\r\n")
	if s.tx.wants.SenderIDPRA {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		s.tx.header = s.tx.checker.Headers(ctx, s.tx.wants, s.conn, s.tx.env, s.tx.headers)
		cancel()
	}
	v := s.tx.pol.AtHeaders(s.transaction(), s.tx.header)
	if !v.Final() {
		return gomilter.RespContinue, nil
	}
	return s.finish(v, nil)
}

// checkTimeout bounds the sender checks of one stage; under Postfix's
// milter_command_timeout (30s), so a slow DNS ends in our 451, not in a
// dropped milter connection.
const checkTimeout = 25 * time.Second

// transaction is the engine's view of the transaction so far.
func (s *session) transaction() policy.Transaction {
	return policy.Transaction{Conn: s.conn, Envelope: s.tx.env, Headers: s.tx.headers, Mail: s.tx.mail, Header: s.tx.header, Received: s.tx.start}
}

func (s *session) BodyChunk(chunk []byte, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("body", &resp, &err)
	// Body chunks get no reply (OptNoBodyReply): what goes wrong here is
	// kept and answered at end of message.
	if s.tx == nil || s.tx.tooBig || s.tx.bodyErr != nil {
		return gomilter.RespContinue, nil
	}
	s.tx.size += int64(len(chunk))
	if s.tx.size > s.tx.pol.Limits.MaxMessageSize {
		// Stop spooling and scanning: the message will be refused.
		s.tx.tooBig = true
		return gomilter.RespContinue, nil
	}
	if s.tx.scanErr == nil {
		if _, err := s.tx.scanner.Write(chunk); err != nil {
			s.tx.scanErr = err
		}
	}
	if _, werr := s.tx.body.Write(chunk); werr != nil {
		s.tx.bodyErr = werr
	}
	return gomilter.RespContinue, nil
}

// grow counts n more bytes of the message and refuses it once it passes
// limits.max_message_size (RFC 3463 5.3.4: message too big for system).
func (s *session) grow(n int) (*gomilter.Response, error) {
	s.tx.size += int64(n)
	if s.tx.tooBig || s.tx.size > s.tx.pol.Limits.MaxMessageSize {
		return s.refuseTooBig()
	}
	return gomilter.RespContinue, nil
}

func (s *session) refuseTooBig() (*gomilter.Response, error) {
	limit := s.tx.pol.Limits.MaxMessageSize
	return s.finish(policy.Verdict{Stage: "size", Direction: s.tx.pol.Direction(s.conn, s.tx.env), Action: policy.Reject,
		Reply:   &policy.Reply{Code: 552, Status: "5.3.4", Text: fmt.Sprintf("Message too big: this gateway accepts at most %d bytes", limit)},
		Reasons: []string{fmt.Sprintf("message passed limits.max_message_size (%d bytes)", limit)}}, nil)
}

func (s *session) EndOfMessage(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("eom", &resp, &err)
	if s.tx == nil {
		// No MAIL FROM was seen on this milter connection (or it was refused):
		// without the envelope nothing can be decided, so the MTA keeps the
		// message and retries rather than accepting it unfiltered.
		s.srv.log.Error("end of message without a transaction; tempfailed", "client_ip", s.conn.ClientIP.String())
		return gomilter.RejectWithCodeAndReason(451, tempfailText)
	}
	s.queueID(m)
	if s.tx.tooBig {
		return s.refuseTooBig()
	}
	if s.tx.bodyErr != nil {
		s.srv.log.Error("cannot spool message body; transaction tempfailed", "error", s.tx.bodyErr.Error(), "queue_id", s.tx.env.QueueID)
		return s.finish(policy.Verdict{Stage: "body", Direction: s.tx.pol.Direction(s.conn, s.tx.env), Action: policy.Tempfail,
			Reply:   &policy.Reply{Code: 451, Status: "4.3.0", Text: "Temporary failure in the secure-email filter; please try again later"},
			Reasons: []string{"spooling the body failed: " + s.tx.bodyErr.Error()}}, nil)
	}
	t := s.transaction()
	res, err := s.tx.scanner.Close()
	if err == nil {
		err = s.tx.scanErr
	}
	if err != nil {
		s.srv.log.Error("classification failed; transaction tempfailed", "queue_id", s.tx.env.QueueID, "error", err.Error())
		return s.finish(policy.Verdict{Stage: policy.StageEOM, Direction: s.tx.pol.Direction(s.conn, s.tx.env), Action: policy.Tempfail,
			Reply:   &policy.Reply{Code: 451, Status: "4.3.0", Text: "Temporary failure in the secure-email filter; please try again later"},
			Reasons: []string{"classification scanner failed: " + err.Error()}}, nil)
	}
	t.Classification, t.RSVPDR, t.Unreadable = res.Classification, res.RSVPDR, res.Unreadable
	s.tx.markings, s.tx.problems = res.Markings, res.Problems
	if s.tx.wants.DKIM || s.tx.wants.DMARC {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		t.Message = s.tx.checker.Message(ctx, s.tx.wants, s.conn, s.tx.env, s.tx.headers, s.tx.mail,
			io.MultiReader(headerBlock(s.tx.raw), s.tx.body.Reader()))
		cancel()
	}
	v := s.tx.pol.AtEndOfMessage(t)
	return s.finish(v, m)
}

func (s *session) Abort(m gomilter.Modifier) error {
	if s.tx != nil {
		s.srv.log.Debug("transaction aborted by the MTA", "queue_id", s.tx.env.QueueID)
	}
	s.endTransaction()
	return nil
}

func (s *session) Cleanup(m gomilter.Modifier) {
	s.endTransaction()
}

func (s *session) queueID(m gomilter.Modifier) {
	if id := m.Get(gomilter.MacroQueueId); id != "" && s.tx != nil {
		s.tx.env.QueueID = id
	}
}

// endTransaction frees the transaction's resources; safe to call twice.
func (s *session) endTransaction() {
	if s.tx == nil {
		return
	}
	if err := s.tx.body.Close(); err != nil {
		s.srv.log.Warn("closing body spool", "error", err.Error())
	}
	s.tx = nil
	s.srv.inflight.Add(-1)
}

// finish applies a final verdict (m is nil before end of message, where no
// changes are allowed), logs it and ends the transaction.
func (s *session) finish(v policy.Verdict, m gomilter.Modifier) (*gomilter.Response, error) {
	defer s.endTransaction()
	resp, applyErr := s.apply(v, m)
	s.logDecision(v, applyErr)
	s.srv.Metrics.Decision(v, time.Since(s.tx.start))
	if applyErr == nil {
		s.srv.Notifier.Send(s.tx.pol, v, s.tx.env, s.tx.headers)
	}
	if applyErr != nil {
		// An edit the MTA cannot take (too large for a milter packet, an
		// action it did not offer) or a warning that cannot be rendered:
		// a logged tempfail, so the MTA keeps the message and the sender
		// retries; never a dropped connection (issue 12 point 9). Should
		// the connection itself be broken, writing this reply fails too and
		// Postfix applies milter_default_action (tempfail).
		return gomilter.RejectWithCodeAndReason(451, tempfailText)
	}
	return resp, nil
}

// quarantineReason is what the MTA records with a held message: the hold's
// own reason (with its release command), or every reason when the verdict
// names none.
func quarantineReason(v policy.Verdict) string {
	if v.HoldReason != "" {
		return v.HoldReason
	}
	return strings.Join(v.Reasons, "; ")
}

// withMTAName returns p with the MTA's host name (macro j) as authserv-id
// and gateway= name when authserv_id was not set (the milter may run on
// another host than the MTA, whose name is the one receivers see), p itself
// otherwise. A j that is not a host name is ignored.
func withMTAName(p *policy.Policy, j string) *policy.Policy {
	if !p.AuthservIDDefault || j == "" || j == p.AuthservID || !hostNameLike(j) {
		return p
	}
	cp := *p
	cp.AuthservID = j
	return &cp
}

// hostNameLike: letters, digits, '-' and '.', at most 253 characters: safe
// to write into a header as a name.
func hostNameLike(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// apply turns a verdict into header edits, the warning, and the MTA response.
func (s *session) apply(v policy.Verdict, m gomilter.Modifier) (*gomilter.Response, error) {
	if m != nil && (v.Action == policy.Accept || v.Action == policy.Quarantine) {
		for _, r := range v.RemoveRcpts {
			if err := m.DeleteRecipient(r); err != nil {
				return nil, fmt.Errorf("removing recipient %s: %w", r, err)
			}
		}
		if err := fitsPacket(v.Edits); err != nil {
			return nil, err
		}
		// With OptHeaderLeadingSpace the MTA writes values exactly as given,
		// without the space it otherwise puts after the colon.
		lead := ""
		if m.Protocol()&gomilter.OptHeaderLeadingSpace != 0 {
			lead = " "
		}
		for _, e := range v.Edits {
			var err error
			switch e.Op {
			case policy.OpDelete:
				err = m.ChangeHeader(e.Index, e.Name, "")
			case policy.OpAdd:
				err = m.AddHeader(e.Name, lead+e.Value)
			default:
				err = fmt.Errorf("unknown header edit %q", e.Op)
			}
			if err != nil {
				return nil, fmt.Errorf("applying %s %s: %w", e.Op, e.Name, err)
			}
		}
		// The verdict's transforms, in its order (the engine decided them).
		for _, tr := range v.Transforms {
			var err error
			switch tr.Kind {
			case policy.TransformWarnWrap, policy.TransformWarnPrepend, policy.TransformWarnHeader:
				err = s.applyWarning(tr, m, lead)
			case policy.TransformDKIMSign:
				err = s.sign(v, tr.Domain, m, lead)
			default:
				err = fmt.Errorf("unknown body transform %q", tr.Kind)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	switch v.Action {
	case policy.Accept:
		return gomilter.RespAccept, nil
	case policy.Quarantine:
		if m == nil {
			return nil, fmt.Errorf("quarantine is only possible at end of message")
		}
		if err := m.Quarantine(clipText(quarantineReason(v), maxReplyText)); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		return gomilter.RespAccept, nil
	case policy.Discard:
		return gomilter.RespDiscard, nil
	case policy.Reject, policy.Tempfail:
		if v.Reply == nil {
			if v.Action == policy.Reject {
				return gomilter.RespReject, nil
			}
			return gomilter.RespTempFail, nil
		}
		return gomilter.RejectWithCodeAndReason(uint16(v.Reply.Code), v.Reply.Status+" "+clipText(v.Reply.Text, maxReplyText))
	}
	return nil, fmt.Errorf("verdict with action %q cannot end a transaction", v.Action)
}

// sign adds the DKIM signatures of the From: domain (G-DKIM) over the
// message as it will leave: after every other header change of ours.
func (s *session) sign(v policy.Verdict, domain string, m gomilter.Modifier, lead string) error {
	signer := s.tx.signers[domain]
	if signer == nil {
		return nil
	}
	final := policy.ApplyEdits(s.tx.raw, v.Edits)
	values, err := signer.Sign(io.MultiReader(headerBlock(final), s.tx.body.Reader()))
	if err != nil {
		return fmt.Errorf("DKIM signing: %w", err)
	}
	for _, val := range values {
		if err := m.InsertHeader(0, "DKIM-Signature", lead+strings.ReplaceAll(val, "\r\n", "\n")); err != nil {
			return fmt.Errorf("adding DKIM-Signature: %w", err)
		}
	}
	s.tx.signed = len(values)
	return nil
}

// maxEditData is the most header name and value bytes one edit may carry:
// a milter packet holds at most 64 KiB (go-milter refuses more, and so does
// Postfix), less the index and the NULs.
const maxEditData = int(gomilter.DataSize64K) - 16

// maxReplyText bounds the text of an SMTP reply and of a quarantine reason:
// they repeat what senders chose (a domain's SPF explanation, addresses),
// and one milter packet holds at most 64 KiB. The full text is in the log.
const maxReplyText = 2000

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// ErrEditTooLarge is wrapped when a header edit does not fit a milter
// packet: the transaction is tempfailed, never the connection dropped.
var ErrEditTooLarge = errors.New("header edit too large for the milter protocol")

func editFits(name, value string) error {
	if n := len(name) + len(value); n > maxEditData {
		return fmt.Errorf("%w: %s is %d bytes, at most %d fit", ErrEditTooLarge, name, n, maxEditData)
	}
	return nil
}

// fitsPacket checks every edit before the first is sent, so that a
// verdict is applied whole or not at all.
func fitsPacket(edits []policy.HeaderEdit) error {
	for _, e := range edits {
		if e.Op == policy.OpDelete {
			continue // sent without a value; Value is only for the log
		}
		if err := editFits(e.Name, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// withoutForgedWarnings drops the client-supplied X-NZ-Secure-Warning
// headers: the verdict deletes them (every header only this gateway
// writes, policy.IsOurHeader), so the warning is rendered as if they were
// not there. A forged one naming this gateway would otherwise make notify
// refuse a second warning (R79) and the session end without a verdict
// (issue 12 point 8). The other forged headers stay in the original a
// wrap attaches, as evidence. Per-name indexes of other headers are
// unchanged.
func withoutForgedWarnings(hs []policy.Header) []policy.Header {
	out := make([]policy.Header, 0, len(hs))
	for _, h := range hs {
		if !strings.EqualFold(strings.TrimRight(h.Name, " \t"), policy.WarningHeader) {
			out = append(out, h)
		}
	}
	return out
}

// applyWarning renders the warning (R76-R80) and applies its header edits,
// then replaces the body: Postfix wants the body replacement in one go after
// every other change.
func (s *session) applyWarning(tr policy.Transform, m gomilter.Modifier, lead string) error {
	res, err := presentWarning(s.tx.pol, tr, withoutForgedWarnings(s.tx.headers), s.tx.body.Reader())
	if err != nil {
		return err
	}
	for _, e := range res.Edits {
		if e.Op == notify.EditDelete {
			continue
		}
		if err := editFits(e.Name, e.Value); err != nil {
			return err
		}
	}
	for _, e := range res.Edits {
		switch e.Op {
		case notify.EditAdd:
			err = m.AddHeader(e.Name, lead+e.Value)
		case notify.EditChange:
			err = m.ChangeHeader(e.Index, e.Name, lead+e.Value)
		case notify.EditDelete:
			err = m.ChangeHeader(e.Index, e.Name, "")
		}
		if err != nil {
			return fmt.Errorf("warning: %s %s: %w", e.Op, e.Name, err)
		}
	}
	if res.Body != nil {
		if err := m.ReplaceBody(res.Body); err != nil {
			return fmt.Errorf("warning: replacing the body: %w", err)
		}
	}
	return nil
}

// logDecision writes the one JSON line per decision (issue: queue ID,
// direction, client, sender, recipients, TLS facts, action, reasons, warning).
func (s *session) logDecision(v policy.Verdict, applyErr error) {
	attrs := []any{
		"queue_id", s.tx.env.QueueID,
		"stage", string(v.Stage),
		"direction", string(v.Direction),
		"client_ip", s.conn.ClientIP.String(),
		"client_name", s.conn.ClientName,
		"helo", s.conn.HELO,
		"daemon", s.conn.Daemon,
		"sender", s.tx.env.From,
		"recipients", s.tx.env.Rcpts,
		"auth", s.tx.env.AuthUser,
		"tls_version", s.conn.TLS.Version,
		"tls_cipher", s.conn.TLS.Cipher,
		"tls_bits", s.conn.TLS.CipherBits,
		"action", string(v.Action),
		"classification", v.Classification,
		"warning_code", v.WarningCode,
		"reasons", v.Reasons,
		"checks", v.Checks,
		"size", s.tx.size,
	}
	if v.Reply != nil {
		attrs = append(attrs, "reply", v.Reply.String())
	}
	if len(s.tx.markings) > 0 {
		attrs = append(attrs, "markings", s.tx.markings)
	}
	if len(s.tx.problems) > 0 {
		attrs = append(attrs, "mime_problems", s.tx.problems)
	}
	if len(v.Unreadable) > 0 {
		// Issue 11: why the classification is only a lower bound.
		attrs = append(attrs, "unreadable", v.Unreadable)
	}
	if len(v.Recipients) > 0 {
		attrs = append(attrs, "recipient_decisions", v.Recipients)
	}
	if v.WarningCode != "" {
		attrs = append(attrs, "warning_mode", v.WarningMode, "warning_severity", v.WarningSeverity)
	}
	if len(v.Transforms) > 0 {
		attrs = append(attrs, "transforms", v.Transforms)
	}
	if len(v.Notices) > 0 {
		attrs = append(attrs, "notices", v.Notices)
	}
	if len(v.Message.DKIM) > 0 || v.Message.DMARC != nil {
		attrs = append(attrs, "dkim", v.Message.DKIM, "dmarc", v.Message.DMARC)
	}
	if s.tx.signed > 0 {
		attrs = append(attrs, "dkim_signatures_added", s.tx.signed)
	}
	if len(v.RemoveRcpts) > 0 {
		attrs = append(attrs, "recipients_removed", v.RemoveRcpts)
	}
	// R113: every breach attempt is an audit event of its own.
	for _, b := range v.Breaches {
		s.srv.log.Warn("audit: classified mail breach attempt", "queue_id", s.tx.env.QueueID, "sender", s.tx.env.From,
			"auth", s.tx.env.AuthUser, "classification", v.Classification, "event", b)
	}
	level := slog.LevelInfo
	if applyErr != nil {
		level = slog.LevelError
		attrs = append(attrs, "error", applyErr.Error())
	}
	s.srv.log.Log(context.Background(), level, "decision", attrs...)
}
