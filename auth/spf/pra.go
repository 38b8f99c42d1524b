package spf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// Header is one header field of a message, in message order
// (message.Header, the gateway's one header type).
type Header = message.Header

// ErrNoPRA reports a message whose Purported Responsible Address cannot be
// determined: RFC 4407 section 2 step 6, "the message is ill-formed".
var ErrNoPRA = errors.New("spf: no purported responsible address")

// PRA determines the Purported Responsible Address of a message from its
// header fields, in order, by the algorithm of RFC 4407 section 2. It
// returns the address (local@domain) and the name of the field it came
// from, or an error wrapping ErrNoPRA.
func PRA(headers []Header) (addr, field string, err error) {
	nonEmpty := func(name string) []int {
		var idx []int
		for i, h := range headers {
			if strings.EqualFold(strings.TrimSpace(h.Name), name) && strings.TrimSpace(h.Value) != "" {
				idx = append(idx, i)
			}
		}
		return idx
	}
	resentSender, resentFrom := nonEmpty("Resent-Sender"), nonEmpty("Resent-From")

	// Step 1: the first non-empty Resent-Sender, unless it is preceded by
	// a non-empty Resent-From with a Received or Return-Path field between
	// the two: that Resent-From starts a newer Resent block than the
	// Resent-Sender, so continue with step 2.
	if len(resentSender) > 0 {
		rs := resentSender[0]
		if len(resentFrom) > 0 && resentFrom[0] < rs && traceBetween(headers, resentFrom[0], rs) {
			return selectSingle(headers, resentFrom[0], "step 2 (Resent-Sender of an older block)")
		}
		return selectSingle(headers, rs, "step 1")
	}
	// Step 2: the first non-empty Resent-From. New Resent blocks are added
	// at the top (RFC 2822 section 3.6.6), so with several blocks the first
	// one is used.
	if len(resentFrom) > 0 {
		return selectSingle(headers, resentFrom[0], "step 2")
	}
	// Step 3: all non-empty Sender fields; exactly one is used, several
	// make the message ill-formed.
	switch senders := nonEmpty("Sender"); len(senders) {
	case 0:
	case 1:
		return selectSingle(headers, senders[0], "step 3")
	default:
		return "", "", fmt.Errorf("%w: %d Sender fields (RFC 4407 section 2 step 3)", ErrNoPRA, len(senders))
	}
	// Step 4: all non-empty From fields; exactly one is used.
	switch froms := nonEmpty("From"); len(froms) {
	case 1:
		return selectSingle(headers, froms[0], "step 4")
	case 0:
		return "", "", fmt.Errorf("%w: no Resent-Sender, Resent-From, Sender or From field (RFC 4407 section 2 step 4)", ErrNoPRA)
	default:
		return "", "", fmt.Errorf("%w: %d From fields (RFC 4407 section 2 step 4)", ErrNoPRA, len(froms))
	}
}

// traceBetween reports whether a Received or Return-Path field lies
// strictly between positions i and j.
func traceBetween(headers []Header, i, j int) bool {
	for _, h := range headers[i+1 : j] {
		n := strings.TrimSpace(h.Name)
		if strings.EqualFold(n, "Received") || strings.EqualFold(n, "Return-Path") {
			return true
		}
	}
	return false
}

// selectSingle is step 5 of RFC 4407 section 2: the selected field must
// hold exactly one well-formed mailbox with a domain, or the message is
// ill-formed (step 6).
func selectSingle(headers []Header, i int, step string) (string, string, error) {
	h := headers[i]
	name := strings.TrimSpace(h.Name)
	// The gateway's one address parser (message.Mailboxes, issue 12
	// point 1, issue 13): the PRA is the mailbox the DMARC and warning
	// checks read in the same field, display names in RFC 2047 words of
	// any charset included; its domain is normalised (A-labels, lower
	// case), as DNS is asked.
	r := message.Mailboxes(h.Value)
	switch r.Status {
	case message.StatusOK:
		return r.Authors[0].Address(), name, nil
	case message.StatusMultiple:
		return "", "", fmt.Errorf("%w: %s field has %d mailboxes (RFC 4407 section 2 %s, step 5)", ErrNoPRA, name, len(r.Authors), step)
	}
	why := strings.Replace(r.Problem, "From:", name+":", 1)
	if why == "" {
		why = "no mailbox"
	}
	return "", "", fmt.Errorf("%w: %s field is malformed (RFC 4407 section 2 %s, step 5): %s", ErrNoPRA, name, step, why)
}
