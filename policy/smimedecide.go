package policy

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// The S/MIME facts the pipeline looks up for the engine (the engine does no
// I/O: pipeline.SMIMEEnv reads the peer store, the identities and the CRLs
// and hands the engine these plain values), and the pure decisions on them
// that the engine, `certs check` and the held-mail retry share (issue 14).

// SMIMEPeer is what the gateway has for one recipient domain (Table 1,
// sending column).
type SMIMEPeer struct {
	Domain string `json:"domain"`
	// HasCerts: the peer store holds at least one certificate for the
	// domain, whatever its state (R72: a peer agency stays one when its
	// certificate goes bad, so its mail is held, never sent in clear).
	HasCerts bool `json:"has_certificates"`
	// State is the state of the certificate that would be used (valid), or
	// of the best candidate (Table 1's rows); "" when there is none.
	State   smime.State `json:"state,omitempty"`
	Reasons []string    `json:"reasons,omitempty"`
	// Fingerprint and Cipher of the certificate encrypted to, when valid.
	Fingerprint string `json:"fingerprint,omitempty"`
	Cipher      string `json:"cipher,omitempty"`
	// ReplacedUntrusted are the SHA-256 fingerprints of the stored
	// certificates, untrusted (smime.StateUntrusted), that LDAP discovery
	// replaced by the valid one above while looking this message up
	// (Table 1, sending, "Untrusted / Unknown CA": "Success: Send message.
	// Notify Recipient's Postmaster"); empty otherwise.
	ReplacedUntrusted []string `json:"replaced_untrusted,omitempty"`
}

// SMIMEOwn is our signing identity for the sending domain (R37).
type SMIMEOwn struct {
	Domain string `json:"domain"`
	// Fingerprint of the newest valid identity; "" when none is valid.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Problem says why none is valid.
	Problem string `json:"problem,omitempty"`
	// UnknownStatus: one of our certificates chains and is in date, but
	// its revocation status could not be established (212, not 211).
	UnknownStatus bool `json:"unknown_status,omitempty"`
}

// SMIMERcptDomain is the domain of a recipient address as the S/MIME scope
// and the peer store know it: after the last "@" of the address (a quoted
// local part may hold one: "x@gmail.example"@agency-b.govt.nz is agency-b's),
// lower case, without a trailing dot, an IDN as its A-label (SMTPUTF8 mail
// may name a peer by its U-label). "" for an address without a domain.
// R62: a peer agency's recipient is never taken out of scope by spelling.
func SMIMERcptDomain(addr string) string {
	_, d := SplitAddress(addr)
	// Every trailing dot: "agency-b.govt.nz.." is no domain, but it must
	// not read as one out of scope either.
	return strings.TrimRight(d, ".")
}

// SMIMEScope says whether mail to domain gets S/MIME (R72, R91):
// smime.encrypt_to when set; otherwise the SEEMail list, the exceptions and
// any domain with a certificate in the peer store.
func (p *Policy) SMIMEScope(domain string, hasCerts bool) (bool, string) {
	if len(p.SMIME.EncryptTo) > 0 {
		for _, d := range p.SMIME.EncryptTo {
			if d == domain || strings.HasPrefix(d, "*.") && strings.HasSuffix(domain, d[1:]) {
				return true, "listed in smime.encrypt_to (" + d + ")"
			}
		}
		return false, "not in smime.encrypt_to"
	}
	switch {
	case p.Outbound.SEEMailDomains.Match(domain):
		return true, "on the SEEMail list (outbound.seemail_domains; smime.encrypt_to empty)"
	case p.Outbound.Exceptions.Match(domain):
		return true, "an exception (outbound.exceptions; smime.encrypt_to empty)"
	case hasCerts:
		return true, "has a certificate in the peer store (smime.encrypt_to empty)"
	}
	return false, "not on the SEEMail list or the exceptions and no peer certificate (smime.encrypt_to empty)"
}

// SMIMESendOutcome is Table 1's sending column with Table 3's codes: ""
// when the message can be signed by own and encrypted to peer; otherwise
// the SECURE DELIVERY DELAYED code and why. No valid certificate of our own
// is 211, ours of unknown status 212; a peer without a valid certificate is
// 201, one whose status cannot be established (no CRL) 202.
func SMIMESendOutcome(peer SMIMEPeer, own SMIMEOwn) (code, why string) {
	switch {
	case own.Fingerprint == "":
		code = "211"
		if own.UnknownStatus {
			code = "212"
		}
		return code, fmt.Sprintf("no valid certificate of our own for %s (%s)", own.Domain, own.Problem)
	case peer.State == smime.StateValid && peer.Fingerprint != "":
		return "", ""
	case !peer.HasCerts:
		// An empty store reports unknown status too; no certificate at
		// all is 201, not 202.
		return "201", fmt.Sprintf("no peer certificate for %s (%s)", peer.Domain, strings.Join(peer.Reasons, "; "))
	case peer.State == smime.StateUnknown:
		return "202", fmt.Sprintf("peer certificate for %s %s (%s)", peer.Domain, peer.State, strings.Join(peer.Reasons, "; "))
	}
	return "201", fmt.Sprintf("peer certificate for %s %s (%s)", peer.Domain, peer.State, strings.Join(peer.Reasons, "; "))
}
