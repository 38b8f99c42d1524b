package notify

import (
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Severity is the grade of a warning: R199 speaks of HARD and SOFT
// warnings, R108 of downgrading to NO warning. What a grade changes in the
// delivered message (for example the warning mode) is the policy's choice.
type Severity string

const (
	SeverityHard Severity = "hard"
	SeveritySoft Severity = "soft"
	SeverityNone Severity = "none" // R108: no warning at all
)

// defaultSeverity is the grade of a warning before any rule: hard (see
// WarningCode.Soft).
func defaultSeverity(w WarningCode) Severity {
	if w.Soft {
		return SeveritySoft
	}
	return SeverityHard
}

// Soften applies the LISTSERVE rule (R199): warnings 002 (unverified
// external sender) and 005 (unverified internal sender) go from HARD to SOFT
// when the message comes from a list server. Other codes keep their grade.
// An unknown code is graded hard: a warning is never lost to a typo.
func Soften(code string, list bool) Severity {
	w, ok := Warning(code)
	if !ok {
		return SeverityHard
	}
	if list && (code == "002" || code == "005") {
		return SeveritySoft
	}
	return defaultSeverity(w)
}

// Grade applies both rules: R199 (Soften) and R108, the WORKSPACE rule,
// which downgrades UNVERIFIED messages (every code shown with Table 2's
// UNVERIFIED MESSAGE text) to NO warning when the sender's domain is on the
// workspace list. R108 as written covers every UNVERIFIED code; the
// earlier, deleted wording of the list (spec line 716: "An email from this
// address will not generate a “spoofed” warning") covered only the spoofing
// warnings 002 and 005, which is what spoofOnly selects.
func Grade(code string, list, workspace, spoofOnly bool) Severity {
	if workspace {
		if w, ok := Warning(code); ok && w.Row == UnverifiedMessage {
			if !spoofOnly || code == "002" || code == "005" {
				return SeverityNone
			}
		}
	}
	return Soften(code, list)
}

// The LISTSERVE test (R199) and the WORKSPACE list (R108) are the engine's
// (policy.ListMarker, policy.Workspace): the engine grades warnings, notify
// renders them.

// ListMarker is policy.ListMarker.
func ListMarker(headers []policy.Header) (marker string, r199 bool, ok bool) {
	return policy.ListMarker(headers)
}

// IsListMail is policy.IsListMail.
func IsListMail(headers []policy.Header) bool { return policy.IsListMail(headers) }

// Workspace is policy.Workspace.
type Workspace = policy.Workspace

// NewWorkspace is policy.NewWorkspace.
func NewWorkspace(entries []string) (*Workspace, error) { return policy.NewWorkspace(entries) }
