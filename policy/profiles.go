package policy

import (
	"net/netip"
	"time"
)

// profileDefaults returns the defaults of a profile, nil for an unknown name.
// REQUIREMENTS.md, "Profiles": sge enforces TLS 1.2 inbound (G-TLS); the
// 2005/2007 profiles accept plaintext from ordinary senders (M-RCV-TLS:
// "accept over TLS", refusal is for SecureMail senders, M-SEC).
func profileDefaults(profile string) *Policy {
	p := &Policy{
		Profile:          profile,
		InternalNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		OutboundDaemons:  []string{"ORIGINATING"},
		RecordTimes:      true,
		Limits:           LimitsPolicy{MaxMessageSize: 64 << 20, MemorySpool: 1 << 20},
		Outbound:         OutboundPolicy{TagSecureEmail: true},
		TLSPolicy:        TLSPolicyPolicy{Level: TLSEncrypt, MinTLS: "1.2", MTASTS: true},
		Runtime: Runtime{
			Listen:          ListenPolicy{Milter: "inet:127.0.0.1:8891"},
			Log:             LogPolicy{Level: "info"},
			DNS:             DNSPolicy{Timeout: 5 * time.Second},
			TLSPolicyListen: "inet:127.0.0.1:8461",
			Submit:          SubmitPolicy{Method: "sendmail", Sendmail: []string{"/usr/sbin/sendmail"}},
		},
	}
	// M-OUT / R110-R112 / R115 / G-DLP: what each classification may reach.
	p.Outbound.ByClass = map[string]Routing{
		Unclassified:    BestEffort,
		"IN-CONFIDENCE": SecureOnly,  // R115; under sge only over enforced TLS
		"SENSITIVE":     SEEMailOnly, // R112
		"RESTRICTED":    SEEMailOnly, // R112
		"CONFIDENTIAL":  Hold,        // R110
		"SECRET":        Hold,        // R110
		"TOP SECRET":    Hold,        // R110, M-OUT
	}
	p.Outbound.Partial = PartialSplit
	// Issue 17: a wrong address is never sent to, in every profile (spec
	// 000 "robust controls to prevent information being sent to the wrong
	// email address(es)"); the sender is told the likely intended domain.
	p.Outbound.Lookalike = LookalikeRefuse
	// Issue 17: first-contact holding is off in every profile: no source
	// document asks for it, and under "hold" every new correspondent's
	// first classified message waits for an administrator. "log" learns
	// the addresses first, so that "hold" later holds only new ones.
	p.Outbound.FirstContact = FirstContactOff
	p.Outbound.FirstContactState, p.Outbound.FirstContactMax = DefaultFirstContactState, DefaultFirstContactMax
	p.Classification.Unreadable = UnreadableHold
	p.Classification.Levels = map[string]int{}
	for w, r := range defaultLevels {
		p.Classification.Levels[w] = r
	}
	p.MSEC = MSECPolicy{MinTLS: "1.2", MinCipherBits: 128, ForwardSecrecy: true, AEAD: true}
	p.Inbound.SecureMailSenders = true // M-RCV-SM: every government receiver
	p.Inbound.WarningMode, p.Inbound.Unverified = WarnWrap, UnverifiedWarn
	p.Inbound.Lookalike = InboundLookalikeWarn
	p.Notify = NotifyPolicy{RateCount: 10, RateWindow: time.Hour}
	// R19-R21: the self-test, the same in every profile.
	p.Runtime.Selftest = defaultSelftest()
	p.SMIME = defaultSMIME() // off, on under seemail below (issue 14)
	p.Lists = defaultLists()
	switch profile {
	case ProfileSGE:
		p.Inbound.MinTLS = "1.2"
		// Spec 000: "enforce the mail sending policy specified by a sending
		// domain's SPF record"; spec 004 section 9: "v=spf1 -all" mail is
		// "rejected and dropped". A fail is refused unless DMARC passes
		// through an aligned DKIM signature (forwarding, RFC 7489 10.1).
		// Sender ID is evaluated and recorded (M-RCV-SID).
		p.Inbound.SPF, p.Inbound.SenderID = ModeEnforce, ModeTag
		p.Inbound.DKIM, p.Inbound.DMARC = ModeTag, ModeEnforce
		// G-DLP: "markings above IN-CONFIDENCE blocked" unless an exception.
		p.Outbound.ByClass["SENSITIVE"] = ExceptionOnly
		p.Outbound.ByClass["RESTRICTED"] = ExceptionOnly
	case ProfileSecureMail:
		p.Inbound.MinTLS = "none"
		// SecMx: "enforce the mail sending policy specified by a sending
		// domain's SPF record ... Sender ID record"; a SecureMail receiver
		// refuses senders failing M-SEC.
		p.Inbound.SPF, p.Inbound.SenderID = ModeEnforce, ModeEnforce
		p.Inbound.DKIM, p.Inbound.DMARC = ModeTag, ModeTag
		p.Inbound.SecureMailReceiver = true
	case ProfileSEEMail:
		p.Inbound.MinTLS = "none"
		// As sge: SPF enforced (spec 000), Sender ID recorded.
		p.Inbound.SPF, p.Inbound.SenderID = ModeEnforce, ModeTag
		p.Inbound.DKIM, p.Inbound.DMARC = ModeTag, ModeTag
		// SEEMail is domain S/MIME between agency gateways (R62-R72).
		p.SMIME.Mode = SMIMEOn
	default:
		return nil
	}
	return p
}

// defaultLevels orders the classification words (R109, R114, M-OUT): the
// highest found decides. SENSITIVE and RESTRICTED share a rank.
var defaultLevels = map[string]int{
	Unclassified: 0, "IN-CONFIDENCE": 1, "SENSITIVE": 2, "RESTRICTED": 2,
	"CONFIDENTIAL": 3, "SECRET": 4, "TOP SECRET": 5,
}
