package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// First contact (issue 17 point 1, spec 000 "Government to Citizen
// communications": "robust controls to prevent information being sent to
// the wrong email address(es)"). Classified mail to a recipient address
// this gateway has never sent classified mail to before is most often a
// new correspondent, and sometimes a wrong one: outbound.first_contact
// logs it or holds it until an administrator confirms the address.
//
// The engine stays pure: which addresses are known is an input
// (Transaction.Known, filled by the pipeline from its store), and the
// addresses to record as known are an output (Verdict.Learn), which the
// pipeline records only once the MTA has accepted the message for them.

// FirstContactMode is outbound.first_contact.
type FirstContactMode string

const (
	FirstContactOff  FirstContactMode = "off"  // not checked, nothing recorded
	FirstContactLog  FirstContactMode = "log"  // logged (an audit line), sent, the address learned
	FirstContactHold FirstContactMode = "hold" // held until an administrator approves the address
)

// FirstContactModes are the values of FirstContactMode.
var FirstContactModes = []FirstContactMode{FirstContactOff, FirstContactLog, FirstContactHold}

// UnmarshalText accepts off, log or hold.
func (m *FirstContactMode) UnmarshalText(text []byte) error {
	return unmarshalEnum(m, "first-contact mode", text, FirstContactModes)
}

// DefaultFirstContactState is where serve keeps the known addresses.
const DefaultFirstContactState = "/var/lib/nzsecure-milter/first-contact"

// DefaultFirstContactMax bounds the known addresses kept (least recently
// used forgotten first).
const DefaultFirstContactMax = 100000

// KnownRecipients says whether this gateway has sent classified mail to an
// address before (the first-contact state). Addresses are given as
// NormalizeAddress returns them.
type KnownRecipients interface {
	Known(addr string) bool
}

// NormalizeAddress is the form an address is known by: the local part as
// written (RFC 5321 section 2.4: it may be case sensitive), the domain in
// lower case and as an A-label (IDNA, message.NormalizeDomain). ok is
// false for an address without a usable domain.
func NormalizeAddress(addr string) (string, bool) {
	addr = strings.TrimSpace(strings.Trim(strings.TrimSpace(addr), "<>"))
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i > 64 {
		return "", false
	}
	local := addr[:i]
	for _, c := range local {
		if c <= ' ' || c == 0x7f {
			return "", false
		}
	}
	d, ok := message.NormalizeDomain(addr[i+1:])
	if !ok {
		return "", false
	}
	return local + "@" + d, true
}

// firstContactClassified: the marking is above UNCLASSIFIED; a marking the
// policy does not rank counts as classified (fail safe).
func (p *Policy) firstContactClassified(class string) bool {
	rank, known := p.Classification.Rank(class)
	return rank > 0 || !known
}

// decideFirstContact applies outbound.first_contact to an outbound message
// the other rules would send. Unclassified mail is never affected; nor are
// recipients in our own domains or already removed.
func (p *Policy) decideFirstContact(v *Verdict, t Transaction) {
	mode := p.Outbound.FirstContact
	if mode == "" || mode == FirstContactOff || !p.firstContactClassified(v.Classification) {
		return
	}
	var external []string
	for _, rcpt := range t.Envelope.Rcpts {
		_, domain, _ := strings.Cut(rcpt, "@")
		if p.IsOurDomain(domain) || slices.Contains(v.RemoveRcpts, rcpt) {
			continue
		}
		external = append(external, rcpt)
	}
	var fresh, learn []string
	for _, rcpt := range external {
		addr, ok := NormalizeAddress(rcpt)
		if !ok {
			addr = rcpt // never known: held or logged as new
		} else {
			learn = append(learn, addr)
		}
		if !ok || t.Known == nil || !t.Known.Known(addr) {
			fresh = append(fresh, addr)
		}
	}
	if len(fresh) == 0 {
		v.Learn = learn
		return
	}
	list := clip(strings.Join(fresh, ", "), 300)
	if mode == FirstContactLog {
		v.Learn = learn
		v.reason("first classified mail (%s) to %s: sent, and the address recorded (outbound.first_contact = log)", v.Classification, list)
		v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to %s: first classified mail to the address, sent (outbound.first_contact = log)", v.Classification, list))
		return
	}
	if t.released(HoldFirstContact) {
		// Not learned: the administrator confirms an address with its own
		// command (the notice names both).
		v.releasedReason(HoldFirstContact, fmt.Sprintf("first classified mail (%s) to %s", v.Classification, list))
		return
	}
	release := p.adminRelease(v, t)
	approve := FirstContactApproveCommand(fresh)
	p.holdForAdmin(v, HoldFirstContact,
		fmt.Sprintf("first classified mail (%s) to %s: held for confirmation (outbound.first_contact = hold); confirm with: %s; then release with: %s", v.Classification, list, approve, release),
		fmt.Sprintf("A %s message from %s is held %s: it is the first classified mail this gateway would send to %s. If the address is right, confirm it with: %s and release the message with: %s", v.Classification, t.Envelope.From, p.adminHeldWhere(v, t), list, approve, release),
		fresh, WarningSecureDeliveryFailure)
	if _, d := SplitAddress(t.Envelope.From); d != "" && p.IsOurDomain(d) {
		// The sender is told too (the notice names both commands; only an
		// administrator can run them). Only a sender in our domains: the
		// notice names the recipient, which must not leave the agency.
		v.Notices = append(v.Notices, Notice{Kind: NoticeHeld, To: t.Envelope.From, Rcpts: fresh, Code: WarningSecureDeliveryFailure,
			Reason: fmt.Sprintf("Your %s message is held: it is the first classified mail sent to %s. Check the address; if it is right, ask your administrator (%s) to confirm it (%s) and release the message (%s).", v.Classification, list, p.Postmaster(), approve, release)})
	}
	v.Breaches = append(v.Breaches, fmt.Sprintf("%s message to %s held: first classified mail to the address (outbound.first_contact = hold)", v.Classification, list))
}

// FirstContactApproveCommand is the command that makes addrs known.
func FirstContactApproveCommand(addrs []string) string {
	return "nzsecure-milter firstcontact approve " + strings.Join(addrs, " ")
}

func init() {
	// Registered here rather than in keys.go's table, so that table keeps
	// its alignment (the keys are documented in contrib/nzsecure-milter.toml
	// all the same).
	keySpecs["outbound.first_contact"] = enumKey(func(p *Policy) *FirstContactMode { return &p.Outbound.FirstContact }, FirstContactModes...)
	keySpecs["outbound.first_contact_state"] = valueKey(func(p *Policy) *string { return &p.Outbound.FirstContactState }, absPath)
	keySpecs["outbound.first_contact_max"] = intKey(func(p *Policy) *int { return &p.Outbound.FirstContactMax }, 1, 10_000_000, "a count from 1 to 10000000")
}
