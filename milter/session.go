package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/notify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// session is the state of one MTA connection (one SMTP connection), which
// may carry several transactions.
type session struct {
	gomilter.NoOpMilter
	srv  *Server
	conn policy.Conn
	mta  string // the MTA's host name (macro j)

	// The current transaction, driven by the one pipeline (issue 13 point
	// 3); tx is nil outside MAIL FROM .. end.
	tx *pipeline.Transaction
	// st is the state tx began with (policy, checker, signers, notifier),
	// held until the transaction ends, across a reload.
	st *state
	// signed is the number of DKIM signatures the current transaction's
	// output added, for the decision log.
	signed int
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
	// The stack was grown at the connection's first read
	// (handoffConn.SetReadDeadline).
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
	st := s.srv.acquire()
	s.st = st // released by endTransaction, also after a panic
	env := policy.Envelope{
		QueueID:  m.Get(gomilter.MacroQueueId),
		From:     gomilter.RemoveAngle(from),
		AuthUser: m.Get(gomilter.MacroAuthAuthen),
	}
	ps := st.State
	ps.Policy = withMTAName(st.Policy, s.mta)
	tx, v, err := pipeline.Begin(ps, s.conn, env, time.Now())
	if err != nil {
		s.endTransaction()
		return nil, err
	}
	s.tx = tx
	s.srv.inflight.Add(1)
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
	s.tx.Rcpt(gomilter.RemoveAngle(rcptTo))
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
	// OptHeaderLeadingSpace: the value keeps the space after the colon,
	// as the message carries it (for DKIM and the output); the pipeline
	// gives the engine the value as a reader sees it. Counted there,
	// refused at end of headers: Postfix is asked not to wait for a reply
	// to each header (OptNoHeaderReply).
	s.tx.Header(name, value)
	return gomilter.RespContinue, nil
}

func (s *session) Headers(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("eoh", &resp, &err)
	s.queueID(m)
	if s.tx == nil {
		return gomilter.RespContinue, nil
	}
	v := s.tx.EndOfHeaders()
	if !v.Final() {
		return gomilter.RespContinue, nil
	}
	return s.finish(v, nil)
}

func (s *session) BodyChunk(chunk []byte, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.guard("body", &resp, &err)
	// Body chunks get no reply (OptNoBodyReply): what goes wrong here is
	// kept by the pipeline and answered at end of message.
	if s.tx != nil {
		s.tx.BodyChunk(chunk)
	}
	return gomilter.RespContinue, nil
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
	v := s.tx.EndOfMessage()
	if err := s.tx.Failure(); err != nil {
		s.srv.log.Error("internal failure; transaction tempfailed", "queue_id", s.tx.Envelope().QueueID, "error", err.Error())
	}
	if sc, present, serr := s.tx.Selftest(time.Now()); present {
		return s.selftestAnswer(v, sc, serr)
	}
	s.recordPeerAnswer(v) // selftest --peers
	return s.finish(v, m)
}

func (s *session) Abort(m gomilter.Modifier) error {
	if s.tx != nil {
		s.srv.log.Debug("transaction aborted by the MTA", "queue_id", s.tx.Envelope().QueueID)
	}
	s.endTransaction()
	return nil
}

func (s *session) Cleanup(m gomilter.Modifier) {
	s.endTransaction()
}

func (s *session) queueID(m gomilter.Modifier) {
	if s.tx != nil {
		s.tx.SetQueueID(m.Get(gomilter.MacroQueueId))
	}
}

// endTransaction frees the transaction's resources; safe to call twice.
func (s *session) endTransaction() {
	if s.st != nil {
		s.st.release()
		s.st = nil
	}
	if s.tx == nil {
		return
	}
	if err := s.tx.Close(); err != nil {
		s.srv.log.Warn("closing body spool", "error", err.Error())
	}
	s.tx, s.signed = nil, 0
	s.srv.inflight.Add(-1)
}

// finish applies a final verdict (m is nil before end of message, where no
// changes are allowed), logs it and ends the transaction.
func (s *session) finish(v policy.Verdict, m gomilter.Modifier) (*gomilter.Response, error) {
	var notifier *Notifier
	if s.st != nil {
		notifier = s.st.notifier
	}
	defer s.endTransaction()
	resp, applyErr := s.apply(v, m)
	s.logDecision(v, applyErr)
	s.srv.Metrics.Decision(v, time.Since(s.tx.Start()))
	if applyErr == nil {
		notifier.Send(s.tx.Policy(), v, s.tx.Envelope(), s.tx.Headers())
		s.tx.Accepted(v) // first contact: known once the MTA took it
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

// apply carries a verdict out: the recipients it removes, then the net
// header edits and the one body replacement of the transform chain (the
// pipeline runs it; the engine chose its steps), then the MTA response.
// Everything is rendered and checked before the first change is sent, so
// a verdict is applied whole or not at all.
func (s *session) apply(v policy.Verdict, m gomilter.Modifier) (*gomilter.Response, error) {
	if m != nil && (v.Action == policy.Accept || v.Action == policy.Quarantine || v.Action == policy.Discard && len(v.Copies) > 0) {
		// Every form rendered first (pipeline.Forms); the main one is this
		// transaction's, the others (issue 14: S/MIME copies, held
		// recipients) are held and submitted before the reply.
		forms, err := s.tx.Forms(v)
		if err != nil {
			return nil, err
		}
		var out *pipeline.Output
		for _, f := range forms {
			if f.Main {
				out = f.Output
			}
		}
		if out != nil {
			if err := fitsPacket(out.Edits); err != nil {
				return nil, err
			}
		}
		removed := v.RemoveRcpts
		if len(v.Copies) > 0 {
			if err := s.carryOut(v, forms); err != nil {
				return nil, err
			}
			for _, c := range v.Copies {
				removed = append(removed[:len(removed):len(removed)], c.Rcpts...)
			}
		}
		for _, r := range removed {
			if err := m.DeleteRecipient(r); err != nil {
				return nil, fmt.Errorf("removing recipient %s: %w", r, err)
			}
		}
		if out == nil {
			return gomilter.RespDiscard, nil
		}
		// With OptHeaderLeadingSpace the MTA writes values exactly as given,
		// without the space it otherwise puts after the colon.
		lead := ""
		if m.Protocol()&gomilter.OptHeaderLeadingSpace != 0 {
			lead = " "
		}
		for _, e := range out.Edits {
			var err error
			switch e.Op {
			case policy.OpDelete:
				err = m.ChangeHeader(e.Index, e.Name, "")
			case policy.OpAdd:
				err = m.AddHeader(e.Name, lead+e.Value)
			case policy.OpChange:
				err = m.ChangeHeader(e.Index, e.Name, lead+e.Value)
			case policy.OpInsert:
				err = m.InsertHeader(e.Index, e.Name, lead+e.Value)
			default:
				err = fmt.Errorf("unknown header edit %q", e.Op)
			}
			if err != nil {
				return nil, fmt.Errorf("applying %s %s: %w", e.Op, e.Name, err)
			}
		}
		// Postfix wants the body replacement in one go after every other
		// change.
		if body := out.Body(); body != nil {
			if err := m.ReplaceBody(body); err != nil {
				return nil, fmt.Errorf("replacing the body: %w", err)
			}
		}
		s.signed = out.Signatures
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

// carryOut puts the held recipients in the hold store and submits the
// extra copies (pipeline.CarryOut) before the milter replies; a failure
// tempfails the whole transaction (nothing lost). The extra copies go
// through the notifier's Submitter: runtime.submit must reach the MTA
// without passing this milter again (README: non_smtpd_milters).
func (s *session) carryOut(v policy.Verdict, forms []pipeline.Form) error {
	var sub notify.Submitter
	if s.st.notifier != nil {
		sub = s.st.notifier.Submitter
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipeline.CheckTimeout)
	defer cancel()
	done, err := s.tx.CarryOut(ctx, forms, sub, s.st.Hold, true)
	env := s.tx.Envelope()
	if err != nil {
		s.srv.log.Error("carrying out the forms of the message failed; tempfailed", "queue_id", env.QueueID, "done", done, "error", err.Error())
		return err
	}
	s.srv.log.Info("forms of the message", "queue_id", env.QueueID, "forms", done, "where", v.FormsSummary(env))
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

// logDecision writes the one JSON line per decision (issue: queue ID,
// direction, client, sender, recipients, TLS facts, action, reasons, warning).
func (s *session) logDecision(v policy.Verdict, applyErr error) {
	env, scan := s.tx.Envelope(), s.tx.Scan()
	// Typed attributes (LogAttrs): no boxing of every value into an
	// interface and back for the one line each transaction writes.
	attrs := make([]slog.Attr, 0, 40)
	// The structured values go in as JSON written here (decisionjson.go)
	// into one buffer; serve's handler (internal/jsonlog) passes them on
	// without reflection, which was half of the line's cost.
	js := (*decisionBufs.Get().(*[]byte))[:0]
	raw := func(write func([]byte) []byte) jsonlog.Raw {
		n := len(js)
		js = write(js)
		return jsonlog.Raw(js[n:len(js):len(js)])
	}
	strs := func(ss []string) jsonlog.Raw {
		return raw(func(b []byte) []byte { return appendJSONStrings(b, ss) })
	}
	rcpts, reasons := strs(env.Rcpts), strs(v.Reasons)
	checks := raw(func(b []byte) []byte { return appendJSONList(b, v.Checks, appendAuthCheck) })
	attrs = append(attrs,
		slog.String("queue_id", env.QueueID),
		slog.String("stage", string(v.Stage)),
		slog.String("direction", string(v.Direction)),
		slog.String("client_ip", s.conn.ClientIP.String()),
		slog.String("client_name", s.conn.ClientName),
		slog.String("helo", s.conn.HELO),
		slog.String("daemon", s.conn.Daemon),
		slog.String("sender", env.From),
		slog.Any("recipients", rcpts),
		slog.String("auth", env.AuthUser),
		slog.String("tls_version", s.conn.TLS.Version),
		slog.String("tls_cipher", s.conn.TLS.Cipher),
		slog.Int("tls_bits", s.conn.TLS.CipherBits),
		slog.String("action", string(v.Action)),
		slog.String("classification", v.Classification),
		slog.String("warning_code", v.WarningCode),
		slog.Any("reasons", reasons),
		slog.Any("checks", checks),
		slog.Int64("size", s.tx.Size()),
	)
	if v.Reply != nil {
		attrs = append(attrs, slog.String("reply", v.Reply.String()))
	}
	if len(scan.Markings) > 0 {
		attrs = append(attrs, slog.Any("markings", raw(func(b []byte) []byte { return appendJSONList(b, scan.Markings, appendMarking) })))
	}
	if len(scan.Problems) > 0 {
		attrs = append(attrs, slog.Any("mime_problems", strs(scan.Problems)))
	}
	if len(v.Unreadable) > 0 {
		// Issue 11: why the classification is only a lower bound.
		attrs = append(attrs, slog.Any("unreadable", strs(v.Unreadable)))
	}
	if len(v.Recipients) > 0 {
		attrs = append(attrs, slog.Any("recipient_decisions", raw(func(b []byte) []byte { return appendJSONList(b, v.Recipients, appendRecipientDecision) })))
	}
	if v.WarningCode != "" {
		attrs = append(attrs, slog.String("warning_mode", string(v.WarningMode)), slog.String("warning_severity", v.WarningSeverity))
	}
	if len(v.Transforms) > 0 {
		attrs = append(attrs, jsonlog.Any("transforms", v.Transforms))
	}
	if len(v.Notices) > 0 {
		attrs = append(attrs, jsonlog.Any("notices", v.Notices))
	}
	if len(v.Message.DKIM) > 0 || v.Message.DMARC != nil {
		dkim := raw(func(b []byte) []byte { return appendJSONList(b, v.Message.DKIM, appendDKIMCheck) })
		dmarc := raw(func(b []byte) []byte { return appendDMARCCheck(b, v.Message.DMARC) })
		attrs = append(attrs, slog.Any("dkim", dkim), slog.Any("dmarc", dmarc))
	}
	if s.signed > 0 {
		attrs = append(attrs, slog.Int("dkim_signatures_added", s.signed))
	}
	if len(v.RemoveRcpts) > 0 {
		attrs = append(attrs, slog.Any("recipients_removed", strs(v.RemoveRcpts)))
	}
	if len(v.Copies) > 0 {
		// Issue 14: where each recipient went (MTA transaction, S/MIME
		// copy, held), also when the transaction itself is discarded.
		attrs = append(attrs, jsonlog.Any("copies", v.Copies), slog.String("forms", v.FormsSummary(env)))
	}
	// R113: every breach attempt is an audit event of its own.
	for _, b := range v.Breaches {
		s.srv.log.Warn("audit: classified mail breach attempt", "queue_id", env.QueueID, "sender", env.From,
			"auth", env.AuthUser, "classification", v.Classification, "event", b)
	}
	level := slog.LevelInfo
	if applyErr != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", applyErr.Error()))
	}
	if h, ok := s.srv.log.Handler().(*jsonlog.Handler); ok {
		// serve's handler: the line is written before this returns and
		// nothing keeps js, so its buffer is used again.
		_ = h.LogAttrs(time.Now(), level, "decision", attrs...)
		if cap(js) <= 64<<10 { // a burst's buffer is not kept
			decisionBufs.Put(&js)
		}
		return
	}
	s.srv.log.LogAttrs(context.Background(), level, "decision", attrs...)
}

// decisionBufs are the buffers of the decision line's JSON values.
var decisionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// stackReserve is about what one inbound transaction needs of the
// session goroutine's stack (the SPF evaluation is the deepest part): the
// stack becomes 16 KiB, and in bench/throughput.sh's inbound profile no
// other growth is left. 24 KiB (a 32 KiB stack) cost twice as much to set
// up a connection. Deeper work (DKIM signing, S/MIME) grows it further
// when it runs.
const stackReserve = 12 << 10

// growStack grows the session goroutine's stack once, at the start of
// its MTA connection (handoffConn.SetReadDeadline), while the stack is
// shallow: go-milter starts every connection on a new goroutine with a
// small stack, and growing it in
// steps deep inside the checks copies and adjusts every frame each time
// (runtime.copystack was about 7% of the milter's CPU in
// bench/throughput.sh, issue 13).
//
//go:noinline
func growStack() {
	var pad [stackReserve]byte
	keepFrame(&pad)
}

// keepFrame keeps growStack's frame from being optimised away. It writes
// nothing shared (growStack runs in every session at once), and pad does
// not escape, so it stays on the stack.
//
//go:noinline
func keepFrame(*[stackReserve]byte) {}
