package notify

import (
	"fmt"
	"strings"
	"time"
)

// FailureParams describe the SECURE DELIVERY FAILURE notice for a message
// the gateway held for a certificate problem and gave up on (Table 1,
// sending column; Table 2 row 1; R57).
type FailureParams struct {
	// Code is the Table 3 code the message was held with (201, 202, 211,
	// 212).
	Code string
	// To are the sender and the sender's postmaster (Table 1), already
	// filtered by the loop rules (R93-R95, policy.ShouldNotify).
	To []string
	// Original is the R77 header information of the held message.
	Original Original
	// Recipients are the addressees it was not delivered to.
	Recipients []string
	// Received is when the gateway received it; Held how long it was
	// retried before the gateway gave up (smime.give_up).
	Received time.Time
	Held     time.Duration
	// Reason says in words why it could not be sent securely.
	Reason string
	Text   TextParams
}

// SecureDeliveryFailure builds the notice that returns a held message
// (Table 2 row 1 with the code the message was held with, R42, R78): from
// postmaster@Domain, Auto-Submitted: auto-generated, the Table 2 text,
// the reason, the recipients not delivered to, and only the original's
// Date, From, To and Subject (R77), never its body.
func (g Generator) SecureDeliveryFailure(p FailureParams) (*Message, error) {
	line, err := Table2Line(SecureDeliveryFailure, p.Code, p.Text)
	if err != nil {
		return nil, err
	}
	if _, ok := Warning(p.Code); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCode, p.Code)
	}
	lines := []string{line, ""}
	why := "The gateway held the message because it could not send it securely"
	if r := oneLine(p.Reason); r != "" {
		why += ": " + strings.TrimSuffix(r, ".")
	}
	lines = append(lines, why+".")
	if p.Held > 0 {
		lines = append(lines, "The gateway kept trying for "+spell(p.Held)+" and has now given up; the message was not sent.")
	}
	if len(p.Recipients) > 0 {
		lines = append(lines, "Not delivered to: "+oneLine(strings.Join(p.Recipients, ", ")))
	}
	if !p.Received.IsZero() {
		lines = append(lines, "Received: "+p.Received.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	if l := oneLine(p.Text.Link); l != "" {
		lines = append(lines, "", LinkIntro+" "+l)
	}
	lines = append(lines, "", "Original message:")
	lines = append(lines, originalLines(p.Original)...)
	t, _ := Table2Entry(SecureDeliveryFailure)
	subject := t.Heading + " [Code: " + p.Code + "]"
	if p.Original.Subject != "" {
		subject += ": " + p.Original.Subject
	}
	return g.build("notice "+p.Code+" failure", p.To, subject, "auto-generated", nil, lines)
}

// spell says a duration in words, to the hour (a day and more) or the
// minute: "73 hours", "45 minutes".
func spell(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	if d >= time.Hour {
		return unit(int64(d/time.Hour), "hour")
	}
	return unit(max(int64(d/time.Minute), 1), "minute")
}
