package milter

import (
	gomilter "github.com/d--j/go-milter"

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
