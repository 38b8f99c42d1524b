package notify

import "github.com/nzsecure-milter/nzsecure-milter/policy"

// The loop and postmaster rules (R93-R95) are the engine's: it filters a
// verdict's notices before returning it (policy.ShouldNotify); notify only
// applies the rate limit. These names stay for notify's callers.

// NotifyContext is policy.NotifyContext.
type NotifyContext = policy.NotifyContext

// Reasons ShouldNotify gives for not notifying.
const (
	ReasonNullSender    = policy.ReasonNullSender
	ReasonFromSystem    = policy.ReasonFromSystem
	ReasonAutoSubmitted = policy.ReasonAutoSubmitted
	ReasonReport        = policy.ReasonReport
	ReasonNoRecipient   = policy.ReasonNoRecipient
	ReasonSenderPM      = policy.ReasonSenderPM
	ReasonListSender    = policy.ReasonListSender
)

// ShouldNotify is policy.ShouldNotify.
func ShouldNotify(origFrom, envelopeFrom string, c NotifyContext) (ok bool, reason string) {
	return policy.ShouldNotify(origFrom, envelopeFrom, c)
}
