package policy

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// AuthCheck is one SPF-family evaluation (SPF or Sender ID) as plain values;
// the checks package fills it from auth/spf.
type AuthCheck struct {
	Result      CheckResult `json:"result"` // pass fail softfail neutral none temperror permerror
	Scope       string      `json:"scope"`  // mfrom, helo, pra
	Identity    string      `json:"identity"`
	Domain      string      `json:"domain"`
	Explanation string      `json:"explanation,omitempty"` // the domain's exp= text, for fail
	// RecordFound: the domain published a record for this scope.
	RecordFound bool `json:"record_found"`
	// AllQualifier is the qualifier of the record's terminal "all" ("-",
	// "~", "?", "+"; "" when none): M-SEC wants "-all".
	AllQualifier string `json:"all_qualifier,omitempty"`
	Detail       string `json:"detail,omitempty"` // error text for permerror/temperror
	// Field is the header the PRA came from (Sender ID): from, sender,
	// resent-from, resent-sender.
	Field string `json:"field,omitempty"`
	// OtherScopeRecord (Sender ID): the domain publishes an spf2.0 record,
	// but not for this scope (e.g. "spf2.0/pra ... -all" alone at the mfrom
	// check). It is still the domain's Sender ID record (M-SEC).
	OtherScopeRecord bool `json:"other_scope_record,omitempty"`
	// SenderIDSame (SPF of MAIL FROM): no record on the evaluation's way
	// was an spf2.0 one, so Sender ID of the same identity has this very
	// outcome (spf.Outcome.SenderIDSame). Not logged: it describes the
	// evaluation, not the sender.
	SenderIDSame bool `json:"-"`
}

// CheckResult is the result of a sender check: SPF and Sender ID (RFC 7208
// section 2.6, RFC 4406), DKIM (RFC 6376 section 3.9, with "policy", RFC
// 8601 section 2.7.1) and DMARC (RFC 7489 section 11.2).
type CheckResult string

// Results of the sender checks.
const (
	ResultPass      CheckResult = "pass"
	ResultFail      CheckResult = "fail"
	ResultSoftFail  CheckResult = "softfail"
	ResultNeutral   CheckResult = "neutral"
	ResultNone      CheckResult = "none"
	ResultTempError CheckResult = "temperror"
	ResultPermError CheckResult = "permerror"
	ResultPolicy    CheckResult = "policy" // DKIM: valid, but not acceptable to the verifier
)

// CheckResults are the values of CheckResult.
var CheckResults = []CheckResult{ResultPass, ResultFail, ResultSoftFail, ResultNeutral, ResultNone, ResultTempError, ResultPermError, ResultPolicy}

// UnmarshalText accepts the result names above.
func (r *CheckResult) UnmarshalText(text []byte) error {
	return unmarshalEnum(r, "check result", text, CheckResults)
}

// Wants says which sender checks a transaction needs under the policy, so
// that no DNS lookup is made for a check that is off.
type Wants struct {
	SPF         bool // MAIL FROM (or HELO for the null sender)
	SenderIDMF  bool // Sender ID, mfrom scope (M-SEC)
	SenderIDPRA bool // Sender ID on the Purported Responsible Address
	DKIM        bool // verify every DKIM signature (RFC 6376)
	DMARC       bool // evaluate DMARC (RFC 7489, G-DMARC-IN)
}

// Any reports whether any check is wanted.
func (w Wants) Any() bool { return w.SPF || w.SenderIDMF || w.SenderIDPRA || w.DKIM || w.DMARC }

// DKIMCheck is one verified DKIM signature as plain values.
type DKIMCheck struct {
	Result    CheckResult `json:"result"` // pass fail neutral policy temperror permerror none
	Domain    string      `json:"domain"`
	Selector  string      `json:"selector"`
	HeaderB   string      `json:"header_b"`
	Algorithm string      `json:"algorithm"`
	// BodyLengthLimited: the signature has l= (only part of the body signed).
	BodyLengthLimited bool   `json:"body_length_limited,omitempty"`
	Detail            string `json:"detail,omitempty"`
}

// DMARCCheck is a DMARC evaluation (RFC 7489) as plain values.
type DMARCCheck struct {
	Result      CheckResult `json:"result"`      // pass fail none temperror permerror
	Disposition string      `json:"disposition"` // none quarantine reject: what to do, after pct
	Published   string      `json:"policy"`      // the p= (or sp=) that applies
	FromDomain  string      `json:"header_from"`
	SPFAligned  bool        `json:"spf_aligned"`
	DKIMAligned bool        `json:"dkim_aligned"`
	Reason      string      `json:"reason,omitempty"`
}

// MessageChecks are the results that need the whole message.
type MessageChecks struct {
	DKIM  []DKIMCheck `json:"dkim"`
	DMARC *DMARCCheck `json:"dmarc,omitempty"`
}

// MailChecks are the results available at MAIL FROM.
type MailChecks struct {
	SPF        *AuthCheck // of the MAIL FROM identity
	SPFHelo    *AuthCheck // of the HELO identity, run when MAIL FROM is null
	SenderIDMF *AuthCheck
}

// spf is the SPF result that decides: MAIL FROM's, or HELO's for the null
// sender (RFC 7208 section 2.4).
func (mc MailChecks) spf() *AuthCheck {
	if mc.SPF != nil {
		return mc.SPF
	}
	return mc.SPFHelo
}

// HeaderChecks are the results available at end of headers.
type HeaderChecks struct {
	SenderIDPRA *AuthCheck
}

// Checker runs the checks that need the network; the engine itself never
// does I/O. checks.Runner is the real one, tests use fakes.
type Checker interface {
	Mail(ctx context.Context, w Wants, c Conn, e Envelope) MailChecks
	// Headers is given the MAIL FROM results: a Sender ID check of the
	// PRA may be the SPF evaluation already made (AuthCheck.SenderIDSame).
	Headers(ctx context.Context, w Wants, c Conn, e Envelope, mc MailChecks, hs []Header) HeaderChecks
	// Message runs the checks on the whole message: msg reads it from the
	// first header byte (CRLF line ends).
	Message(ctx context.Context, w Wants, c Conn, e Envelope, hs []Header, mc MailChecks, msg io.Reader) MessageChecks
}

// Wants tells which checks to run for a transaction.
func (p *Policy) Wants(c Conn, e Envelope) Wants {
	if p.Direction(c, e) != Inbound {
		return Wants{}
	}
	msec := p.msecApplies(e)
	dmarc := p.Inbound.DMARC != ModeOff
	return Wants{
		SPF:         p.Inbound.SPF != ModeOff || msec || dmarc,
		SenderIDMF:  msec,
		SenderIDPRA: p.Inbound.SenderID != ModeOff || msec,
		DKIM:        p.Inbound.DKIM != ModeOff || dmarc,
		DMARC:       dmarc,
	}
}

// msecApplies: M-SEC holds for every sender at a SecureMail receiver, and
// for apparent SecureMail senders everywhere (M-RCV-SM: "identified via
// securemail as the left-most part of their domain name").
func (p *Policy) msecApplies(e Envelope) bool {
	if p.Inbound.SecureMailReceiver {
		return true
	}
	return p.Inbound.SecureMailSenders && isSecureMailDomain(senderDomain(e.From))
}

func isSecureMailDomain(domain string) bool {
	label, _, _ := strings.Cut(strings.ToLower(domain), ".")
	return label == "securemail"
}

func senderDomain(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return strings.ToLower(d)
}

// checkSPF: M-RCV-SPF at MAIL FROM. Under "enforce" (every profile's
// default: spec 000 "enforce the mail sending policy specified by a sending
// domain's SPF record", spec 004 section 9) a fail is refused with the
// domain's explanation (RFC 7372 X.7.23), a permerror as an SPF validation
// error (X.7.24), a temperror answered 451 4.4.3 so the sender retries;
// never an accept of mail the policy requires to be authenticated.
//
// A fail or permerror is not final while DMARC runs: mail forwarded by a
// list or an alias fails SPF at the forwarder's address but passes DMARC
// through the author's aligned DKIM signature (RFC 7489 section 10.1), and
// DKIM needs the body. Those are decided at end of message
// (checkDeferredSPF), with the same replies.
func (p *Policy) checkSPF(v *Verdict, r *AuthCheck) {
	if r == nil || p.Inbound.SPF != ModeEnforce {
		return
	}
	if p.spfDeferred(r) {
		v.reason("SPF %s for %s: decided at end of message, where an aligned DKIM signature can still pass DMARC (RFC 7489 section 10.1, M-RCV-SPF)", r.Result, orUnknown(r.Domain))
		return
	}
	refuseSPF(v, r)
}

// spfDeferred reports whether an enforced SPF result waits for DKIM.
func (p *Policy) spfDeferred(r *AuthCheck) bool {
	return p.Inbound.DMARC != ModeOff && (r.Result == ResultFail || r.Result == ResultPermError)
}

// checkDeferredSPF: M-RCV-SPF at end of message, for the results
// checkSPF deferred. The one way out is a DMARC pass through an aligned
// DKIM signature (RFC 7489 section 10.1); the SPF result is recorded in
// Authentication-Results either way.
func (p *Policy) checkDeferredSPF(v *Verdict, t Transaction) {
	r := t.Mail.spf()
	if r == nil || p.Inbound.SPF != ModeEnforce || !p.spfDeferred(r) {
		return
	}
	if d := t.Message.DMARC; d != nil && d.Result == ResultPass && d.DKIMAligned {
		v.reason("SPF %s for %s not enforced: DMARC passes for %s through an aligned DKIM signature (forwarded mail, RFC 7489 section 10.1, M-RCV-SPF)", r.Result, orUnknown(r.Domain), d.FromDomain)
		return
	}
	refuseSPF(v, r)
}

func refuseSPF(v *Verdict, r *AuthCheck) {
	switch r.Result {
	case ResultFail:
		why := r.Explanation
		if why == "" {
			why = "the sending host is not authorised to send mail for " + r.Domain
		}
		v.refuse(550, "5.7.23", fmt.Sprintf("SPF check failed for %s: %s (M-RCV-SPF)", r.Identity, why))
	case ResultPermError:
		v.refuse(550, "5.7.24", fmt.Sprintf("SPF record of %s is not valid: %s (M-RCV-SPF)", r.Domain, r.Detail))
	case ResultTempError:
		v.refuse(451, "4.4.3", fmt.Sprintf("Temporary DNS failure checking SPF for %s; please try again later", r.Domain))
	}
}

// checkSenderID: M-RCV-SID, the same actions on the PRA (RFC 4406/4407).
func (p *Policy) checkSenderID(v *Verdict, r *AuthCheck) {
	if r == nil || p.Inbound.SenderID != ModeEnforce {
		return
	}
	switch r.Result {
	case ResultFail:
		v.refuse(550, "5.7.1", fmt.Sprintf("Sender ID check failed: %s is not authorised to send as %s (M-RCV-SID)", r.Domain, r.Identity))
	case ResultPermError:
		v.refuse(550, "5.7.1", fmt.Sprintf("Sender ID check failed for %s: %s (M-RCV-SID)", r.Identity, r.Detail))
	case ResultTempError:
		v.refuse(451, "4.4.3", fmt.Sprintf("Temporary DNS failure checking Sender ID for %s; please try again later", r.Domain))
	}
}

// checkMSEC applies M-SEC to one SPF-family record: it must exist, end in
// "-all" and evaluate to pass. what names it in the reply.
func checkMSEC(v *Verdict, what string, r *AuthCheck) {
	if r == nil {
		v.refuse(550, "5.7.1", fmt.Sprintf("Refused by the SecureMail rules (M-SEC): the sender's %s could not be evaluated", what))
		return
	}
	switch {
	case r.Result == ResultTempError:
		v.refuse(451, "4.4.3", fmt.Sprintf("Temporary DNS failure checking the %s of %s (M-SEC); please try again later", what, r.Domain))
	case !r.RecordFound && r.OtherScopeRecord:
		// A domain's Sender ID record is its spf2.0 record of any scope:
		// "spf2.0/pra ... -all" alone is one. The check of the scope it
		// names decides (the PRA at end of headers).
		v.reason("the %s of %s is published for another scope only; that scope's check decides (M-SEC)", what, orUnknown(r.Domain))
	case !r.RecordFound:
		v.refuse(550, "5.7.1", fmt.Sprintf("Refused by the SecureMail rules (M-SEC): %s publishes no %s", orUnknown(r.Domain), what))
	case r.AllQualifier != "-":
		v.refuse(550, "5.7.1", fmt.Sprintf("Refused by the SecureMail rules (M-SEC): the %s of %s does not end in \"-all\"", what, r.Domain))
	case r.Result != ResultPass:
		v.refuse(550, "5.7.1", fmt.Sprintf("Refused by the SecureMail rules (M-SEC): the %s of %s gives %s, not pass", what, r.Domain, r.Result))
	}
}

// checkMSECTLS: M-SEC's TLS rule, "the sender's TLS connection does not
// exist or does not meet the government's minimum cryptography standards".
func (p *Policy) checkMSECTLS(v *Verdict, t TLSInfo) {
	if why := p.MSEC.weakness(t); why != "" {
		v.refuse(550, "5.7.10", "Refused by the SecureMail rules (M-SEC): "+why)
	}
}

// weakness says what in a TLS session is below the M-SEC minimum, "" if nothing.
func (m MSECPolicy) weakness(t TLSInfo) string {
	switch {
	case t.Version == "":
		return "the session does not use TLS"
	case tlsRank(t.Version) < minTLSRank[m.MinTLS]:
		return fmt.Sprintf("%s is below TLS %s", t.Version, m.MinTLS)
	case t.CipherBits < m.MinCipherBits:
		return fmt.Sprintf("cipher %s has %d bits, below %d", t.Cipher, t.CipherBits, m.MinCipherBits)
	case m.ForwardSecrecy && !forwardSecret(t):
		return fmt.Sprintf("cipher %s has no forward-secret key exchange", t.Cipher)
	case m.AEAD && !aead(t.Cipher):
		return fmt.Sprintf("cipher %s is not an AEAD cipher (AES-GCM, AES-CCM, ChaCha20-Poly1305)", t.Cipher)
	}
	return ""
}

// forwardSecret: every TLS 1.3 suite; TLS 1.2 suites with (EC)DHE key
// exchange (OpenSSL names, as Postfix reports them).
func forwardSecret(t TLSInfo) bool {
	if tlsRank(t.Version) >= tlsVersionRank["TLSv1.3"] || strings.HasPrefix(t.Cipher, "TLS_") {
		return true
	}
	return strings.HasPrefix(t.Cipher, "ECDHE-") || strings.HasPrefix(t.Cipher, "DHE-")
}

func aead(cipher string) bool {
	c := strings.ToUpper(cipher)
	return strings.Contains(c, "GCM") || strings.Contains(c, "CHACHA20") || strings.Contains(c, "CCM")
}

func orUnknown(s string) string {
	if s == "" {
		return "the sender's domain"
	}
	return s
}

// checkDMARC: G-DMARC-IN, under inbound.dmarc = "enforce": the sender's
// policy decides. p=reject refuses (550 5.7.1); p=quarantine holds the
// message for the administrators (the hold queue, never a junk folder,
// spec 004); a temporary DNS failure answers 451; a message whose From:
// cannot be evaluated (none, several, malformed; RFC 7489 section 6.6.1)
// is refused.
func (p *Policy) checkDMARC(v *Verdict, d *DMARCCheck, mta, queueID, sender string) {
	if d == nil || p.Inbound.DMARC != ModeEnforce {
		return
	}
	switch {
	case d.Result == ResultTempError:
		v.refuse(451, "4.4.3", fmt.Sprintf("Temporary DNS failure evaluating DMARC for %s; please try again later", orUnknown(d.FromDomain)))
	case d.Result == ResultPermError:
		v.refuse(550, "5.7.1", fmt.Sprintf("Message refused: DMARC cannot be evaluated: %s (RFC 7489 section 6.6.1)", d.Reason))
	case d.Result == ResultFail && d.Disposition == "reject":
		v.refuse(550, "5.7.1", fmt.Sprintf("Message rejected by the DMARC policy of %s (p=%s): neither SPF nor DKIM is aligned with the From: domain (G-DMARC-IN)", d.FromDomain, d.Published))
	case d.Result == ResultFail && d.Disposition == "quarantine":
		release := ReleaseCommand(mta, queueID)
		p.holdForAdmin(v, HoldDMARC, fmt.Sprintf("DMARC policy of %s is quarantine: held for the administrators (G-DMARC-IN); release with: %s", d.FromDomain, release),
			fmt.Sprintf("A message from %s failed DMARC (%s publishes p=quarantine) and is held. Release it with: %s", sender, d.FromDomain, release),
			nil, WarningForgedAgency)
	}
}
