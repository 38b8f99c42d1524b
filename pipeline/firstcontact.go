package pipeline

import "github.com/nzsecure-milter/nzsecure-milter/policy"

// KnownStore is the first-contact state as the pipeline uses it
// (*firstcontact.Store): the engine asks Known, Accepted adds.
type KnownStore interface {
	policy.KnownRecipients
	Add(addrs ...string)
}

// Accepted records the verdict's recipients as known (outbound.first_contact,
// issue 17). The caller calls it only once the MTA has taken the verdict
// (the milter, after the accept was applied); a held, refused or failed
// message teaches nothing, and neither does `check`.
func (t *Transaction) Accepted(v policy.Verdict) {
	if v.Action != policy.Accept || len(v.Learn) == 0 || t.st.Known == nil {
		return
	}
	t.st.Known.Add(v.Learn...)
}
