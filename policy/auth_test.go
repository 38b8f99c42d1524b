package policy

import (
	"context"
	"io"
	"strings"
	"testing"
)

// fakeChecker returns fixed results and remembers what was asked of it.
type fakeChecker struct {
	mc    MailChecks
	hc    HeaderChecks
	msg   MessageChecks
	asked *Wants
}

func (f fakeChecker) Message(_ context.Context, w Wants, _ Conn, _ Envelope, _ []Header, _ MailChecks, _ io.Reader) MessageChecks {
	var m MessageChecks
	if w.DKIM {
		m.DKIM = f.msg.DKIM
	}
	if w.DMARC {
		m.DMARC = f.msg.DMARC
	}
	return m
}

func noBody() io.Reader { return strings.NewReader("") }

func (f fakeChecker) Mail(_ context.Context, w Wants, _ Conn, _ Envelope) MailChecks {
	if f.asked != nil {
		*f.asked = w
	}
	var mc MailChecks
	if w.SPF {
		mc.SPF, mc.SPFHelo = f.mc.SPF, f.mc.SPFHelo
	}
	if w.SenderIDMF {
		mc.SenderIDMF = f.mc.SenderIDMF
	}
	return mc
}

func (f fakeChecker) Headers(_ context.Context, w Wants, _ Conn, _ Envelope, _ MailChecks, _ []Header) HeaderChecks {
	if !w.SenderIDPRA {
		return HeaderChecks{}
	}
	return f.hc
}

func spfResult(result CheckResult, all string) *AuthCheck {
	return &AuthCheck{Result: result, Scope: "mfrom", Identity: "user@sender.example", Domain: "sender.example", RecordFound: result != ResultNone, AllQualifier: all}
}

func praResult(result CheckResult, all string) *AuthCheck {
	return &AuthCheck{Result: result, Scope: "pra", Identity: "user@sender.example", Domain: "sender.example", RecordFound: result != ResultNone, AllQualifier: all}
}

var strongTLS = TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", CipherBits: 256}

// M-RCV-SPF, M-RCV-SID, M-SEC, M-RCV-SM through Evaluate, as `check` runs them.
func TestSenderChecks(t *testing.T) {
	failExp := spfResult(ResultFail, "-")
	failExp.Explanation = "sender.example does not send from 203.0.113.9"
	cases := []struct {
		name    string
		sets    []string
		from    string
		tls     TLSInfo
		mc      MailChecks
		hc      HeaderChecks
		msg     MessageChecks
		code    int // 0: accepted
		status  string
		text    string
		stage   Stage
		noCheck bool // no check must be asked for
	}{
		{name: "M-RCV-SPF enforce pass accepted", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: spfResult(ResultPass, "-")}},
		{name: "M-RCV-SPF enforce fail refused with the explanation", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: failExp},
			code: 550, status: "5.7.23", text: "SPF check failed for user@sender.example: sender.example does not send from 203.0.113.9", stage: StageEOM},
		{name: "M-RCV-SPF enforce fail without exp", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: spfResult(ResultFail, "-")},
			code: 550, status: "5.7.23", text: "not authorised to send mail for sender.example", stage: StageEOM},
		{name: "M-RCV-SPF enforce permerror refused", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: &AuthCheck{Result: ResultPermError, Scope: "mfrom", Domain: "sender.example", Detail: "spf: syntax error"}},
			code: 550, status: "5.7.24", text: "SPF record of sender.example is not valid: spf: syntax error", stage: StageEOM},
		{name: "M-RCV-SPF enforce temperror 451 never accept", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: spfResult(ResultTempError, "")},
			code: 451, status: "4.4.3", text: "Temporary DNS failure checking SPF for sender.example", stage: StageMail},
		{name: "M-RCV-SPF enforce softfail accepted", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: spfResult(ResultSoftFail, "~")}},
		{name: "M-RCV-SPF enforce none accepted", sets: []string{"inbound.spf=enforce"}, mc: MailChecks{SPF: spfResult(ResultNone, "")}},
		{name: "M-RCV-SPF enforce null sender HELO fail refused", sets: []string{"inbound.spf=enforce"}, from: "<>",
			mc:   MailChecks{SPFHelo: &AuthCheck{Result: ResultFail, Scope: "helo", Identity: "postmaster@mx.sender.example", Domain: "mx.sender.example", RecordFound: true}},
			code: 550, status: "5.7.23", text: "postmaster@mx.sender.example", stage: StageEOM},
		// Issue 12 point 5: SPF fail refused under every profile's default;
		// the one way out is DMARC passing through aligned DKIM (RFC 7489
		// section 10.1), so the refusal waits for the body.
		{name: "M-RCV-SPF sge default refuses fail at end of message", mc: MailChecks{SPF: failExp},
			code: 550, status: "5.7.23", text: "sender.example does not send from 203.0.113.9 (M-RCV-SPF)", stage: StageEOM},
		{name: "M-RCV-SPF seemail default refuses fail", sets: []string{"profile=seemail"}, mc: MailChecks{SPF: failExp},
			code: 550, status: "5.7.23", text: "SPF check failed", stage: StageEOM},
		{name: "M-RCV-SPF fail with DMARC pass through aligned DKIM delivered (forwarding)", mc: MailChecks{SPF: failExp},
			msg: MessageChecks{DKIM: []DKIMCheck{{Result: "pass", Domain: "sender.example"}},
				DMARC: &DMARCCheck{Result: "pass", Disposition: "none", Published: "reject", FromDomain: "sender.example", DKIMAligned: true}}},
		{name: "M-RCV-SPF permerror with DMARC pass through aligned DKIM delivered", mc: MailChecks{SPF: &AuthCheck{Result: ResultPermError, Scope: "mfrom", Domain: "sender.example", Detail: "too many lookups"}},
			msg: MessageChecks{DMARC: &DMARCCheck{Result: "pass", Disposition: "none", FromDomain: "sender.example", DKIMAligned: true}}},
		{name: "M-RCV-SPF fail with an unaligned DKIM pass refused", mc: MailChecks{SPF: failExp},
			msg:  MessageChecks{DKIM: []DKIMCheck{{Result: "pass", Domain: "list.example"}}, DMARC: &DMARCCheck{Result: "fail", Disposition: "none", Published: "none", FromDomain: "sender.example"}},
			code: 550, status: "5.7.23", text: "SPF check failed", stage: StageEOM},
		{name: "M-RCV-SPF fail with DMARC none (no record) refused", mc: MailChecks{SPF: failExp},
			msg:  MessageChecks{DMARC: &DMARCCheck{Result: "none", Disposition: "none", FromDomain: "sender.example"}},
			code: 550, status: "5.7.23", text: "SPF check failed", stage: StageEOM},
		{name: "M-RCV-SPF fail refused at MAIL FROM when DMARC is off (nothing can save it)", sets: []string{"inbound.dmarc=off"}, mc: MailChecks{SPF: failExp},
			code: 550, status: "5.7.23", text: "SPF check failed", stage: StageMail},
		{name: "M-RCV-SPF temperror answered at MAIL FROM", mc: MailChecks{SPF: spfResult(ResultTempError, "")},
			code: 451, status: "4.4.3", text: "Temporary DNS failure checking SPF", stage: StageMail},
		{name: "M-RCV-SID sge default records a PRA fail", hc: HeaderChecks{SenderIDPRA: praResult(ResultFail, "-")}},
		{name: "M-RCV-SPF tag never refuses", sets: []string{"inbound.spf=tag"}, mc: MailChecks{SPF: spfResult(ResultFail, "-")}},
		{name: "M-RCV-SPF off asks for nothing", sets: []string{"inbound.spf=off", "inbound.dmarc=off", "inbound.dkim=off", "inbound.senderid=off"}, mc: MailChecks{SPF: spfResult(ResultFail, "-")}, noCheck: true},
		{name: "M-RCV-SID enforce PRA fail refused at end of headers", sets: []string{"inbound.senderid=enforce"}, hc: HeaderChecks{SenderIDPRA: praResult(ResultFail, "-")},
			code: 550, status: "5.7.1", text: "Sender ID check failed: sender.example is not authorised to send as user@sender.example (M-RCV-SID)", stage: StageHeaders},
		{name: "M-RCV-SID enforce temperror 451", sets: []string{"inbound.senderid=enforce"}, hc: HeaderChecks{SenderIDPRA: praResult(ResultTempError, "")},
			code: 451, status: "4.4.3", text: "Sender ID", stage: StageHeaders},
		{name: "M-RCV-SID tag accepts a fail", sets: []string{"inbound.senderid=tag"}, hc: HeaderChecks{SenderIDPRA: praResult(ResultFail, "-")}},

		// M-SEC at a SecureMail receiver (profile securemail).
		{name: "M-SEC all pass over strong TLS accepted", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc: MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")}, hc: HeaderChecks{SenderIDPRA: praResult(ResultPass, "-")}},
		{name: "M-SEC SPF record missing", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultNone, ""), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.1", text: "sender.example publishes no SPF record", stage: StageMail},
		{name: "M-SEC SPF ~all", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultPass, "~"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.1", text: `the SPF record of sender.example does not end in "-all"`, stage: StageMail},
		{name: "M-SEC SPF neutral", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultNeutral, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.1", text: "gives neutral, not pass", stage: StageMail},
		{name: "M-SEC Sender ID missing", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultNone, "")},
			code: 550, status: "5.7.1", text: "publishes no Sender ID record", stage: StageMail},
		// Issue 12 point 6: "spf2.0/pra ... -all" alone is a Sender ID
		// record; the PRA check at end of headers decides.
		{name: "M-SEC spf2.0/pra alone is a Sender ID record: PRA pass accepted", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc: MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: &AuthCheck{Result: ResultNone, Scope: "mfrom", Domain: "sender.example", OtherScopeRecord: true}},
			hc: HeaderChecks{SenderIDPRA: praResult(ResultPass, "-")}},
		{name: "M-SEC spf2.0/pra alone: PRA fail refused at end of headers", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: &AuthCheck{Result: ResultNone, Scope: "mfrom", Domain: "sender.example", OtherScopeRecord: true}},
			hc:   HeaderChecks{SenderIDPRA: praResult(ResultFail, "-")},
			code: 550, status: "5.7.1", text: "Sender ID (PRA) record of sender.example gives fail", stage: StageHeaders},
		{name: "M-SEC spf2.0/pra ~all alone refused at end of headers", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: &AuthCheck{Result: ResultNone, Scope: "mfrom", Domain: "sender.example", OtherScopeRecord: true}},
			hc:   HeaderChecks{SenderIDPRA: praResult(ResultPass, "~")},
			code: 550, status: "5.7.1", text: `does not end in "-all"`, stage: StageHeaders},
		{name: "M-SEC spf2.0/mfrom alone: the PRA check without record defers to it", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc: MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			hc: HeaderChecks{SenderIDPRA: &AuthCheck{Result: ResultNone, Scope: "pra", Domain: "sender.example", OtherScopeRecord: true}}},
		{name: "M-SEC PRA record ~all", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc: MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")}, hc: HeaderChecks{SenderIDPRA: praResult(ResultPass, "~")},
			code: 550, status: "5.7.1", text: "Sender ID (PRA) record", stage: StageHeaders},
		{name: "M-SEC temperror 451", sets: []string{"profile=securemail"}, tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultTempError, ""), SenderIDMF: spfResult(ResultPass, "-")},
			code: 451, status: "4.4.3", text: "(M-SEC)", stage: StageMail},
		{name: "M-SEC plaintext", sets: []string{"profile=securemail"},
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.10", text: "the session does not use TLS", stage: StageMail},
		{name: "M-SEC TLS 1.2 without forward secrecy", sets: []string{"profile=securemail"}, tls: TLSInfo{Version: "TLSv1.2", Cipher: "AES256-GCM-SHA384", CipherBits: 256},
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.10", text: "no forward-secret key exchange", stage: StageMail},
		{name: "M-SEC TLS 1.2 CBC cipher", sets: []string{"profile=securemail"}, tls: TLSInfo{Version: "TLSv1.2", Cipher: "ECDHE-RSA-AES256-SHA384", CipherBits: 256},
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.10", text: "not an AEAD cipher", stage: StageMail},
		{name: "M-SEC TLS 1.2 ECDHE GCM accepted", sets: []string{"profile=securemail"}, tls: TLSInfo{Version: "TLSv1.2", Cipher: "ECDHE-RSA-AES128-GCM-SHA256", CipherBits: 128},
			mc: MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")}, hc: HeaderChecks{SenderIDPRA: praResult(ResultPass, "-")}},
		{name: "M-SEC cipher bits below minimum", sets: []string{"profile=securemail", "msec.min_cipher_bits=256"}, tls: TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", CipherBits: 128},
			mc:   MailChecks{SPF: spfResult(ResultPass, "-"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.10", text: "has 128 bits, below 256", stage: StageMail},

		// M-RCV-SM: apparent SecureMail senders under any profile.
		{name: "M-RCV-SM securemail sender with ~all under sge", from: "user@securemail.sender.example", tls: strongTLS,
			mc:   MailChecks{SPF: spfResult(ResultPass, "~"), SenderIDMF: spfResult(ResultPass, "-")},
			code: 550, status: "5.7.1", text: "(M-SEC)", stage: StageMail},
		{name: "M-RCV-SM ordinary sender under sge not held to M-SEC", tls: strongTLS, mc: MailChecks{SPF: spfResult(ResultNone, "")}},
		{name: "M-RCV-SM can be turned off", sets: []string{"inbound.securemail_senders=false"}, from: "user@securemail.sender.example", tls: strongTLS,
			mc: MailChecks{SPF: spfResult(ResultPass, "~")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, c.sets...)
			from := "user@sender.example"
			if c.from == "<>" {
				from = ""
			} else if c.from != "" {
				from = c.from
			}
			tls := c.tls
			if tls.Version == "" && p.Inbound.MinTLS != "none" {
				tls = strongTLS
			}
			var asked Wants
			tx := Transaction{Conn: Conn{ClientIP: internetIP, HELO: "mx.sender.example", TLS: tls}, Envelope: Envelope{From: from, Rcpts: []string{"bob@agency.govt.nz"}},
				Headers: hdrs("From", "User <user@sender.example>")}
			v := p.Evaluate(context.Background(), tx, fakeChecker{mc: c.mc, hc: c.hc, msg: c.msg, asked: &asked}, noBody)
			if c.noCheck && asked.Any() {
				t.Errorf("checks asked for: %+v", asked)
			}
			if c.code == 0 {
				if v.Action != Accept {
					t.Fatalf("want accept, got %s %v", v.Action, v.Reply)
				}
				return
			}
			if v.Reply == nil || v.Reply.Code != c.code || v.Reply.Status != c.status || !strings.Contains(v.Reply.Text, c.text) || v.Stage != c.stage {
				t.Fatalf("got %s at %s: %v; want %d %s %q at %s", v.Action, v.Stage, v.Reply, c.code, c.status, c.text, c.stage)
			}
			if len(v.Checks) == 0 {
				t.Error("refusal without the checks that decided it")
			}
		})
	}
}

// Outbound mail asks for no sender checks at all.
func TestNoChecksOutbound(t *testing.T) {
	p := mustPolicy(t, "profile=securemail")
	if w := p.Wants(Conn{ClientIP: internetIP}, Envelope{AuthUser: "alice", From: "alice@agency.govt.nz"}); w.Any() {
		t.Errorf("outbound wants %+v", w)
	}
}

// RFC 8601: results recorded; headers claiming our authserv-id removed.
func TestAuthenticationResults(t *testing.T) {
	p := mustPolicy(t, "inbound.senderid=tag")
	tx := Transaction{
		Conn:     Conn{ClientIP: internetIP, TLS: strongTLS},
		Envelope: Envelope{From: "user@sender.example"},
		Headers: hdrs("Authentication-Results", "mx.agency.govt.nz; spf=pass smtp.mailfrom=forged@sender.example",
			"Authentication-Results", "(comment) MX.Agency.govt.nz; dkim=pass",
			"Authentication-Results", "other.example; spf=fail",
			"From", "user@sender.example"),
	}
	ck := fakeChecker{mc: MailChecks{SPF: spfResult(ResultPass, "-")}, hc: HeaderChecks{SenderIDPRA: praResult(ResultFail, "-")}}
	r := p.Evaluate(context.Background(), tx, ck, noBody).Report()
	if len(r.HeadersRemoved) != 2 || !strings.Contains(r.HeadersRemoved[0], "(comment) MX.Agency") || !strings.Contains(r.HeadersRemoved[1], "forged@") {
		t.Errorf("removed %q", r.HeadersRemoved)
	}
	want := "Authentication-Results: mx.agency.govt.nz;\n\tspf=pass smtp.mailfrom=user@sender.example;\n\tsender-id=fail header.from=user@sender.example"
	if len(r.HeadersAdded) != 1 || r.HeadersAdded[0] != want {
		t.Errorf("added %q\nwant %q", r.HeadersAdded, want)
	}
	if r.SPF != "pass" || r.SenderID != "fail" || r.SPFHelo != "" {
		t.Errorf("report results: %+v", r)
	}
}

// G-DMARC-IN: the sender's DMARC policy decides under enforce.
func TestDMARCEnforcement(t *testing.T) {
	dm := func(result CheckResult, disp, pub string) *DMARCCheck {
		return &DMARCCheck{Result: result, Disposition: disp, Published: pub, FromDomain: "bank.example", Reason: "why"}
	}
	cases := []struct {
		name   string
		sets   []string
		d      *DMARCCheck
		action Action
		reply  string
		held   bool
	}{
		{"G-DMARC-IN p=reject refused", nil, dm("fail", "reject", "reject"), Reject, "550 5.7.1 Message rejected by the DMARC policy of bank.example (p=reject)", false},
		{"G-DMARC-IN p=quarantine held for administrators", nil, dm("fail", "quarantine", "quarantine"), Quarantine, "", true},
		{"G-DMARC-IN pct sampled out: none", nil, dm("fail", "none", "reject"), Accept, "", false},
		{"G-DMARC-IN temperror 451", nil, dm("temperror", "none", ""), Tempfail, "451 4.4.3 Temporary DNS failure evaluating DMARC for bank.example", false},
		{"G-DMARC-IN several From: refused", nil, dm("permerror", "none", ""), Reject, "550 5.7.1 Message refused: DMARC cannot be evaluated: why", false},
		{"G-DMARC-IN pass accepted", nil, dm("pass", "none", "reject"), Accept, "", false},
		{"G-DMARC-IN tag never refuses", []string{"inbound.dmarc=tag"}, dm("fail", "reject", "reject"), Accept, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, c.sets...)
			tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: strongTLS}, Envelope: Envelope{From: "a@bank.example", QueueID: "QQ1"},
				Headers: hdrs("From", "a@bank.example")}
			v := p.Evaluate(context.Background(), tx, fakeChecker{msg: MessageChecks{DMARC: c.d}}, noBody)
			if v.Action != c.action {
				t.Fatalf("action %s, want %s (%v)", v.Action, c.action, v.Reply)
			}
			if c.reply != "" && (v.Reply == nil || !strings.HasPrefix(v.Reply.String(), c.reply)) {
				t.Errorf("reply %v, want %q", v.Reply, c.reply)
			}
			var heldNotice bool
			for _, n := range v.Notices {
				heldNotice = heldNotice || (n.Kind == NoticeHeld && n.Code == "002" && strings.Contains(n.Reason, "postsuper -H QQ1"))
			}
			if heldNotice != c.held {
				t.Errorf("held notice %v, want %v: %+v", heldNotice, c.held, v.Notices)
			}
			if r := v.Report(); v.Action == Accept && (r.DMARC == nil || r.DMARC.Result != c.d.Result) {
				t.Errorf("DMARC not reported: %+v", r.DMARC)
			}
		})
	}
}
