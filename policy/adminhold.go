package policy

import (
	"slices"
	"strings"
)

// Mail held for an administrator (R56, R110: classified mail, content the
// gateway could not read, a lookalike recipient domain, a first classified
// contact; inbound, DMARC p=quarantine) is held in the MTA's hold queue
// (milter quarantine) and released with postsuper -H. A message released
// from Postfix's hold queue is delivered as it is, without passing the
// milter again: to a peer agency in S/MIME scope it would leave unsigned
// and unencrypted, which R62-R63 forbid ("sign / encrypt all email to
// another Secure Email Agency, with no exceptions"). So with smime.mode on,
// an outbound hold whose recipients include one in S/MIME scope
// (SMIMEScope) is kept by the gateway (a held Copy with Hold set, put in
// pipeline.HoldStore) instead: the whole message, every recipient it still
// has, so that each recipient is in exactly one place and one release
// sends it to all. `nzsecure-milter held release ID` runs it through a
// fresh transaction with Transaction.Released naming the hold: the engine
// does not hold it again for that reason and applies every other rule
// (the S/MIME forms, DKIM, certificate holds).

// HoldKind names why a message is held for an administrator.
type HoldKind = string

const (
	HoldClassified   HoldKind = "classification" // outbound.by_class = hold (R110)
	HoldUnreadable   HoldKind = "unreadable"     // classification.unreadable = hold (issue 11)
	HoldLookalike    HoldKind = "lookalike"      // outbound.lookalike = hold (issue 17)
	HoldFirstContact HoldKind = "first-contact"  // outbound.first_contact = hold (issue 17)
	HoldDMARC        HoldKind = "dmarc"          // inbound DMARC p=quarantine (G-DMARC-IN)
)

// CodeAdminHold is the Code of a held copy for an administrator (Copy.Hold
// says which hold): not a Table 3 code, no SECURE DELIVERY notice is
// based on it.
const CodeAdminHold = "admin"

// HeldReleaseCommand is the command that releases a message the gateway
// holds for an administrator in its own store; it takes the held-mail ID
// or the MTA queue ID the message came with.
func HeldReleaseCommand(queueID string) string {
	return "nzsecure-milter held release " + queueIDOr(queueID)
}

// released: the administrator released t from a hold of kind.
func (t Transaction) released(kind HoldKind) bool { return slices.Contains(t.Released, kind) }

// adminHoldInStore: an administrator hold of v would go to the gateway's
// store rather than the MTA's hold queue: smime.mode is on, the message is
// outbound and one of its recipients is in S/MIME scope.
func (p *Policy) adminHoldInStore(v *Verdict, t Transaction) bool {
	if p.SMIME.Mode != SMIMEOn || v.Direction != Outbound {
		return false
	}
	for _, rcpt := range without(t.Envelope.Rcpts, v.RemoveRcpts) {
		// The domain the MTA delivers to: the one address parser's (a
		// quoted local part may hold an "@"), without trailing dots.
		_, d := SplitAddress(rcpt)
		d = strings.ToLower(strings.TrimRight(d, "."))
		if d == "" || p.IsOurDomain(d) {
			continue
		}
		if in, _ := p.SMIMEScope(d, t.SMIMEOut.Peers[d].HasCerts); in {
			return true
		}
	}
	return false
}

// adminRelease is the release command an administrator hold of v names:
// the gateway's own (HeldReleaseCommand) when the hold goes to its store,
// the MTA's (ReleaseCommand) otherwise.
func (p *Policy) adminRelease(v *Verdict, t Transaction) string {
	if p.adminHoldInStore(v, t) {
		return HeldReleaseCommand(t.Envelope.QueueID)
	}
	return ReleaseCommand(t.Conn.MTA, t.Envelope.QueueID)
}

// adminHeldWhere says where an administrator hold of v keeps the message,
// for the held-mail notice.
func (p *Policy) adminHeldWhere(v *Verdict, t Transaction) string {
	if p.adminHoldInStore(v, t) {
		return "by this gateway (a recipient is in S/MIME scope, R62)"
	}
	return "in the queue"
}

// adminHoldToStore turns an administrator hold that adminHoldInStore
// sends to the gateway's store into one held copy of every recipient the
// message still has, and discards the message from the MTA (R62).
func (p *Policy) adminHoldToStore(v *Verdict, t Transaction) {
	if v.Action != Quarantine || v.adminHold == "" || !p.adminHoldInStore(v, t) {
		return
	}
	rcpts := without(t.Envelope.Rcpts, v.RemoveRcpts)
	v.Copies = append(v.Copies, Copy{Form: FormHeld, Rcpts: rcpts, Code: CodeAdminHold, Hold: v.adminHold, Reason: v.HoldReason})
	v.Action = Discard
	v.reason("held for the administrator (%s) by the gateway, not in the MTA's hold queue: a recipient is in S/MIME scope, and mail released from the MTA's queue would leave unsigned and unencrypted (R62); release with: %s",
		v.adminHold, HeldReleaseCommand(t.Envelope.QueueID))
}

// releasedReason records that the administrator released a hold of kind.
func (v *Verdict) releasedReason(kind HoldKind, what string) {
	v.reason("%s: released by the administrator (%s hold), not held again", what, kind)
}
