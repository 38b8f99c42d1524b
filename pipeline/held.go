package pipeline

import (
	"context"
	"io"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Mail held for a certificate problem (Table 1, sending column: revoked,
// untrusted, expired or unknown-status peer certificate, or no valid
// certificate of our own) is kept by the gateway itself, not in the MTA's
// hold queue: a message released from Postfix's hold queue is delivered as
// it is, without passing the milter again, so it would leave unsigned and
// unencrypted. The gateway keeps the original as received with what it
// needs to run the transaction again; the retry loop runs it through the
// same chain once the certificate problem is gone (R57, "will keep
// trying") and returns it with SECURE DELIVERY FAILURE after
// smime.give_up.

// HeldMessage is what is kept beside the message.
type HeldMessage struct {
	Conn policy.Conn `json:"conn"`
	// Envelope is the original envelope with Rcpts the held recipients
	// only (the others went on).
	Envelope policy.Envelope `json:"envelope"`
	// Domain is the recipient domain whose certificate is the problem, or
	// our sending domain for 211/212.
	Domain string `json:"domain"`
	// Code is the Table 3 code of the SECURE DELIVERY DELAYED notice
	// (201, 202, 211, 212); Reason says why in words.
	Code   string `json:"code"`
	Reason string `json:"reason"`
	// Received is when the gateway received the message; give-up counts
	// from it.
	Received time.Time `json:"received"`
	// AdminHold is set when the message is held for an administrator
	// (policy.HoldKind: R110 classification, unreadable content, lookalike
	// domain, first contact), not for a certificate problem: kept here
	// because a recipient is in S/MIME scope (R62). Only `held release`
	// sends it; the retry loop leaves it alone and never gives it up.
	AdminHold string `json:"admin_hold,omitempty"`
	// Released are the administrator holds the message was already
	// released from (policy.Transaction.Released): a re-run does not
	// hold it again for them.
	Released []string `json:"released,omitempty"`
}

// HoldStore keeps held messages. Put must have the message on stable
// storage when it returns nil: the MTA is then told the held recipients
// are taken care of.
type HoldStore interface {
	Put(ctx context.Context, h HeldMessage, msg io.Reader) (id string, err error)
}
