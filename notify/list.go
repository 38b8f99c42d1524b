package notify

import (
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// The LISTSERVE test (R199) and the WORKSPACE list (R108) are the engine's
// (policy.ListMarker, policy.Workspace): the engine grades warnings
// (policy's gradeWarning: Verdict.WarningSeverity and WarningMode), notify
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
