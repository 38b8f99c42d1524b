package policy

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/authres"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Inbound domain S/MIME (issue 14 point 4, R76-R89, Table 1 receiving
// column): the pipeline decrypts and verifies (pipeline/smimein.go, the
// I/O) and hands the engine these plain values; the engine decides the one
// warning (R79), the tag (R60), the Authentication-Results smime= result
// and the unwrap step here.

// TransformSMIMEUnwrap replaces the S/MIME layers of an inbound message by
// the decrypted, verified inner entity (its Content-* headers replace the
// outer ones; the signature and its DCA/DSA certificates are stripped,
// R88-R89). It is always the first step, so a warning wraps what the
// recipient reads.
const TransformSMIMEUnwrap TransformKind = "smime-unwrap"

// NoticeCertificate tells the recipient's postmaster (ours, inbound) of a
// Table 1 certificate problem on a message delivered with an UNVERIFIED
// warning ("Notify Recipient's Postmaster").
const NoticeCertificate NoticeKind = "certificate"

// Table 3 codes of the inbound S/MIME outcomes that are not certificate
// states.
const (
	WarningAltered       = "003" // bad signature, malformed PKCS#7: "altered en-route"
	WarningSignedOnly    = "008" // a participating agency's mail signed, not encrypted
	WarningUnknownOwnKey = "112" // R80: encrypted to a certificate that is not one of ours
)

// SMIMEInbound is what the pipeline found in an inbound S/MIME message
// (plain values; the engine does no I/O).
type SMIMEInbound struct {
	// Layers names the S/MIME layers found, outermost first
	// ("enveloped", "signed-opaque", "signed-detached").
	Layers []string `json:"layers"`
	// Malformed: a PKCS#7 layer (or its MIME wrapping) could not be
	// parsed or was over the size bound; Problem says which.
	Malformed bool   `json:"malformed,omitempty"`
	Problem   string `json:"problem,omitempty"`

	// Encrypted: an enveloped-data layer was found.
	Encrypted bool `json:"encrypted,omitempty"`
	// Decrypted: one of our identities opened it (R38).
	Decrypted bool `json:"decrypted,omitempty"`
	// NotForUs: it names none of our certificates (R80).
	NotForUs bool `json:"not_for_us,omitempty"`
	// DecryptError says why it did not decrypt.
	DecryptError string `json:"decrypt_error,omitempty"`
	// OwnFingerprint, OwnDomain, OwnState, OwnReason: the identity of ours
	// that decrypted and its state now (111-115 when not valid).
	OwnFingerprint string      `json:"own_fingerprint,omitempty"`
	OwnDomain      string      `json:"own_domain,omitempty"`
	OwnState       smime.State `json:"own_state,omitempty"`
	OwnReason      string      `json:"own_reason,omitempty"`

	// Signed: a domain signature layer was found (signer CN
	// domain-confidentiality-authority or domain-signing-authority, or a
	// signature that did not verify, so its signer is unknown).
	Signed bool `json:"signed,omitempty"`
	// SignatureOK: the signature verifies over the content (R81, R82).
	SignatureOK bool `json:"signature_ok,omitempty"`
	// SignatureUnchecked: the signing time lies outside the signer
	// certificate's validity, so the signature could not be checked.
	SignatureUnchecked bool   `json:"signature_unchecked,omitempty"`
	SignatureError     string `json:"signature_error,omitempty"`
	// SignerFromStore: the message did not carry its signer's certificate;
	// the peer store's was used (R82).
	SignerFromStore   bool   `json:"signer_from_store,omitempty"`
	SignerFingerprint string `json:"signer_fingerprint,omitempty"`
	SignerSerial      string `json:"signer_serial,omitempty"`
	SignerIssuer      string `json:"signer_issuer,omitempty"`
	// SignerAddress is the certificate's first rfc822Name/emailAddress.
	SignerAddress string   `json:"signer_address,omitempty"`
	SignerDomains []string `json:"signer_domains,omitempty"`
	// SignerState and SignerReason: the Validator's judgement now (R36,
	// R37 note), naming not included.
	SignerState  smime.State `json:"signer_state,omitempty"`
	SignerReason string      `json:"signer_reason,omitempty"`
	// FromDomain is the From: author's domain; NamingOK: it is a domain
	// of the signer certificate's rfc822Name/emailAddress (R47; else R48).
	FromDomain   string `json:"from_domain,omitempty"`
	NamingOK     bool   `json:"naming_ok,omitempty"`
	NamingReason string `json:"naming_reason,omitempty"`

	// Learned: the signer certificate was new to the peer store and was
	// added (R50, R83); Changed: the store held another certificate for
	// that domain before.
	Learned bool `json:"learned,omitempty"`
	Changed bool `json:"changed,omitempty"`
	// Capabilities are the signer's SMIMECapabilities, cached (R84) when
	// CapabilitiesCached.
	Capabilities       string `json:"capabilities,omitempty"`
	CapabilitiesCached bool   `json:"capabilities_cached,omitempty"`
	// StrippedCerts counts the DCA/DSA certificates that leave with the
	// removed signature layer (R88-R89).
	StrippedCerts int `json:"stripped_certificates,omitempty"`
	// Unwrapped: an inner entity was obtained, which the delivered message
	// carries (smime-unwrap).
	Unwrapped bool `json:"unwrapped,omitempty"`
	// Notes are what the pipeline wants in the decision log (store
	// errors, a user-level signature left in place, ...).
	Notes []string `json:"notes,omitempty"`
}

// Verified reports whether the S/MIME layers verify the message (R76):
// decrypted if it was encrypted, a good signature, the signer valid now
// and named for the From: domain (R47).
func (s *SMIMEInbound) Verified() bool {
	return s != nil && !s.Malformed && (!s.Encrypted || s.Decrypted) && s.Signed && s.SignatureOK &&
		!s.SignatureUnchecked && s.SignerState == smime.StateValid && s.NamingOK
}

// receivingCode is Table 3's incoming certificate code for a state (101-105
// the sender's, 111-115 ours).
func receivingCode(st smime.State, own bool) string {
	base := map[smime.State]int{
		smime.StateRevoked: 1, smime.StateUntrusted: 2, smime.StateMisnamed: 2, smime.StateExpired: 3,
		smime.StateUnknown: 4, smime.StateNotYetValid: 5,
	}[st]
	if base == 0 {
		base = 2 // any other failure: "untrusted / unknown for some reason"
	}
	if own {
		return fmt.Sprintf("11%d", base)
	}
	return fmt.Sprintf("10%d", base)
}

// smimeInOutcome is the one S/MIME warning (R79) and why; "" when the
// message is verified or when S/MIME has nothing to say (R87: encrypted to
// us but unsigned falls to the ordinary rules). notice: Table 1 asks for
// the recipient's postmaster to be told. The order is the order of the
// checks: the form (malformed, undecryptable), the signature (003), the
// sender's certificate (101-105), the naming (R48), our certificate
// (111-115), then signed-only from a participating agency (008).
func (p *Policy) smimeInOutcome(s *SMIMEInbound) (code, why string, notice bool) {
	switch {
	case s.Malformed:
		return WarningAltered, fmt.Sprintf("S/MIME content is malformed and cannot be verified: %s (warning %s, fail safe)", s.Problem, WarningAltered), false
	case s.Encrypted && !s.Decrypted && s.NotForUs:
		// R80: the policy for unknown encrypted mail. Fail safe: delivered
		// as received (the recipient may hold the key, end-to-end S/MIME),
		// never tagged, with an UNVERIFIED warning; the wrap warning keeps
		// the original attached, so nothing is lost.
		return WarningUnknownOwnKey, fmt.Sprintf("encrypted to a certificate that is not one of ours; delivered as received, not decrypted (R80, warning %s)", WarningUnknownOwnKey), true
	case s.Encrypted && !s.Decrypted:
		return WarningAltered, fmt.Sprintf("encrypted to our certificate but does not decrypt: %s; delivered as received (R80, warning %s)", s.DecryptError, WarningAltered), false
	case s.Signed && !s.SignatureOK && !s.SignatureUnchecked:
		return WarningAltered, fmt.Sprintf("the S/MIME signature does not verify: %s (warning %s)", s.SignatureError, WarningAltered), false
	case s.Signed && s.SignerState != smime.StateValid:
		c := receivingCode(s.SignerState, false)
		return c, fmt.Sprintf("the sender's certificate %s is %s: %s (Table 1, warning %s)", short(s.SignerFingerprint), s.SignerState, s.SignerReason, c), true
	case s.Signed && s.SignatureUnchecked:
		return WarningAltered, fmt.Sprintf("the S/MIME signature could not be checked: %s (warning %s)", s.SignatureError, WarningAltered), false
	case s.Signed && !s.NamingOK:
		c := receivingCode(smime.StateMisnamed, false)
		return c, fmt.Sprintf("the From: domain %q is not the signer certificate's (%s): %s (R47-R48, warning %s)", s.FromDomain, strings.Join(s.SignerDomains, ", "), s.NamingReason, c), true
	case s.Decrypted && s.OwnState != smime.StateValid:
		c := receivingCode(s.OwnState, true)
		return c, fmt.Sprintf("decrypted with our certificate %s for %s, which is %s: %s (Table 1, warning %s)", short(s.OwnFingerprint), s.OwnDomain, s.OwnState, s.OwnReason, c), true
	case s.Signed && !s.Encrypted && (p.Outbound.SEEMailDomains.Match(s.FromDomain) || anyMatch(p.Outbound.SEEMailDomains, s.SignerDomains)):
		return WarningSignedOnly, fmt.Sprintf("signed but not encrypted by a participating agency (%s) (warning %s)", s.FromDomain, WarningSignedOnly), false
	}
	return "", "", false
}

// smimeAuthorWarning is what R76's From: rules say of a message whose
// S/MIME verifies (the verified path does not consult authorWarning, whose
// other rules are about unverified mail): the signature names the From:
// address's domain only, so a display name or comment naming our domain
// (005) or another participating agency (002) is impersonation by a
// signer's own user; and a From: in our own domains verified with our own
// DCA certificate arriving from outside is a replay of our signed content
// under rewritten (unsigned) outer headers, or a loop (005): this gateway
// never sends S/MIME to its own domains.
func (p *Policy) smimeAuthorWarning(t Transaction) (code, why string) {
	a := message.Authors(HeaderValues(t.Headers, "From"))
	m, ok := a.Author()
	if !ok {
		return "", "" // Verified needs NamingOK, which needs one author
	}
	fd := m.Domain
	if p.ownsDomain(fd) {
		return WarningOwnAgency, fmt.Sprintf("From: is in our own domain %s and the message is signed with our own certificate, but it came from outside: a replay or a loop (warning %s, R76)", fd, WarningOwnAgency)
	}
	for _, d := range a.Mentioned {
		if p.ownsDomain(d) {
			return WarningOwnAgency, fmt.Sprintf("From: display name or comment names our own domain %s but the signed address is <%s>: impersonation (warning %s, R76)", d, m.Address(), WarningOwnAgency)
		}
	}
	for _, d := range a.Mentioned {
		if p.participating(d) && !message.Aligned(fd, d) {
			return WarningForgedAgency, fmt.Sprintf("From: display name or comment names the participating agency %s but the signed address is <%s>: impersonation (warning %s, R76)", d, m.Address(), WarningForgedAgency)
		}
	}
	return "", ""
}

func anyMatch(s DomainSet, ds []string) bool {
	for _, d := range ds {
		if s.Match(d) {
			return true
		}
	}
	return false
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	if fp == "" {
		return "(unknown)"
	}
	return fp
}

// decideSMIMEIn decides an inbound S/MIME message: true when it settled the
// warning (or verified the message), so the ordinary inbound warnings are
// not consulted (R79: one warning). Table 1: every certificate problem is
// delivered with its warning, never deleted.
func (p *Policy) decideSMIMEIn(v *Verdict, t Transaction) bool {
	s := t.SMIMEIn
	if s == nil {
		return false
	}
	v.reason("inbound S/MIME: layers %s", strings.Join(s.Layers, "+"))
	for _, n := range s.Notes {
		v.reason("S/MIME: %s", n)
	}
	if s.Unwrapped {
		// First in the chain: the warning, if any, wraps what the recipient
		// reads (issue 14 point 4).
		v.Transforms = append(v.Transforms, Transform{Kind: TransformSMIMEUnwrap})
		v.reason("delivered decrypted/unwrapped: the S/MIME layers and %d DCA/DSA certificate(s) stripped (R88-R89)", s.StrippedCerts)
	}
	if s.Learned {
		what := "learned a new peer certificate"
		if s.Changed {
			what = "learned a changed peer certificate"
		}
		v.reason("%s %s for %s (R50, R83)", what, short(s.SignerFingerprint), strings.Join(s.SignerDomains, ", "))
	}
	if s.CapabilitiesCached {
		v.reason("cached the signer's S/MIME capabilities %s (R84)", s.Capabilities)
	}
	code, why, notice := p.smimeInOutcome(s)
	if code == "" && s.Verified() {
		v.reason("S/MIME verified: signed by %s (%s), valid now, named for From: %s (R76, R81)", s.SignerAddress, short(s.SignerFingerprint), s.FromDomain)
		if c, why := p.smimeAuthorWarning(t); c != "" {
			v.WarningCode, v.WarningMode = c, p.Inbound.WarningMode
			v.reason("UNVERIFIED: %s", why)
			return true
		}
		if !s.Encrypted {
			// Signed only, by an agency not on the SEEMail list (those get
			// 008 above): the classified content crossed the network as
			// sent, so M-IN's "received via a non SecureMail server" still
			// applies (004), and it is not tagged compliant.
			if p.flagInsecureClassified(v, t); v.WarningCode != "" {
				v.WarningMode = p.Inbound.WarningMode
				v.reason("not tagged %s: signed but not encrypted, classified, from a source that is not secure", SecureEmailHeader)
				return true
			}
		}
		if len(t.Unreadable) > 0 {
			v.reason("not tagged %s: the content could not be read in full", SecureEmailHeader)
		} else {
			v.addHeader(SecureEmailHeader, p.secureTagValue(v.Classification))
			v.reason("tagged verified S/MIME mail with %s (R60)", SecureEmailHeader)
		}
		return true
	}
	if code == "" {
		// R87: encrypted to us from an unknown source, unsigned: accepted;
		// the ordinary rules judge the decrypted message.
		v.reason("encrypted to us but not signed by a domain certificate: accepted, not verified (R87)")
		return false
	}
	v.WarningCode, v.WarningMode = code, p.Inbound.WarningMode
	v.reason("UNVERIFIED: %s", why)
	if notice {
		v.Notices = append(v.Notices, Notice{Kind: NoticeCertificate, To: p.Postmaster(), Code: code, Rcpts: t.Envelope.Rcpts, Reason: why})
	}
	return true
}

// keepSMIMEInDelivered undoes an inbound.unverified = "delete" for S/MIME
// encrypted mail: R87 says it MUST be accepted.
func (p *Policy) keepSMIMEInDelivered(v *Verdict, t Transaction) {
	if t.SMIMEIn == nil || !t.SMIMEIn.Encrypted || v.Action != Discard || v.WarningCode == "" {
		return
	}
	v.Action, v.WarningMode = Accept, p.Inbound.WarningMode
	v.reason("kept with its warning: mail encrypted to us is always accepted (R87), inbound.unverified = \"delete\" notwithstanding")
}

// smimeAuthResult is the RFC 7281 smime= result of an inbound S/MIME
// message (none when no S/MIME was found): pass for a verified one; fail for
// a bad signature; policy for a good signature from a certificate Table 1
// does not accept; temperror when its revocation status is unknown;
// permerror for a malformed or undecryptable one; none when only encrypted.
func (p *Policy) smimeAuthResult(t Transaction) []authres.Result {
	s := t.SMIMEIn
	if s == nil {
		return nil
	}
	r := authres.Result{Method: "smime"}
	code, _, _ := p.smimeInOutcome(s)
	switch {
	case s.Verified() && code == "":
		r.Value = "pass"
	case s.Malformed || (s.Encrypted && !s.Decrypted):
		r.Value, r.Reason = "permerror", clip(firstNonEmpty(s.Problem, s.DecryptError), maxARValue)
	case !s.Signed:
		r.Value, r.Reason = "none", "encrypted, not signed"
	case !s.SignatureOK && !s.SignatureUnchecked:
		r.Value, r.Reason = "fail", clip(s.SignatureError, maxARValue)
	case s.SignerState == smime.StateUnknown:
		r.Value, r.Reason = "temperror", clip(s.SignerReason, maxARValue)
	default:
		r.Value = "policy"
		switch {
		case s.SignerState != smime.StateValid:
			r.Reason = clip("signer certificate "+string(s.SignerState)+": "+s.SignerReason, maxARValue)
		case s.SignatureUnchecked:
			r.Reason = clip(s.SignatureError, maxARValue)
		case !s.NamingOK:
			r.Reason = clip("From: domain not the signer certificate's: "+s.NamingReason, maxARValue)
		case code == WarningSignedOnly:
			r.Reason = "signed, not encrypted, by a participating agency"
		default:
			r.Reason = clip("our certificate "+string(s.OwnState)+": "+s.OwnReason, maxARValue)
		}
	}
	if s.SignerAddress != "" {
		r.Props = append(r.Props, authres.Prop{Type: "body", Property: "smime-identifier", Value: clip(s.SignerAddress, maxARIdentity)})
	}
	if s.SignerSerial != "" {
		r.Props = append(r.Props, authres.Prop{Type: "body", Property: "smime-serial", Value: clip(s.SignerSerial, maxARName)})
	}
	return []authres.Result{r}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
