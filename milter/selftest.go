package milter

import (
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	nzmessage "github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/selftest"
)

// selftestAnswer ends a self-test scenario message (R19-R21, package
// selftest): nothing of the verdict is carried out (no edits, no notices,
// no hold, nothing learned) and the MTA is told to refuse the message with
// a 550 whose text reports the verdict, for the selftest client to
// compare. A message whose token does not verify is refused too: a
// scenario message is never delivered.
func (s *session) selftestAnswer(v policy.Verdict, scenario string, err error) (*gomilter.Response, error) {
	defer s.endTransaction()
	env := s.tx.Envelope()
	if err != nil {
		s.srv.log.Warn("selftest message refused: its token does not verify", "queue_id", env.QueueID,
			"client_ip", s.conn.ClientIP.String(), "sender", env.From, "error", err.Error())
		return gomilter.RejectWithCodeAndReason(550, "5.7.0 "+clipText(err.Error(), maxReplyText))
	}
	text := selftest.ReplyText(scenario, v)
	s.srv.log.Info("selftest decision (not acted on)", "queue_id", env.QueueID, "scenario", scenario,
		"direction", string(v.Direction), "client_ip", s.conn.ClientIP.String(), "action", string(v.Action),
		"classification", v.Classification, "warning_code", v.WarningCode, "reasons", v.Reasons, "answer", text)
	return gomilter.RejectWithCodeAndReason(550, "5.7.0 "+clipText(text, maxReplyText))
}

// recordPeerAnswer records an answer of a peer gateway to our ping (`selftest
// --peers`, R19, R96-R99): inbound mail to our ping address From: a
// domain whose ping address selftest pings, not refused. Only those
// domains are recorded (bounded: one file each).
func (s *session) recordPeerAnswer(v policy.Verdict) {
	p := s.tx.Policy()
	peers := p.SelftestPeers()
	ping := p.PingAddress()
	if len(peers) == 0 || ping == "" || v.Direction != policy.Inbound || v.Action == policy.Reject || v.Action == policy.Tempfail {
		return
	}
	env := s.tx.Envelope()
	toPing := false
	for _, r := range env.Rcpts {
		toPing = toPing || strings.EqualFold(r, ping)
	}
	if !toPing {
		return
	}
	hs := s.tx.Headers()
	author, ok := nzmessage.Authors(policy.HeaderValues(hs, "From")).Author()
	if !ok {
		return
	}
	for _, peer := range peers {
		if _, d := policy.SplitAddress(peer); d == "" || !strings.EqualFold(d, author.Domain) {
			continue
		}
		subject := ""
		if sv := policy.HeaderValues(hs, "Subject"); len(sv) > 0 {
			subject = clipText(sv[0], 200)
		}
		ct := ""
		if cv := policy.HeaderValues(hs, "Content-Type"); len(cv) > 0 {
			ct = cv[0]
		}
		a := selftest.PeerAnswer{Domain: author.Domain, From: author.Address(), Subject: subject, Signed: selftest.IsSigned(ct), Received: time.Now()}
		// The inbound S/MIME path's own verdict (R81-R82, R98), not the
		// structure: selftest --peers fails an unverified answer.
		switch in := s.tx.SMIMEIn(); {
		case p.SMIME.Mode != policy.SMIMEOn:
			a.SMIME = selftest.SMIMENotChecked
		case in == nil:
			a.SMIME = selftest.SMIMENone
		default:
			var why string
			a.Verified, a.Code, why = p.SMIMEInResult(in)
			a.Detail = clipText(why, 300)
			a.SMIME = selftest.SMIMEUnverified
			if a.Verified {
				a.SMIME = selftest.SMIMEVerified
			}
		}
		if err := selftest.RecordAnswer(p.PeerAnswersDir(), a); err != nil {
			s.srv.log.Error("peer ping answer not recorded", "queue_id", env.QueueID, "from", a.From, "error", err.Error())
			return
		}
		s.srv.log.Info("peer ping answer recorded (selftest --peers)", "queue_id", env.QueueID, "from", a.From, "signed", a.Signed,
			"smime", a.SMIME, "verified", a.Verified, "code", a.Code, "detail", a.Detail)
		return
	}
}
