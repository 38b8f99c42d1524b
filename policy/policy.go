// Package policy holds the policy file (profiles sge, securemail, seemail and
// every key that overrides them) and the decision engine: pure functions from
// plain Go values (connection facts, envelope, headers, check results) to a
// Verdict. The milter, the `check` subcommand and the tests all call the same
// functions, so what `check` prints is what `serve` does.
package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Profile names (REQUIREMENTS.md, "Profiles").
const (
	ProfileSGE        = "sge"        // Secure Government Email framework (current, default)
	ProfileSecureMail = "securemail" // SecMx 2007 draft + 2005 SecureMail
	ProfileSEEMail    = "seemail"    // 2005 SEEMail gateway requirements
)

// TLS versions in the form Postfix's {tls_version} macro uses.
var tlsVersionRank = map[string]int{
	"SSLv2": 1, "SSLv3": 2, "TLSv1": 3, "TLSv1.1": 4, "TLSv1.2": 5, "TLSv1.3": 6,
}

// minTLSRank maps the policy's inbound.min_tls values to tlsVersionRank.
// "none" means plaintext is allowed.
var minTLSRank = map[string]int{"none": 0, "1.0": 3, "1.1": 4, "1.2": 5, "1.3": 6}

// Policy is a loaded, validated policy: the profile's defaults with every key
// of the file (and every --set override) applied.
type Policy struct {
	// Profile selects the defaults: sge, securemail or seemail.
	Profile string
	// Domains are our mail domains (R66: outbound From: must be one of them).
	Domains []string
	// InternalNetworks: clients in these networks are treated as outbound.
	InternalNetworks []netip.Prefix
	// OutboundDaemons: values of Postfix's {daemon_name} macro that mark an
	// smtpd as the submission service (outbound), e.g. "ORIGINATING".
	OutboundDaemons []string
	// AuthservID names this gateway in headers it writes (RFC 8601 authserv-id).
	AuthservID string
	// AuthservIDDefault: authserv_id was not set and AuthservID is this
	// host's name; the milter then uses the MTA's own name (macro j), the
	// name the gateway is known by, when the MTA sends it.
	AuthservIDDefault bool
	// RecordTimes adds X-NZ-Secure-Gateway with the time the gateway
	// received the message (R100).
	RecordTimes bool

	Limits         LimitsPolicy
	Inbound        InboundPolicy
	Classification ClassificationPolicy
	Notify         NotifyPolicy
	DKIM           DKIMPolicy
	MSEC           MSECPolicy
	Outbound       OutboundPolicy
	TLSPolicy      TLSPolicyPolicy
	SMIME          SMIMEPolicy
	Lists          ListsPolicy // accredited lists read from LDAP (R55, R108)

	// Runtime is how the daemons run (where they listen, what they log,
	// which resolver, how generated mail is submitted), apart from the
	// rules above, which decide what happens to a message.
	Runtime Runtime

	// derived holds what is computed from the keys once per load (Parse),
	// not per transaction; nil in a Policy built by hand.
	derived *derived

	// Source is where the policy came from (a path or "embedded default").
	Source string
	// Warnings are what lint reports about a valid policy that is likely
	// wrong (e.g. internal_networks covering the internet); they do not
	// stop it loading.
	Warnings Problems
}

// LimitsPolicy bounds what one transaction may use.
type LimitsPolicy struct {
	// MaxMessageSize (bytes, headers + body): larger messages get 552 5.3.4.
	MaxMessageSize int64
	// MemorySpool (bytes): a message body is kept in memory up to this size and
	// spilled to a temporary file above it.
	MemorySpool int64
	// SpoolDir is where spilled bodies go ("" = the system temporary directory).
	SpoolDir string
}

// InboundPolicy holds the rules for mail from the internet.
type InboundPolicy struct {
	// MinTLS is the lowest TLS version accepted inbound: "none" (plaintext
	// allowed), "1.0", "1.1", "1.2" or "1.3" (M-RCV-TLS, G-TLS).
	MinTLS string
	// SPF is ModeOff, ModeTag (evaluate and record) or ModeEnforce
	// (M-RCV-SPF: refuse fail and permerror, tempfail temperror).
	SPF Mode
	// SenderID is ModeOff, ModeTag or ModeEnforce (M-RCV-SID, on the PRA).
	SenderID Mode
	// DKIM is ModeOff or ModeTag: verify every signature and record it.
	DKIM Mode
	// DMARC is ModeOff, ModeTag or ModeEnforce (G-DMARC-IN).
	DMARC Mode
	// SecureMailReceiver makes this gateway a SecureMail receiver: M-SEC
	// applies to every sender.
	SecureMailReceiver bool
	// SecureMailSenders applies M-SEC to apparent SecureMail senders, whose
	// domain's left-most label is "securemail" (M-RCV-SM).
	SecureMailSenders bool
	// WarningMode: how a recipient sees a warning (R76-R80): WarnWrap,
	// WarnPrepend or WarnHeader.
	WarningMode WarningMode
	// WarningLink, when set, is appended to warnings (R78); "{code}" is
	// replaced by the warning code.
	WarningLink string
	// Unverified: UnverifiedWarn or UnverifiedDelete unverified messages
	// without X-NZ-Secure-email (R76, an agency decision).
	Unverified UnverifiedAction
	// Lookalike: InboundLookalikeWarn warns mail whose From: domain looks
	// like one of ours (005) or a secure-list domain (002) without being
	// it, verified or not: a registered lookalike can pass SPF and DKIM.
	Lookalike InboundLookalikeAction
	// TrustedLists are list-server domains whose mail gets no 002/005
	// warning (R108, the WORKSPACE rule).
	TrustedLists []string
}

// DKIMPolicy configures outbound signing (G-DKIM).
type DKIMPolicy struct {
	// Keys are "domain:selector:/path/to/key.pem"; a domain with several
	// keys (RSA and Ed25519) gets several signatures.
	Keys []DKIMKey
	// Headers and Oversign override the default signed and oversigned
	// header lists (empty: the defaults, From oversigned).
	Headers  []string
	Oversign []string
}

// DKIMKey is one signing key.
type DKIMKey struct {
	Domain, Selector, File string
}

// NotifyPolicy configures the messages the gateway generates (R42, R56,
// R73-R74, R92-R99).
type NotifyPolicy struct {
	// Admin receives held-mail notices; default postmaster@ the first domain.
	Admin string
	// PingAddress is answered by the ping responder; default ping@ the
	// first domain; "off" turns it off.
	PingAddress string
	// How notices reach the MTA is Runtime.Submit.
	// RateCount notices per recipient and code within RateWindow (R95).
	RateCount  int
	RateWindow time.Duration
	// Agencies are listed in the ping answer as known secure agencies.
	Agencies []string
}

// ClassificationPolicy: which trigger words exist and how they rank (R29-R35,
// R109, R114), and whether attachments are scanned (R34).
type ClassificationPolicy struct {
	// Levels maps each classification word to its rank; the highest found
	// decides. UNCLASSIFIED is rank 0.
	Levels map[string]int
	// ScanAttachments scans text-like attachments too (R34; off by default).
	ScanAttachments bool
	// Unreadable decides outbound mail whose content the scanner could not
	// read in full (classify.Result.Unreadable): UnreadableHold (the
	// default in every profile), UnreadableRefuse or UnreadableAccept.
	// Fail safe (issue 11): such mail is never tagged compliant.
	Unreadable UnreadableAction
}

// Rank returns a word's rank and whether the policy knows it.
func (c ClassificationPolicy) Rank(word string) (int, bool) {
	r, ok := c.Levels[word]
	return r, ok
}

// MSECPolicy is the minimum cryptography of M-SEC: "the sender's TLS
// connection does not exist or does not meet the government's minimum
// cryptography standards" (2007: DH, AES-256, SHA-1; now TLS 1.2+, forward
// secrecy, AEAD).
type MSECPolicy struct {
	MinTLS         string // "1.2" or "1.3"
	MinCipherBits  int
	ForwardSecrecy bool // (EC)DHE key exchange (TLS 1.3 always)
	AEAD           bool // AES-GCM, AES-CCM or ChaCha20-Poly1305
}

// OutboundPolicy holds the rules for mail from the agency.
type OutboundPolicy struct {
	// TagSecureEmail adds the X-NZ-Secure-email header to compliant outbound
	// mail (R60). Client-supplied copies are removed whatever this says.
	TagSecureEmail bool
	// SEEMailVersion, when set, is added as X-SEEMail-Version (R61).
	SEEMailVersion string

	// Secure-domain lists (M-OUT, R111-R112, R115). Entries are domains or
	// "*.suffix" wildcards; an entry "file:/path" reads one domain per line.
	SecureDomains     DomainSet // govt.nz-wide and other TLS-enforced secure domains
	SEEMailDomains    DomainSet // the SEEMail accredited gateway list
	SecureMailDomains DomainSet // the SecureMail accredited gateway list
	Exceptions        DomainSet // agency exceptions

	// ByClass maps a classification word to its routing decision.
	ByClass map[string]Routing
	// Partial says what to do when only some recipients may receive a
	// classified message: PartialSplit (remove the others and tell the
	// sender) or PartialRefuse (refuse the whole message).
	Partial PartialAction
	// RouteHeader adds X-NZ-Secure-Route: tls to mail that may leave only
	// over TLS, for milter_header_checks to route to a TLS-only transport.
	RouteHeader bool
	// Lookalike is what happens to mail, classified or not, to a recipient
	// domain that looks like one of ours or an exact secure-list entry
	// without being it (issue 17, spec 000 Government to Citizen).
	Lookalike LookalikeAction
	// LookalikeAllow lists correspondents never taken for lookalikes,
	// inbound or outbound: a real organisation whose name happens to be
	// close to ours or to a secure-list domain (a wildcard covers the
	// hosts below it).
	LookalikeAllow DomainSet
	// FirstContact is what happens to classified mail to a recipient
	// address this gateway has never sent classified mail to (issue 17):
	// FirstContactOff (the default), FirstContactLog or FirstContactHold.
	FirstContact FirstContactMode
	// FirstContactState is the file serve keeps the known addresses in
	// (outbound.first_contact_state), FirstContactMax how many it keeps.
	FirstContactState string
	FirstContactMax   int
}

// Routing is what a classification allows outbound (M-OUT).
type Routing string

const (
	BestEffort    Routing = "best-effort"    // any recipient
	SecureOnly    Routing = "secure-only"    // secure, SEEMail, SecureMail lists or exceptions
	SEEMailOnly   Routing = "seemail-only"   // SEEMail list or exceptions (R112)
	ExceptionOnly Routing = "exception-only" // exceptions only (sge: G-DLP)
	Hold          Routing = "hold"           // held for an administrator (R110)
)

// TLSPolicyPolicy configures `nzsecure-milter tlspolicy`, the socketmap
// service for Postfix's smtp_tls_policy_maps (M-SEC-OUT, G-MTASTS).
// Where it listens is Runtime.TLSPolicyListen.
type TLSPolicyPolicy struct {
	// Level for domains on the secure lists: TLSEncrypt (TLS required) or
	// TLSSecure (TLS required and the certificate verified).
	Level TLSLevel
	// MinTLS is the lowest protocol version required: "1.2" or "1.3".
	MinTLS string
	// MTASTS turns on RFC 8461 policy discovery for every other domain.
	MTASTS bool
	// Exceptions: also require TLS towards outbound.exceptions domains.
	Exceptions bool
}

// Environment describes the policy environment the profile implements, for
// `version` and the ping answer (R96-R99).
func (p *Policy) Environment() string {
	switch p.Profile {
	case ProfileSecureMail:
		return "SecureMail (NZ Government SecMx implementation draft v2, 2007)"
	case ProfileSEEMail:
		return "SEEMail (New Zealand Secure Email Requirements v1.0, 2005)"
	default:
		return "SGE (All of Government Secure Email Common Implementation Framework v1.0)"
	}
}

// IsOurDomain reports whether domain (any case) is one of p.Domains.
func (p *Policy) IsOurDomain(domain string) bool {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	for _, d := range p.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

// IsInternal reports whether ip is in one of the internal networks.
func (p *Policy) IsInternal(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.InternalNetworks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Summary is the one-line description `lint` prints for a valid policy.
func (p *Policy) Summary() string {
	return fmt.Sprintf("profile %s, %d domain(s), %d internal network(s), inbound min TLS %s, milter %s",
		p.Profile, len(p.Domains), len(p.InternalNetworks), p.Inbound.MinTLS, p.Runtime.Listen.Milter)
}
