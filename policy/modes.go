package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownValue is wrapped by every UnmarshalText error of the policy's
// enumerated types: the text is none of the type's values.
var ErrUnknownValue = errors.New("unknown value")

// Mode is how a sender check runs: inbound.spf, inbound.senderid,
// inbound.dkim and inbound.dmarc (M-RCV-SPF, M-RCV-SID, G-DKIM, G-DMARC-IN).
type Mode string

const (
	ModeOff     Mode = "off"     // not evaluated (no DNS lookup)
	ModeTag     Mode = "tag"     // evaluated and recorded in Authentication-Results
	ModeEnforce Mode = "enforce" // evaluated; a failing sender is refused
)

// Modes are the values of Mode, in the order the policy file documents them.
var Modes = []Mode{ModeOff, ModeTag, ModeEnforce}

// UnmarshalText accepts off, tag or enforce.
func (m *Mode) UnmarshalText(text []byte) error { return unmarshalEnum(m, "mode", text, Modes) }

// WarningMode is how a recipient sees a warning, inbound.warning_mode
// (R76-R80).
type WarningMode string

const (
	WarnWrap    WarningMode = "wrap"    // the original attached to a warning message (R79)
	WarnPrepend WarningMode = "prepend" // the warning text put before the body
	WarnHeader  WarningMode = "header"  // only a header (and the Subject tag)
)

// WarningModes are the values of WarningMode.
var WarningModes = []WarningMode{WarnWrap, WarnPrepend, WarnHeader}

// UnmarshalText accepts wrap, prepend or header.
func (m *WarningMode) UnmarshalText(text []byte) error {
	return unmarshalEnum(m, "warning mode", text, WarningModes)
}

// UnverifiedAction is what happens to unverified inbound mail without
// X-NZ-Secure-email, inbound.unverified (R76, an agency decision).
type UnverifiedAction string

const (
	UnverifiedWarn   UnverifiedAction = "warn"   // delivered with a warning
	UnverifiedDelete UnverifiedAction = "delete" // discarded
)

// UnverifiedActions are the values of UnverifiedAction.
var UnverifiedActions = []UnverifiedAction{UnverifiedWarn, UnverifiedDelete}

// UnmarshalText accepts warn or delete.
func (a *UnverifiedAction) UnmarshalText(text []byte) error {
	return unmarshalEnum(a, "unverified action", text, UnverifiedActions)
}

// PartialAction is what happens when only some recipients may receive a
// classified message, outbound.partial (M-OUT).
type PartialAction string

const (
	PartialSplit  PartialAction = "split"  // remove the others and tell the sender
	PartialRefuse PartialAction = "refuse" // refuse the whole message
)

// LookalikeAction is what outbound.lookalike does with a recipient whose
// domain looks like one of ours or a secure-list domain (issue 17).
type LookalikeAction string

const (
	LookalikeOff    LookalikeAction = "off"    // not checked
	LookalikeHold   LookalikeAction = "hold"   // the whole message held for an administrator
	LookalikeRefuse LookalikeAction = "refuse" // the recipient refused (split per outbound.partial)
)

// InboundLookalikeAction is what inbound.lookalike does with mail whose
// From: domain looks like one of ours or a secure-list domain without
// being it (issue 17's detector applied to the author, issue 12).
type InboundLookalikeAction string

const (
	InboundLookalikeWarn InboundLookalikeAction = "warn" // warning 005 (ours) or 002 (a participating agency)
	InboundLookalikeOff  InboundLookalikeAction = "off"  // not checked
)

// InboundLookalikeActions are the values of InboundLookalikeAction.
var InboundLookalikeActions = []InboundLookalikeAction{InboundLookalikeWarn, InboundLookalikeOff}

// UnmarshalText accepts warn or off.
func (a *InboundLookalikeAction) UnmarshalText(text []byte) error {
	return unmarshalEnum(a, "inbound lookalike action", text, InboundLookalikeActions)
}

// LookalikeActions are the values of LookalikeAction.
var LookalikeActions = []LookalikeAction{LookalikeOff, LookalikeHold, LookalikeRefuse}

// PartialActions are the values of PartialAction.
var PartialActions = []PartialAction{PartialSplit, PartialRefuse}

// UnmarshalText accepts split or refuse.
func (a *PartialAction) UnmarshalText(text []byte) error {
	return unmarshalEnum(a, "partial action", text, PartialActions)
}

// UnreadableAction decides outbound mail whose content the scanner could
// not read in full, classification.unreadable (issue 11, fail safe).
type UnreadableAction string

// classification.unreadable values.
const (
	UnreadableHold   UnreadableAction = "hold"   // quarantined for an administrator, like R110
	UnreadableRefuse UnreadableAction = "refuse" // 550 to the sender
	UnreadableAccept UnreadableAction = "accept" // routed on what could be read, never tagged compliant
)

// UnreadableActions are the values of UnreadableAction.
var UnreadableActions = []UnreadableAction{UnreadableHold, UnreadableRefuse, UnreadableAccept}

// UnmarshalText accepts hold, refuse or accept.
func (a *UnreadableAction) UnmarshalText(text []byte) error {
	return unmarshalEnum(a, "unreadable action", text, UnreadableActions)
}

// TLSLevel is the Postfix TLS security level tlspolicy.level asks for
// towards domains on the secure lists (M-SEC-OUT).
type TLSLevel string

const (
	TLSEncrypt TLSLevel = "encrypt" // TLS required
	TLSSecure  TLSLevel = "secure"  // TLS required and the certificate verified
)

// TLSLevels are the values of TLSLevel.
var TLSLevels = []TLSLevel{TLSEncrypt, TLSSecure}

// UnmarshalText accepts encrypt or secure.
func (l *TLSLevel) UnmarshalText(text []byte) error {
	return unmarshalEnum(l, "TLS level", text, TLSLevels)
}

// PingOff as notify.ping_address turns the ping responder off (R96).
const PingOff = "off"

// Routings are the values of Routing.
var Routings = []Routing{BestEffort, SecureOnly, SEEMailOnly, ExceptionOnly, Hold}

// UnmarshalText accepts best-effort, secure-only, seemail-only,
// exception-only or hold.
func (r *Routing) UnmarshalText(text []byte) error {
	return unmarshalEnum(r, "routing", text, Routings)
}

// unmarshalEnum sets *dst to text when it is one of allowed (exactly: the
// policy file's values are lower case), else reports every allowed value.
func unmarshalEnum[T ~string](dst *T, kind string, text []byte, allowed []T) error {
	for _, a := range allowed {
		if string(a) == string(text) {
			*dst = a
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not a %s; want one of %s", ErrUnknownValue, text, kind, quoteAll(allowed))
}

func quoteAll[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", string(v))
	}
	return strings.Join(q, ", ")
}
