package policy

import (
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// verifiedIn is the facts of a verified signed+encrypted message from
// agency-b.govt.nz.
func verifiedIn() *SMIMEInbound {
	return &SMIMEInbound{Layers: []string{"enveloped", "signed-opaque"}, Encrypted: true, Decrypted: true,
		OwnFingerprint: "aa", OwnDomain: "agency.govt.nz", OwnState: smime.StateValid,
		Signed: true, SignatureOK: true, SignerFingerprint: "bb", SignerSerial: "1003",
		SignerAddress: "domain-confidentiality-authority@agency-b.govt.nz", SignerDomains: []string{"agency-b.govt.nz"},
		SignerState: smime.StateValid, FromDomain: "agency-b.govt.nz", NamingOK: true, Unwrapped: true, StrippedCerts: 1}
}

func smimeTx(s *SMIMEInbound, from, class string) Transaction {
	return Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: from, Rcpts: []string{"bob@agency.govt.nz"}},
		Headers: hdrs("From", from, "Subject", "s"), Classification: class, SMIMEIn: s}
}

func addedHeader(v Verdict, name string) string {
	for _, e := range v.Edits {
		if e.Op == OpAdd && strings.EqualFold(e.Name, name) {
			return e.Value
		}
	}
	return ""
}

func transformList(v Verdict) string {
	var out []string
	for _, t := range v.Transforms {
		out = append(out, t.String())
	}
	return strings.Join(out, ",")
}

// A verified S/MIME message (R76) is delivered without a warning, even
// from a participating agency whose DMARC/SPF did not verify it (002 is
// not given), tagged X-NZ-Secure-email (R60) with smime=pass, unwrapped
// first.
func TestSMIMEInVerified(t *testing.T) {
	p := mustPolicy(t, `outbound.seemail_domains=["agency-b.govt.nz"]`)
	v := p.AtEndOfMessage(smimeTx(verifiedIn(), "officer@agency-b.govt.nz", "SECRET"))
	if v.Action != Accept || v.WarningCode != "" {
		t.Fatalf("%s %q, want accept, no warning; reasons %q", v.Action, v.WarningCode, v.Reasons)
	}
	if tag := addedHeader(v, SecureEmailHeader); !strings.Contains(tag, `classification="SECRET"`) {
		t.Errorf("tag %q", tag)
	}
	if ar := addedHeader(v, AuthResultsHeader); !strings.Contains(ar, "smime=pass body.smime-identifier=domain-confidentiality-authority@agency-b.govt.nz body.smime-serial=1003") {
		t.Errorf("Authentication-Results %q", ar)
	}
	if got := transformList(v); got != "smime-unwrap" {
		t.Errorf("transforms %q", got)
	}
	// Verified but content not readable in full: not tagged (fail safe).
	tx := smimeTx(verifiedIn(), "officer@agency-b.govt.nz", "")
	tx.Unreadable = []string{"an encrypted zip"}
	if v := p.AtEndOfMessage(tx); addedHeader(v, SecureEmailHeader) != "" || v.WarningCode != "" {
		t.Errorf("unreadable verified mail tagged or warned: %q", v.Reasons)
	}
}

// Table 1, receiving column, with Table 3's codes: each certificate state
// of the sender's (101-105) and ours (111-115) gives its UNVERIFIED
// warning, the message delivered (never deleted, even under
// inbound.unverified = "delete") and our postmaster notified; the warning
// wraps the unwrapped message (R79: it is the one warning, not 002).
func TestSMIMEInTable1Codes(t *testing.T) {
	p := mustPolicy(t, `outbound.seemail_domains=["agency-b.govt.nz"]`, `inbound.unverified="delete"`)
	states := map[smime.State]string{smime.StateRevoked: "1", smime.StateUntrusted: "2", smime.StateExpired: "3", smime.StateUnknown: "4", smime.StateNotYetValid: "5"}
	for st, n := range states {
		for _, own := range []bool{false, true} {
			s := verifiedIn()
			want := "10" + n
			if own {
				s.OwnState, want = st, "11"+n
			} else {
				s.SignerState = st
			}
			v := p.AtEndOfMessage(smimeTx(s, "officer@agency-b.govt.nz", ""))
			if v.Action != Accept || v.WarningCode != want || v.WarningMode != WarnWrap {
				t.Errorf("%s (own %v): %s %q %q, want accept with %s; reasons %q", st, own, v.Action, v.WarningCode, v.WarningMode, want, v.Reasons)
			}
			if got := transformList(v); got != "smime-unwrap,warn-wrap("+want+")" {
				t.Errorf("%s: transforms %q", st, got)
			}
			if len(v.Notices) != 1 || v.Notices[0].Kind != NoticeCertificate || v.Notices[0].To != "postmaster@agency.govt.nz" || v.Notices[0].Code != want {
				t.Errorf("%s: notices %+v, want one certificate notice to our postmaster", st, v.Notices)
			}
			if addedHeader(v, SecureEmailHeader) != "" || strings.Contains(addedHeader(v, AuthResultsHeader), "smime=pass") {
				t.Errorf("%s: unverified mail tagged or passed", st)
			}
		}
	}
	s := verifiedIn()
	s.SignerState = smime.StateUnknown
	if ar := addedHeader(p.AtEndOfMessage(smimeTx(s, "officer@agency-b.govt.nz", "")), AuthResultsHeader); !strings.Contains(ar, "smime=temperror") {
		t.Errorf("unknown status: %q, want smime=temperror", ar)
	}
}

// 003 (bad signature, malformed), 008 (signed only by a participating
// agency), R48 naming (102), R80 (not for us: delivered as received with
// 112; not decryptable: 003), R87 (encrypted unsigned: ordinary rules,
// never deleted).
func TestSMIMEInOutcomes(t *testing.T) {
	p := mustPolicy(t, `outbound.seemail_domains=["agency-b.govt.nz","agency-c.govt.nz"]`, `inbound.unverified="delete"`)
	cases := []struct {
		name       string
		edit       func(*SMIMEInbound)
		from       string
		code, ar   string
		transforms string
		notice     bool
	}{
		{"bad signature", func(s *SMIMEInbound) { s.SignatureOK, s.SignatureError = false, "digest mismatch" }, "officer@agency-b.govt.nz", "003", "smime=fail", "smime-unwrap,warn-wrap(003)", false},
		{"signature unchecked, certificate valid", func(s *SMIMEInbound) { s.SignatureOK, s.SignatureUnchecked = false, true }, "officer@agency-b.govt.nz", "003", "smime=policy", "smime-unwrap,warn-wrap(003)", false},
		{"malformed", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, Malformed: true, Problem: "bad DER"}
		}, "officer@agency-b.govt.nz", "003", "smime=permerror", "warn-wrap(003)", false},
		{"signed only, participating", func(s *SMIMEInbound) { s.Encrypted, s.Decrypted, s.Layers = false, false, []string{"signed-opaque"} }, "officer@agency-b.govt.nz", "008", "smime=policy", "smime-unwrap,warn-wrap(008)", false},
		{"naming", func(s *SMIMEInbound) { s.NamingOK, s.FromDomain = false, "agency-c.govt.nz" }, "officer@agency-c.govt.nz", "102", "smime=policy", "smime-unwrap,warn-wrap(102)", true},
		{"R80 not for us", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, NotForUs: true, DecryptError: "encrypted to none of our certificates"}
		}, "officer@agency-b.govt.nz", "112", "smime=permerror", "warn-wrap(112)", true},
		{"R80 does not decrypt", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, DecryptError: "bad padding"}
		}, "officer@agency-b.govt.nz", "003", "smime=permerror", "warn-wrap(003)", false},
		{"R87 unsigned from a participating agency", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, Decrypted: true, OwnState: smime.StateValid, Unwrapped: true, FromDomain: "agency-c.govt.nz"}
		}, "someone@agency-c.govt.nz", "002", "smime=none", "smime-unwrap,warn-wrap(002)", false},
		{"R87 unsigned from the internet", func(s *SMIMEInbound) {
			*s = SMIMEInbound{Layers: []string{"enveloped"}, Encrypted: true, Decrypted: true, OwnState: smime.StateValid, Unwrapped: true, FromDomain: "example.com"}
		}, "someone@example.com", "", "smime=none", "smime-unwrap", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := verifiedIn()
			c.edit(s)
			v := p.AtEndOfMessage(smimeTx(s, c.from, ""))
			if v.Action != Accept || v.WarningCode != c.code {
				t.Errorf("%s %q, want accept with %q; reasons %q", v.Action, v.WarningCode, c.code, v.Reasons)
			}
			if ar := addedHeader(v, AuthResultsHeader); !strings.Contains(ar, c.ar) {
				t.Errorf("Authentication-Results %q, want %s", ar, c.ar)
			}
			if got := transformList(v); got != c.transforms {
				t.Errorf("transforms %q, want %q", got, c.transforms)
			}
			if got := len(v.Notices) == 1 && v.Notices[0].Kind == NoticeCertificate; got != c.notice {
				t.Errorf("notices %+v, want a certificate notice: %v", v.Notices, c.notice)
			}
			if addedHeader(v, SecureEmailHeader) != "" {
				t.Errorf("unverified mail tagged")
			}
		})
	}
}

// Without S/MIME facts nothing changes: the ordinary warnings apply.
func TestSMIMEInAbsent(t *testing.T) {
	p := mustPolicy(t, `outbound.seemail_domains=["agency-b.govt.nz"]`)
	v := p.AtEndOfMessage(smimeTx(nil, "officer@agency-b.govt.nz", ""))
	if v.WarningCode != "002" || strings.Contains(addedHeader(v, AuthResultsHeader), "smime") || len(v.Transforms) != 1 {
		t.Errorf("%q %q %v", v.WarningCode, addedHeader(v, AuthResultsHeader), v.Transforms)
	}
}
