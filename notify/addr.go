package notify

import "github.com/nzsecure-milter/nzsecure-milter/policy"

// The address helpers are policy's (policy.SplitAddress and friends), one
// copy for the engine's loop rules and notify's generator.

func splitAddress(a string) (local, domain string) { return policy.SplitAddress(a) }
func normDomain(d string) string                   { return policy.NormDomain(d) }
func bareAddress(a string) string                  { return policy.BareAddress(a) }
