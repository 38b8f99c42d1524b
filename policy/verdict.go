package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// TLSInfo is what the MTA says about the client's TLS session, in Postfix's
// macro forms ({tls_version} "TLSv1.3", {cipher}, {cipher_bits}). An empty
// Version means the session is plaintext.
type TLSInfo struct {
	Version    string
	Cipher     string
	CipherBits int
}

// Conn is what is known about the SMTP connection.
type Conn struct {
	ClientIP   netip.Addr
	ClientName string // PTR name as the MTA verified it ("unknown" when none)
	HELO       string
	Daemon     string // Postfix {daemon_name}: which smtpd took the connection
	TLS        TLSInfo
	// MTA is MTAPostfix, MTASendmail or "" (unknown), from the "v" macro
	// (MTAFromVersion): it picks the release command held-mail texts name.
	MTA string
}

// Envelope is the SMTP envelope of one transaction.
type Envelope struct {
	QueueID  string
	From     string // MAIL FROM address without angle brackets; "" is the null sender
	Rcpts    []string
	AuthUser string // SASL login ({auth_authen}); "" when not authenticated
}

// Header is one header field as received (message.Header: the one
// definition, issue 13 point 1).
type Header = message.Header

// Transaction is everything the engine decides on at end of message.
type Transaction struct {
	Conn     Conn
	Envelope Envelope
	Headers  []Header
	// Classification is the highest trigger word found (classify package);
	// "" is taken as UNCLASSIFIED.
	Classification string
	// RSVPDR: the delivery-receipt trigger word was found (R35, R73).
	RSVPDR bool
	// Unreadable lists why the scanner could not read all of the content
	// it would judge (classify.Result.Unreadable); then Classification is
	// only a lower bound and classification.unreadable decides outbound.
	Unreadable []string
	// Received is when the gateway received the message (MAIL FROM), for R100.
	Received time.Time
	// Mail and Header are the sender checks run at MAIL FROM and end of
	// headers (Wants says which).
	Mail    MailChecks
	Header  HeaderChecks
	Message MessageChecks
	// SMIMEIn is what the pipeline found in an inbound S/MIME message
	// (issue 14 point 4); nil when there is none or smime.mode is off.
	SMIMEIn *SMIMEInbound
	// SMIMEOut are the outbound S/MIME facts (pipeline.SMIMEEnv, issue 14).
	SMIMEOut SMIMEOutbound
	// CertAnswer is what the pipeline found in a message to our DCA
	// address (certificate requests by mail, R44); nil when none.
	CertAnswer *CertAnswerFacts
	// Known is the first-contact state (outbound.first_contact): nil
	// counts every address as new.
	Known KnownRecipients
	// Released are the administrator holds (HoldKind) an administrator
	// released this message from (`held release`, adminhold.go): the
	// engine does not hold it again for them.
	Released []string
}

// Direction says which way a message travels through the gateway.
type Direction string

const (
	Inbound  Direction = "inbound"  // from the internet to the agency
	Outbound Direction = "outbound" // from the agency to the internet
)

// Action is what the MTA is told to do with the message.
type Action string

const (
	// Continue: no decision at this stage; the transaction goes on.
	Continue   Action = "continue"
	Accept     Action = "accept"
	Reject     Action = "reject"
	Tempfail   Action = "tempfail"
	Quarantine Action = "quarantine" // Postfix hold queue; released with postsuper -H
	Discard    Action = "discard"
)

// Stage is the SMTP stage a verdict was given at.
type Stage string

const (
	StageMail    Stage = "mail" // MAIL FROM
	StageHeaders Stage = "eoh"  // end of headers
	StageEOM     Stage = "eom"  // end of message
)

// Reply is an SMTP reply with its RFC 3463 enhanced status code.
type Reply struct {
	Code   int    `json:"code"`
	Status string `json:"status"`
	Text   string `json:"text"`
}

func (r Reply) String() string { return fmt.Sprintf("%d %s %s", r.Code, r.Status, r.Text) }

// EditOp is a header change the milter makes at end of message; the
// header-edit types and their application live in package message (issue
// 13 point 1), these names keep the engine's call sites short.
type EditOp = message.EditOp

const (
	OpAdd    = message.OpAdd    // append Name: Value
	OpDelete = message.OpDelete // remove the Index-th (1-based, per name) Name header
	// OpChange replaces the value of the Index-th (1-based, per name) Name
	// header; OpInsert puts Name: Value at position Index of the whole list
	// (0 is the top). The engine's own edits are adds and deletes; the
	// body transforms (a warning, DKIM) also change and insert.
	OpChange = message.OpChange
	OpInsert = message.OpInsert
)

// deleteAll removes every header named name in any case, also when
// written with white space before the colon (RFC 5322 section 4.5.8,
// obs-optional: "Name :" is read as Name by many readers). Each is deleted
// under the name as the MTA passed it, with its index among the headers of
// that exact name, last first so the per-name indexes stay valid; it
// returns how many it removed.
func (v *Verdict) deleteAll(hs []Header, name string) int {
	return v.deleteWhere(hs, name, nil)
}

// deleteWhere is deleteAll for the headers whose value match accepts (all
// when match is nil).
func (v *Verdict) deleteWhere(hs []Header, name string, match func(value string) bool) int {
	hit := func(h Header) bool {
		return sameName(h.Name, name) && (match == nil || match(h.Value))
	}
	// Most messages carry none of the headers deleted: the per-name
	// indexes are counted only when one is there (it is called for each
	// of our headers on every message).
	if !slices.ContainsFunc(hs, hit) {
		return 0
	}
	idx := make([]int, len(hs))
	seen := map[string]int{}
	for i, h := range hs {
		k := strings.ToLower(h.Name)
		seen[k]++
		idx[i] = seen[k]
	}
	n := 0
	for i := len(hs) - 1; i >= 0; i-- {
		if hit(hs[i]) {
			v.Edits = append(v.Edits, HeaderEdit{Op: OpDelete, Name: hs[i].Name, Index: idx[i], Value: hs[i].Value})
			n++
		}
	}
	return n
}

func (v *Verdict) addHeader(name, value string) {
	v.Edits = append(v.Edits, HeaderEdit{Op: OpAdd, Name: name, Value: value})
}

// HeaderEdit is one header change (message.HeaderEdit).
type HeaderEdit = message.HeaderEdit

// Verdict is the engine's answer for one stage.
type Verdict struct {
	Stage       Stage
	Direction   Direction
	Action      Action
	Reply       *Reply // nil: the MTA's own reply for the action
	Edits       []HeaderEdit
	WarningCode string      // Table 3 code, "" when none
	WarningMode WarningMode // how the recipient sees it: wrap, prepend, header ("" none), after grading
	// WarningSeverity is the grade of the warning (SeverityHard, SeveritySoft
	// for list mail R199, SeverityNone for a workspace sender R108).
	WarningSeverity string
	// Transforms are the body transforms to run, in order, on a kept
	// message: the warning, then DKIM signing last (issue 13 point 4).
	Transforms []Transform
	// Copies are the other forms of the message (outbound S/MIME, issue
	// 14): their recipients leave the main transaction (MainRcpts).
	Copies         []Copy
	Classification string
	// Unreadable is the transaction's unreadable list, for the decision
	// log and `check` (issue 11).
	Unreadable []string
	Reasons    []string
	// HoldReason, for a Quarantine, is the reason the MTA records with the
	// held message: the hold's own reason, not every reason of the verdict.
	HoldReason string
	// adminHold is the kind of a Quarantine held for an administrator
	// (holdForAdmin), for adminHoldToStore.
	adminHold HoldKind

	// Recipients is the outbound decision for each envelope recipient (M-OUT).
	Recipients []RecipientDecision
	// RemoveRcpts are recipients taken off a message that goes on to the
	// others (outbound.partial = "split").
	RemoveRcpts []string
	// misdirected says, for recipients removed as misdirected mail, which
	// domain each looks like, for the sender's NDR (issue 17).
	misdirected []string
	// Learn are the recipient addresses (NormalizeAddress form) to record
	// as known once the MTA has accepted the message for them
	// (outbound.first_contact, issue 17); empty unless the verdict accepts
	// classified mail.
	Learn []string
	// Breaches are audit events: attempts to send classified mail where
	// the policy does not allow it (R113). Each is logged on its own line.
	Breaches []string
	// Checks are the sender checks the verdict saw, for logs and `check`.
	Checks []AuthCheck
	// Message are the DKIM and DMARC results, at end of message.
	Message MessageChecks
	// Notices are the messages to generate: receipts, reports, held-mail
	// and ping answers (R56, R73-R74, R96-R99, R110).
	Notices []Notice
}

// RecipientDecision is what the policy allows for one recipient.
type RecipientDecision struct {
	Address  string  `json:"address"`
	Routing  Routing `json:"decision"`
	Allowed  bool    `json:"allowed"`
	Internal bool    `json:"internal"` // in our own domains: never leaves the agency
	Reason   string  `json:"reason"`
}

func (v *Verdict) reason(format string, args ...any) {
	v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...))
}

// refuse sets a final refusal with the given reply; 4xx codes tempfail.
func (v *Verdict) refuse(code int, status, text string) {
	v.Action = Reject
	if code < 500 {
		v.Action = Tempfail
	}
	v.Reply = &Reply{Code: code, Status: status, Text: text}
	v.reason("%s", text)
}

// Final reports whether the verdict ends the transaction.
func (v Verdict) Final() bool { return v.Action != Continue }

// HeaderValues returns the values of every header named name (any case)
// (message.HeaderValues).
func HeaderValues(hs []Header, name string) []string { return message.HeaderValues(hs, name) }

// ApplyEdits returns the header list as the MTA will have it after the
// verdict's edits (message.ApplyEdits).
func ApplyEdits(hs []Header, edits []HeaderEdit) []Header { return message.ApplyEdits(hs, edits) }

// sameName reports whether a header's name (white space before the colon
// ignored) is name, in any case, as strings.EqualFold compares them. An
// ASCII name of another length is not (the usual case, checked first:
// this runs for each of our header names on every header of every
// message); a name with other bytes is compared by EqualFold itself, as
// its folding may change the length (U+017F folds to "s").
func sameName(h, name string) bool {
	if len(h) != len(name) {
		if len(h) < len(name) && isASCII(h) {
			return false
		}
		h = strings.TrimRight(h, " \t")
		if len(h) != len(name) && isASCII(h) {
			return false
		}
	}
	return strings.EqualFold(h, name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
