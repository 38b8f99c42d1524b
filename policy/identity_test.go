package policy

import (
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"net/netip"
	"strings"
	"testing"
)

// Issue 12 points 1-3: the Table 3 warnings 002/005 and R76 verification
// read From: with the one author parser. A From: that is absent, repeated,
// holds several addresses or cannot be parsed is unverified and warned on
// any candidate domain of ours (005) or of a participating agency (002); a
// display name or comment naming our domain (or an agency's) with the
// address elsewhere is impersonation; verified means aligned (RFC 7489
// section 3.1), never through a public suffix.
func TestInboundAuthorWarnings(t *testing.T) {
	pass := &AuthCheck{Result: ResultPass, Scope: "mfrom"}
	cases := []struct {
		name     string
		from     []string // From: values; nil for none
		mailFrom string
		spf      *AuthCheck
		dmarc    *DMARCCheck
		plain    bool // no TLS
		code     string
	}{
		// Point 1: malformed forms naming our domain.
		{name: "Table 3 005 unquoted comma in the display name", from: []string{"Smith, John <john@agency.govt.nz>"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 obsolete white space around @ and dots", from: []string{"ceo @ agency . govt . nz"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 a space before a dot of our domain", from: []string{"CEO ceo@agency .govt.nz"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 unclosed quote", from: []string{`"John <john@agency.govt.nz>`}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 unclosed comment", from: []string{"John (CEO <john@agency.govt.nz>"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 raw Latin-1", from: []string{"J\xf6hn <john@agency.govt.nz>"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 raw UTF-8", from: []string{"Jöhn <john@agency.govt.nz>"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 unknown charset", from: []string{"=?x-unknown?q?J=F6hn?= <john@agency.govt.nz>"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 trailing dot", from: []string{"john@agency.govt.nz."}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 full-width letters", from: []string{"john@ａｇｅｎｃｙ.govt.nz"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 ideographic full stops", from: []string{"john@agency\u3002govt\uFF0Enz"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 two addresses", from: []string{"x@gmail.example, john@agency.govt.nz"}, mailFrom: "x@gmail.example", spf: pass, code: "005"},
		{name: "Table 3 005 two From: fields", from: []string{"x@gmail.example", "john@agency.govt.nz"}, mailFrom: "x@gmail.example", spf: pass, code: "005"},
		{name: "R76 repeated From: is unverified even with an aligned SPF pass", from: []string{"john@agency.govt.nz", "john@agency.govt.nz"},
			mailFrom: "john@agency.govt.nz", spf: pass, code: "005"},
		{name: "Table 3 002 malformed From: naming a participating agency", from: []string{`"Minister <minister@mfat.govt.nz>`}, mailFrom: "x@gmail.example", code: "002"},
		{name: "Table 3 002 two addresses naming a participating agency", from: []string{"a@gmail.example, minister@mfat.govt.nz"}, mailFrom: "a@gmail.example", code: "002"},
		{name: "malformed From: naming none of ours is not warned", from: []string{`"x <a@gmail.example>`}, mailFrom: "a@gmail.example"},
		{name: "unquoted comma from the internet is not warned", from: []string{"Smith, John <j@gmail.example>"}, mailFrom: "j@gmail.example"},
		{name: "no From: at all is not warned by 002/005", from: nil, mailFrom: "j@gmail.example"},

		// Point 2: display-name impersonation.
		{name: "Table 3 005 display name spells our CEO's address", from: []string{`"ceo@agency.govt.nz" <evil@example.com>`}, mailFrom: "evil@example.com", spf: pass, code: "005"},
		{name: "Table 3 005 comment spells our address", from: []string{"CEO (ceo@agency.govt.nz) <x@evil.example>"}, mailFrom: "x@evil.example", spf: pass, code: "005"},
		{name: "Table 3 005 display name names our bare domain", from: []string{"AGENCY.GOVT.NZ Payroll <pay@evil.example>"}, mailFrom: "pay@evil.example", spf: pass, code: "005"},
		{name: "Table 3 005 encoded display name spells our address", from: []string{"=?utf-8?q?ceo=40agency=2Egovt=2Enz?= <evil@example.com>"}, mailFrom: "evil@example.com", spf: pass, code: "005"},
		{name: "Table 3 005 full-width at in the display name", from: []string{`"ceo＠agency.govt.nz" <evil@example.com>`}, mailFrom: "evil@example.com", spf: pass, code: "005"},
		{name: "Table 3 005 display-name spoof from a verified agency address", from: []string{`"ceo@agency.govt.nz" <bob@mfat.govt.nz>`}, mailFrom: "bob@mfat.govt.nz", spf: pass, code: "005"},
		{name: "Table 3 002 display name spells a participating agency", from: []string{`"minister@mfat.govt.nz" <x@evil.example>`}, mailFrom: "x@evil.example", spf: pass, code: "002"},
		{name: "R76 display name repeating the verified address is not warned", from: []string{`"ceo@agency.govt.nz" <ceo@agency.govt.nz>`}, mailFrom: "ceo@agency.govt.nz", spf: pass},
		{name: "R76 display name naming the sender's own agency is not warned", from: []string{"Minister (mfat.govt.nz) <minister@mfat.govt.nz>"}, mailFrom: "bounce@mail.mfat.govt.nz", spf: pass},

		// Point 3: verified means aligned.
		{name: "R76 SPF pass of the public suffix govt.nz verifies nothing below it", from: []string{"minister@open.govt.nz"}, mailFrom: "x@govt.nz", spf: pass, code: "002"},
		{name: "R76 SPF pass of a sibling agency is not aligned", from: []string{"minister@mfat.govt.nz"}, mailFrom: "x@mbie.govt.nz", spf: pass, code: "002"},
		{name: "R76 SPF pass of the organisational domain verifies a subdomain", from: []string{"minister@policy.mfat.govt.nz"}, mailFrom: "x@mfat.govt.nz", spf: pass},
		{name: "R76 SPF pass of a subdomain verifies the organisational domain", from: []string{"minister@mfat.govt.nz"}, mailFrom: "x@mail.mfat.govt.nz", spf: pass},
		{name: "R76 aligned SPF pass without TLS does not verify", from: []string{"minister@mfat.govt.nz"}, mailFrom: "x@mfat.govt.nz", spf: pass, plain: true, code: "002"},
		{name: "R76 DMARC pass for the From: domain verifies", from: []string{"minister@mfat.govt.nz"}, mailFrom: "x@gmail.example", spf: pass,
			dmarc: &DMARCCheck{Result: ResultPass, FromDomain: "mfat.govt.nz", DKIMAligned: true}},
		{name: "R76 DMARC pass for another domain does not verify", from: []string{"minister@mfat.govt.nz"}, mailFrom: "x@gmail.example", spf: pass,
			dmarc: &DMARCCheck{Result: ResultPass, FromDomain: "gmail.example", SPFAligned: true}, code: "002"},
		{name: "Table 3 005 covers subdomains of our domains", from: []string{"x@deep.agency.govt.nz"}, mailFrom: "x@gmail.example", code: "005"},
		{name: "Table 3 005 not given for our subdomain when verified", from: []string{"x@deep.agency.govt.nz"}, mailFrom: "x@agency.govt.nz", spf: pass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, `outbound.secure_domains=["*.govt.nz"]`, `inbound.dmarc="tag"`)
			var hs []Header
			for _, f := range c.from {
				hs = append(hs, Header{Name: "From", Value: f})
			}
			hs = append(hs, hdrs("Subject", "s")...)
			conn := Conn{ClientIP: internetIP, TLS: tls13}
			if c.plain {
				conn.TLS = TLSInfo{}
			}
			tx := Transaction{Conn: conn, Envelope: Envelope{From: c.mailFrom, Rcpts: []string{"bob@agency.govt.nz"}},
				Headers: hs, Mail: MailChecks{SPF: c.spf}, Message: MessageChecks{DMARC: c.dmarc}}
			v := p.AtEndOfMessage(tx)
			if v.WarningCode != c.code || v.Action != Accept {
				t.Errorf("got warning %q action %s, want %q accept (reasons %q)", v.WarningCode, v.Action, c.code, v.Reasons)
			}
			if c.code != "" && v.WarningMode == "" {
				t.Errorf("warning %s has no mode", v.WarningCode)
			}
		})
	}
}

// Issue 12 point 2: the display-name spoof of our CEO is warned under every
// profile.
func TestDisplayNameSpoofEveryProfile(t *testing.T) {
	for _, profile := range []string{ProfileSGE, ProfileSecureMail, ProfileSEEMail} {
		p := mustPolicy(t, `profile="`+profile+`"`, `inbound.dmarc="tag"`)
		tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "evil@example.com", Rcpts: []string{"bob@agency.govt.nz"}},
			Headers: hdrs("From", `"ceo@agency.govt.nz" <evil@example.com>`), Mail: MailChecks{SPF: &AuthCheck{Result: ResultPass}}}
		if v := p.AtEndOfMessage(tx); v.WarningCode != WarningOwnAgency || v.WarningMode == "" {
			t.Errorf("%s: warning %q mode %q (reasons %q)", profile, v.WarningCode, v.WarningMode, v.Reasons)
		}
	}
}

// Issue 12 point 7, R66: Sender:, Resent-From: and Resent-Sender: naming
// anyone but the authenticated user, or outside our domains, are refused
// like a mismatched From:; From: is read by the one author parser.
func TestOutboundIdentityHeaders(t *testing.T) {
	alice := "alice@agency.govt.nz"
	cases := []struct {
		name    string
		auth    string
		headers []Header
		want    string // "" accepted
	}{
		{"R66 Sender: another user", "alice", hdrs("From", alice, "Sender", "Bob <bob@agency.govt.nz>"), `Sender: address <bob@agency.govt.nz> does not match the authenticated sender "alice" (R66)`},
		{"R66 Sender: outside our domains", "alice", hdrs("From", alice, "Sender", "alice@example.com"), "Sender: address <alice@example.com> is not in one of this agency's domains (R66)"},
		{"R66 Resent-From: another user", "alice", hdrs("From", alice, "Resent-From", "bob@agency.govt.nz"), "Resent-From: address <bob@agency.govt.nz> does not match"},
		{"R66 Resent-From: list with another user", "alice", hdrs("From", alice, "Resent-From", "alice@agency.govt.nz, bob@agency.govt.nz"), "Resent-From: address <bob@agency.govt.nz>"},
		{"R66 Resent-Sender: outside our domains", "alice", hdrs("From", alice, "Resent-Sender", "x@evil.example"), "Resent-Sender: address <x@evil.example> is not in one of this agency's domains"},
		{"R66 header name in any case", "alice", hdrs("From", alice, "SENDER", "bob@agency.govt.nz"), "Sender: address <bob@agency.govt.nz>"},
		{"R66 Sender: unparseable", "alice", hdrs("From", alice, "Sender", `"Bob <bob@agency.govt.nz>`), "Sender: header"},
		{"R66 Sender: blank", "alice", hdrs("From", alice, "Sender", " "), "Sender: header names no address (R66)"},
		{"R66 second Sender: another user", "alice", hdrs("From", alice, "Sender", alice, "Sender", "bob@agency.govt.nz"), "Sender: address <bob@agency.govt.nz>"},
		{"R66 without SASL Sender: outside our domains", "", hdrs("From", "cron@agency.govt.nz", "Sender", "cron@example.org"), "Sender: address <cron@example.org>"},
		{"R65 unclosed quote in From:", "alice", hdrs("From", `"Alice <alice@agency.govt.nz>`), "not a valid address (R65)"},
		{"R66 From: of another user with an unquoted comma", "alice", hdrs("From", "Example, Bob <bob@agency.govt.nz>"), "From: address <bob@agency.govt.nz> does not match"},
		{"R66 Sender: the user", "alice", hdrs("From", alice, "Sender", "Alice <Alice@agency.govt.nz>", "Resent-From", alice, "Resent-Sender", alice), ""},
		{"R66 From: with an unquoted comma", "alice", hdrs("From", "Example, Alice <alice@agency.govt.nz>"), ""},
		{"R66 without SASL Sender: in our domains", "", hdrs("From", "cron@agency.govt.nz", "Sender", "ops@agency.govt.nz"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, `internal_networks=["10.0.0.0/8"]`)
			tx := Transaction{Conn: Conn{ClientIP: netip.MustParseAddr("10.0.0.5")}, Envelope: Envelope{AuthUser: c.auth}, Headers: c.headers}
			v := p.AtEndOfMessage(tx)
			if c.want == "" {
				if v.Action != Accept {
					t.Fatalf("want accept, got %s %v", v.Action, v.Reply)
				}
				return
			}
			if v.Action != Reject || v.Reply == nil || v.Reply.Code != 550 || v.Reply.Status != "5.7.1" {
				t.Fatalf("want 550 5.7.1, got %s %v", v.Action, v.Reply)
			}
			if !strings.Contains(v.Reply.Text, c.want) {
				t.Errorf("reply %q, want it to contain %q", v.Reply.Text, c.want)
			}
		})
	}
}

// inbound.lookalike: a From: domain that looks like one of ours (005) or
// a secure-list entry (002) without being it is impersonation, verified
// or not; real agencies (on a list, a peer certificate held, an S/MIME
// signature named for the domain) and unrelated domains are not warned.
func TestInboundLookalikeAuthor(t *testing.T) {
	pass := &AuthCheck{Result: ResultPass, Scope: "mfrom"}
	dmarcPass := func(d string) *DMARCCheck { return &DMARCCheck{Result: ResultPass, FromDomain: d, SPFAligned: true} }
	cases := []struct {
		name, from, mailFrom string
		dmarc                *DMARCCheck
		peer                 bool   // a peer certificate held for the From: domain
		smime                bool   // an S/MIME signature verified and named for it
		untrusted            bool   // ... under a certificate that chains to no accredited CA
		off                  bool   // inbound.lookalike = "off"
		allow                string // outbound.lookalike_allow
		code                 string
	}{
		{name: "Cyrillic a in our domain", from: "ceo@\u0430gency.govt.nz", mailFrom: "x@evil.example", code: "005"},
		{name: "gov.nz for govt.nz, verified by its own DMARC", from: "ceo@agency.gov.nz", mailFrom: "ceo@agency.gov.nz", dmarc: dmarcPass("agency.gov.nz"), code: "005"},
		{name: "hyphen for a dot", from: "ceo@agency-govt.nz", mailFrom: "x@evil.example", code: "005"},
		{name: "a typing error", from: "ceo@agnecy.govt.nz", mailFrom: "x@evil.example", code: "005"},
		{name: "our domain followed by more labels", from: "ceo@agency.govt.nz.evil.example", mailFrom: "x@evil.example", code: "005"},
		{name: "unreadable From: with a lookalike", from: "CEO <ceo@agency.gov.nz", mailFrom: "x@evil.example", code: "005"},
		{name: "a participating agency's lookalike", from: "minister@mfat.govt.nz.example", mailFrom: "x@evil.example", code: "002"},
		{name: "1 for l in a participating agency", from: "refunds@1rd.govt.nz", mailFrom: "x@evil.example", dmarc: dmarcPass("1rd.govt.nz"), code: "002"},
		{name: "the participating agency itself, verified", from: "minister@mfat.govt.nz", mailFrom: "x@mfat.govt.nz", dmarc: dmarcPass("mfat.govt.nz")},
		{name: "a lookalike we hold a peer certificate for is an agency", from: "x@agencyb.govt.nz", mailFrom: "x@agencyb.govt.nz", peer: true},
		{name: "a lookalike whose S/MIME signature verified is an agency", from: "x@agencyb.govt.nz", mailFrom: "x@agencyb.govt.nz", smime: true},
		// Table 1's 102 (UNVERIFIED, untrusted certificate) comes first.
		{name: "a lookalike's signature under a self-made certificate is still warned", from: "x@agencyb.govt.nz", mailFrom: "x@agencyb.govt.nz", smime: true, untrusted: true, code: "102"},
		{name: "the same without either is warned", from: "x@agencyb.govt.nz", mailFrom: "x@agencyb.govt.nz", dmarc: dmarcPass("agencyb.govt.nz"), code: "005"},
		{name: "inbound.lookalike off", from: "ceo@agency.gov.nz", mailFrom: "x@evil.example", off: true},
		{name: "a lookalike of ours in the display name", from: "\"ceo@\u0430gency.govt.nz\" <x@evil.example>", mailFrom: "x@evil.example", dmarc: dmarcPass("evil.example"), code: "005"},
		{name: "a lookalike of an agency in a comment", from: "x@evil.example (minister@mfat.govt.nz.example)", mailFrom: "x@evil.example", dmarc: dmarcPass("evil.example"), code: "002"},
		{name: "a display name naming an unrelated domain", from: "\"news from example.org\" <x@evil.example>", mailFrom: "x@evil.example", dmarc: dmarcPass("evil.example")},
		{name: "an unrelated domain", from: "bob@example.com", mailFrom: "bob@example.com", dmarc: dmarcPass("example.com")},
		{name: "a short name of its own", from: "x@moh.govt.nz", mailFrom: "x@moh.govt.nz", dmarc: dmarcPass("moh.govt.nz")},
		{name: "a correspondent the administrator allows", from: "x@agencyb.govt.nz", mailFrom: "x@agencyb.govt.nz", dmarc: dmarcPass("agencyb.govt.nz"), allow: "agencyb.govt.nz"},
		{name: "allowed by a wildcard", from: "x@mail.agencyb.govt.nz", mailFrom: "x@mail.agencyb.govt.nz", dmarc: dmarcPass("mail.agencyb.govt.nz"), allow: "*.agencyb.govt.nz"},
		{name: "another lookalike than the one allowed", from: "ceo@agency.gov.nz", mailFrom: "x@evil.example", allow: "agencyb.govt.nz", code: "005"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sets := []string{`outbound.secure_domains=["mfat.govt.nz","ird.govt.nz"]`, `inbound.dmarc="tag"`}
			if c.off {
				sets = append(sets, `inbound.lookalike="off"`)
			}
			if c.allow != "" {
				sets = append(sets, `outbound.lookalike_allow=["`+c.allow+`"]`)
			}
			p := mustPolicy(t, sets...)
			tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: c.mailFrom, Rcpts: []string{"bob@agency.govt.nz"}},
				Headers: hdrs("From", c.from, "Subject", "s"), Mail: MailChecks{SPF: pass}, Message: MessageChecks{DMARC: c.dmarc}}
			if c.peer {
				tx.SMIMEOut.Peers = map[string]SMIMEPeer{"agencyb.govt.nz": {HasCerts: true}}
			}
			if c.smime {
				in := verifiedIn()
				in.SignerAddress, in.SignerDomains, in.FromDomain = "domain-confidentiality-authority@agencyb.govt.nz", []string{"agencyb.govt.nz"}, "agencyb.govt.nz"
				if c.untrusted {
					in.SignerState = smime.StateUntrusted
				}
				tx.SMIMEIn = in
			}
			v := p.AtEndOfMessage(tx)
			if v.WarningCode != c.code {
				t.Errorf("got warning %q, want %q (reasons %q)", v.WarningCode, c.code, v.Reasons)
			}
			if (c.code == "005" || c.code == "002") && !strings.Contains(strings.Join(v.Reasons, " "), "looks like") {
				t.Errorf("the reason does not name the domain it looks like: %q", v.Reasons)
			}
		})
	}
}

// TestOnBehalfWarning: Sender:, Resent-Sender: and Resent-From: naming our
// domain (a participating agency) on mail from outside are warned 005
// (002) unless verified: Outlook shows "SENDER on behalf of FROM", so a
// Sender: of ours puts our name on a stranger's message (R76).
func TestOnBehalfWarning(t *testing.T) {
	pass := &AuthCheck{Result: ResultPass, Scope: "mfrom"}
	praPass := func(field, id string) *AuthCheck {
		return &AuthCheck{Result: ResultPass, Scope: "pra", Field: field, Identity: id}
	}
	cases := []struct {
		name     string
		headers  []string
		mailFrom string
		pra      *AuthCheck
		dmarc    *DMARCCheck
		noTLS    bool
		code     string
	}{
		{name: "Sender: ours, From: elsewhere", headers: []string{"From", "x@evil.example", "Sender", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", code: "005"},
		{name: "Sender: below ours", headers: []string{"From", "x@evil.example", "Sender", "CEO <ceo@mail.agency.govt.nz>"}, mailFrom: "x@evil.example", code: "005"},
		{name: "Resent-From: ours", headers: []string{"From", "x@evil.example", "Resent-From", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", code: "005"},
		{name: "Resent-Sender: a participating agency", headers: []string{"From", "x@evil.example", "Resent-Sender", "minister@mfat.govt.nz"}, mailFrom: "x@evil.example", code: "002"},
		{name: "Sender: unreadable, naming ours", headers: []string{"From", "x@evil.example", "Sender", "CEO <ceo@agency.govt.nz"}, mailFrom: "x@evil.example", code: "005"},
		{name: "Sender: two addresses, one ours", headers: []string{"From", "x@evil.example", "Sender", "a@evil.example, ceo@agency.govt.nz"}, mailFrom: "x@evil.example", code: "005"},
		{name: "Sender: ours, verified by SPF of an aligned MAIL FROM", headers: []string{"From", "x@evil.example", "Sender", "ceo@agency.govt.nz"}, mailFrom: "bounce@agency.govt.nz"},
		{name: "Sender: ours, verified by its PRA check", headers: []string{"From", "x@evil.example", "Sender", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", pra: praPass("sender", "ceo@agency.govt.nz")},
		{name: "a PRA pass of another field verifies nothing here", headers: []string{"From", "x@evil.example", "Sender", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", pra: praPass("resent-from", "ceo@agency.govt.nz"), code: "005"},
		{name: "a PRA pass without TLS verifies nothing", headers: []string{"From", "x@evil.example", "Sender", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", pra: praPass("sender", "ceo@agency.govt.nz"), noTLS: true, code: "005"},
		{name: "a verified author's colleague in the same organisation", headers: []string{"From", "minister@mfat.govt.nz", "Sender", "pa@mail.mfat.govt.nz"}, mailFrom: "x@mfat.govt.nz",
			dmarc: &DMARCCheck{Result: ResultPass, FromDomain: "mfat.govt.nz", DKIMAligned: true}},
		{name: "a DMARC pass of another organisation verifies nothing here", headers: []string{"From", "x@evil.example", "Sender", "minister@mfat.govt.nz"}, mailFrom: "x@evil.example",
			dmarc: &DMARCCheck{Result: ResultPass, FromDomain: "evil.example", DKIMAligned: true}, code: "002"},
		{name: "a mailing list's Sender:", headers: []string{"From", "x@example.org", "Sender", "list-bounces@lists.example.org"}, mailFrom: "list-bounces@lists.example.org"},
		{name: "no on-behalf field", headers: []string{"From", "x@example.org"}, mailFrom: "x@example.org"},
		// The From: rule comes first and says why.
		{name: "From: ours as well", headers: []string{"From", "ceo@agency.govt.nz", "Sender", "ceo@agency.govt.nz"}, mailFrom: "x@evil.example", code: "005"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, `outbound.secure_domains=["mfat.govt.nz"]`, `inbound.dmarc="tag"`, `inbound.min_tls="none"`)
			conn := Conn{ClientIP: internetIP, TLS: tls13}
			if c.noTLS {
				conn.TLS = TLSInfo{}
			}
			tx := Transaction{Conn: conn, Envelope: Envelope{From: c.mailFrom, Rcpts: []string{"bob@agency.govt.nz"}},
				Headers: hdrs(append(c.headers, "Subject", "s")...), Mail: MailChecks{SPF: pass}, Header: HeaderChecks{SenderIDPRA: c.pra}, Message: MessageChecks{DMARC: c.dmarc}}
			v := p.AtEndOfMessage(tx)
			if v.WarningCode != c.code {
				t.Errorf("got warning %q, want %q (reasons %q)", v.WarningCode, c.code, v.Reasons)
			}
		})
	}
}
