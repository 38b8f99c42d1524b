package policy

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, sets ...string) *Policy {
	t.Helper()
	p, err := Load("", append([]string{`domains=["agency.govt.nz", "sub.agency.govt.nz"]`, `authserv_id="mx.agency.govt.nz"`}, sets...))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

var (
	internetIP = netip.MustParseAddr("203.0.113.9")
	tls13      = TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", CipherBits: 256}
)

func hdrs(kv ...string) []Header {
	var hs []Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, Header{Name: kv[i], Value: kv[i+1]})
	}
	return hs
}

func TestDirection(t *testing.T) {
	p := mustPolicy(t, `internal_networks=["10.0.0.0/8", "127.0.0.1"]`)
	cases := []struct {
		name string
		conn Conn
		env  Envelope
		want Direction
	}{
		{"internet client", Conn{ClientIP: internetIP}, Envelope{}, Inbound},
		{"SASL authenticated", Conn{ClientIP: internetIP}, Envelope{AuthUser: "alice"}, Outbound},
		{"internal network", Conn{ClientIP: netip.MustParseAddr("10.1.2.3")}, Envelope{}, Outbound},
		{"bare address as /32", Conn{ClientIP: netip.MustParseAddr("127.0.0.1")}, Envelope{}, Outbound},
		{"other loopback is not internal", Conn{ClientIP: netip.MustParseAddr("127.0.0.2")}, Envelope{}, Inbound},
		{"submission daemon", Conn{ClientIP: internetIP, Daemon: "ORIGINATING"}, Envelope{}, Outbound},
		{"other daemon", Conn{ClientIP: internetIP, Daemon: "mx.agency.govt.nz"}, Envelope{}, Inbound},
		{"unknown client address", Conn{}, Envelope{}, Inbound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := p.Direction(c.conn, c.env); got != c.want {
				t.Errorf("Direction = %s, want %s", got, c.want)
			}
		})
	}
}

// M-RCV-TLS / G-TLS: under sge, inbound plaintext or TLS below min_tls is
// refused at MAIL FROM with a 5.7.10 reply that says why.
func TestInboundTLS(t *testing.T) {
	cases := []struct {
		name     string
		sets     []string
		tls      TLSInfo
		auth     string
		wantCode int // 0: continue
		wantText string
	}{
		{"G-TLS sge plaintext refused", nil, TLSInfo{}, "", 530, "Must issue a STARTTLS command first: this gateway accepts mail only over TLS 1.2 or later"},
		{"G-TLS sge TLSv1 refused", nil, TLSInfo{Version: "TLSv1"}, "", 550, "TLSv1 is below the minimum TLS 1.2"},
		{"G-TLS sge TLSv1.1 refused", nil, TLSInfo{Version: "TLSv1.1"}, "", 550, "TLSv1.1 is below the minimum TLS 1.2"},
		{"G-TLS sge SSLv3 refused", nil, TLSInfo{Version: "SSLv3"}, "", 550, "SSLv3 is below"},
		{"G-TLS sge unrecognised version refused", nil, TLSInfo{Version: "bogus"}, "", 550, "bogus is below"},
		{"G-TLS sge TLSv1.2 accepted", nil, TLSInfo{Version: "TLSv1.2"}, "", 0, ""},
		// A session that does not encrypt, or barely, is plaintext.
		{"G-TLS sge NULL cipher refused", nil, TLSInfo{Version: "TLSv1.2", Cipher: "ECDHE-RSA-NULL-SHA", CipherBits: 0}, "", 550, "cipher ECDHE-RSA-NULL-SHA encrypts nothing"},
		{"G-TLS sge export cipher refused", nil, TLSInfo{Version: "TLSv1.2", Cipher: "EXP-RC4-MD5", CipherBits: 40}, "", 550, "is an export cipher"},
		{"G-TLS sge RC4 refused", nil, TLSInfo{Version: "TLSv1.2", Cipher: "RC4-SHA", CipherBits: 128}, "", 550, "is RC4 (RFC 7465)"},
		{"G-TLS sge 56-bit DES refused", nil, TLSInfo{Version: "TLSv1.2", Cipher: "DES-CBC-SHA", CipherBits: 56}, "", 550, "has 56 bits"},
		{"G-TLS sge 3DES accepted", nil, TLSInfo{Version: "TLSv1.2", Cipher: "DES-CBC3-SHA", CipherBits: 112}, "", 0, ""},
		{"G-TLS sge anonymous DH accepted (it encrypts)", nil, TLSInfo{Version: "TLSv1.2", Cipher: "ADH-AES256-GCM-SHA384", CipherBits: 256}, "", 0, ""},
		{"G-TLS sge cipher not reported accepted", nil, TLSInfo{Version: "TLSv1.2"}, "", 0, ""},
		{"G-TLS seemail NULL cipher not judged", []string{`profile="seemail"`}, TLSInfo{Version: "TLSv1.2", Cipher: "NULL-SHA"}, "", 0, ""},
		{"G-TLS sge TLSv1.3 accepted", nil, tls13, "", 0, ""},
		{"G-TLS sge future TLSv1.4 accepted", nil, TLSInfo{Version: "TLSv1.4"}, "", 0, ""},
		{"M-RCV-TLS min_tls 1.3 refuses 1.2", []string{`inbound.min_tls="1.3"`}, TLSInfo{Version: "TLSv1.2"}, "", 550, "below the minimum TLS 1.3"},
		{"M-RCV-TLS securemail (not a SecureMail receiver) accepts plaintext", []string{`profile="securemail"`, "inbound.securemail_receiver=false"}, TLSInfo{}, "", 0, ""},
		{"M-RCV-TLS seemail accepts plaintext", []string{`profile="seemail"`}, TLSInfo{}, "", 0, ""},
		{"M-RCV-TLS min_tls none", []string{`inbound.min_tls="none"`}, TLSInfo{}, "", 0, ""},
		{"G-TLS outbound is not an inbound rule", nil, TLSInfo{}, "alice", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, c.sets...)
			v := p.AtMailFrom(Conn{ClientIP: internetIP, TLS: c.tls}, Envelope{From: "x@example.com", AuthUser: c.auth}, MailChecks{})
			if c.wantCode == 0 {
				if v.Final() {
					t.Fatalf("want continue, got %s %v", v.Action, v.Reply)
				}
				return
			}
			if v.Action != Reject || v.Reply == nil || v.Reply.Code != c.wantCode || v.Reply.Status != "5.7.10" {
				t.Fatalf("want reject %d 5.7.10, got %s %v", c.wantCode, v.Action, v.Reply)
			}
			if !strings.Contains(v.Reply.Text, c.wantText) || !strings.Contains(v.Reply.Text, "G-TLS") {
				t.Errorf("reply %q does not say why (want %q and the rule)", v.Reply.Text, c.wantText)
			}
			if v.Stage != StageMail {
				t.Errorf("stage = %s, want mail", v.Stage)
			}
		})
	}
}

// R60: every client-supplied X-NZ-Secure-email is removed, in both
// directions, last first; compliant outbound mail gets one added.
func TestSecureEmailTag(t *testing.T) {
	p := mustPolicy(t)
	forged := hdrs("From", "alice@agency.govt.nz", "X-NZ-Secure-email", "one", "Subject", "s", "x-nz-secure-EMAIL", "two")

	t.Run("R60 inbound forged tags removed, none added", func(t *testing.T) {
		v := p.AtEndOfMessage(Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Headers: forged})
		if v.Action != Accept {
			t.Fatalf("action %s", v.Action)
		}
		// Deleted under the name as the MTA passed it.
		want := []HeaderEdit{
			{Op: OpDelete, Name: "x-nz-secure-EMAIL", Index: 2, Value: "two"},
			{Op: OpDelete, Name: SecureEmailHeader, Index: 1, Value: "one"},
		}
		if len(v.Edits) != len(want) {
			t.Fatalf("edits %+v, want %+v", v.Edits, want)
		}
		for i := range want {
			if v.Edits[i] != want[i] {
				t.Errorf("edit %d = %+v, want %+v", i, v.Edits[i], want[i])
			}
		}
	})
	t.Run("R60 outbound compliant tagged after removal", func(t *testing.T) {
		v := p.AtEndOfMessage(Transaction{Conn: Conn{ClientIP: internetIP}, Envelope: Envelope{AuthUser: "alice"}, Headers: forged})
		if v.Action != Accept || len(v.Edits) != 3 {
			t.Fatalf("got %s %+v", v.Action, v.Edits)
		}
		last := v.Edits[2]
		wantValue := `compliant; classification="UNCLASSIFIED"; profile=sge; gateway=mx.agency.govt.nz`
		if last.Op != OpAdd || last.Name != SecureEmailHeader || last.Value != wantValue {
			t.Errorf("added %+v, want %s: %s", last, SecureEmailHeader, wantValue)
		}
	})
	t.Run("R60 tagging can be turned off, removal cannot", func(t *testing.T) {
		p := mustPolicy(t, "outbound.tag_secure_email=false")
		v := p.AtEndOfMessage(Transaction{Envelope: Envelope{AuthUser: "alice"}, Headers: forged})
		for _, e := range v.Edits {
			if e.Op == OpAdd {
				t.Errorf("tag added although turned off: %+v", e)
			}
		}
		if len(v.Edits) != 2 {
			t.Errorf("forged tags not removed: %+v", v.Edits)
		}
	})
	t.Run("R60 refused outbound mail is not tagged", func(t *testing.T) {
		v := p.AtEndOfMessage(Transaction{Envelope: Envelope{AuthUser: "mallory"}, Headers: forged})
		if v.Action != Reject {
			t.Fatalf("want reject, got %s", v.Action)
		}
		if r := v.Report(); len(r.HeadersAdded) != 0 || len(r.HeadersRemoved) != 0 {
			t.Errorf("a refused message reports header edits: %+v", r)
		}
	})
}

// R65 / R66: outbound From: must exist, not be blank, be one address in one
// of our domains and match the authenticated sender. No key turns it off.
func TestOutboundFrom(t *testing.T) {
	cases := []struct {
		name    string
		auth    string
		headers []Header
		ok      bool
		want    string
	}{
		{"R65 no From", "alice", hdrs("Subject", "x"), false, "has no From: header (R65)"},
		{"R65 blank From", "alice", hdrs("From", "   "), false, "blank (R65)"},
		{"R65 two From headers", "alice", hdrs("From", "alice@agency.govt.nz", "From", "alice@agency.govt.nz"), false, "2 From: headers"},
		{"R65 unparsable From", "alice", hdrs("From", "not an address"), false, "not a valid address (R65)"},
		{"R66 two addresses", "alice", hdrs("From", "alice@agency.govt.nz, bob@agency.govt.nz"), false, "2 addresses"},
		{"R66 foreign domain", "alice", hdrs("From", "alice@example.com"), false, "<alice@example.com> is not in one of this agency's domains (R66)"},
		{"R66 lookalike domain", "alice", hdrs("From", "alice@agency.govt.nz.evil.example"), false, "(R66)"},
		{"R66 other user", "alice", hdrs("From", "Bob <bob@agency.govt.nz>"), false, `does not match the authenticated sender "alice" (R66)`},
		{"R66 login is an address", "alice@agency.govt.nz", hdrs("From", "alice@sub.agency.govt.nz"), false, "does not match"},
		{"R66 match by local part", "alice", hdrs("From", "Alice <Alice@Agency.govt.nz>"), true, ""},
		{"R66 match by address", "alice@sub.agency.govt.nz", hdrs("From", "alice@sub.agency.govt.nz"), true, ""},
		{"R66 folded From", "alice", hdrs("From", "Alice Example\n <alice@agency.govt.nz>"), true, ""},
		{"R66 encoded display name", "alice", hdrs("From", "=?ISO-8859-1?Q?Al=EFce?= <alice@agency.govt.nz>"), true, ""},
		{"R66 internal network without SASL: domain only", "", hdrs("From", "cron@agency.govt.nz"), true, ""},
		{"R66 internal network foreign From", "", hdrs("From", "cron@example.org"), false, "(R66)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, `internal_networks=["10.0.0.0/8"]`)
			tx := Transaction{Conn: Conn{ClientIP: netip.MustParseAddr("10.0.0.5")}, Envelope: Envelope{AuthUser: c.auth}, Headers: c.headers}
			v := p.AtEndOfMessage(tx)
			if v.Direction != Outbound {
				t.Fatalf("direction %s", v.Direction)
			}
			if c.ok {
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
	t.Run("R66 no domains configured refuses", func(t *testing.T) {
		p, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		v := p.AtEndOfMessage(Transaction{Envelope: Envelope{AuthUser: "alice"}, Headers: hdrs("From", "alice@agency.govt.nz")})
		if v.Action != Reject || !strings.Contains(v.Reply.Text, "no domains configured") {
			t.Errorf("got %s %v", v.Action, v.Reply)
		}
	})
	t.Run("R66 cannot be turned off", func(t *testing.T) {
		for _, key := range Keys() {
			if strings.HasPrefix(key, "inbound.") {
				continue // inbound rules cannot touch outbound From: checks
			}
			if strings.Contains(key, "from") || strings.Contains(key, "r66") || strings.Contains(key, "sender") {
				t.Errorf("policy key %q looks like it could switch off R65/R66", key)
			}
		}
	})
	t.Run("R65 inbound mail is not checked", func(t *testing.T) {
		p := mustPolicy(t)
		v := p.AtEndOfMessage(Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Headers: hdrs("Subject", "no from")})
		if v.Action != Accept {
			t.Errorf("inbound mail without From: %s %v", v.Action, v.Reply)
		}
	})
}

// Evaluate is what `check` runs: the MAIL FROM refusal wins, else end of message.
func TestEvaluate(t *testing.T) {
	p := mustPolicy(t)
	tx := Transaction{Conn: Conn{ClientIP: internetIP}, Headers: hdrs("From", "a@example.com", "X-NZ-Secure-email", "x")}
	v := p.Evaluate(context.Background(), tx, fakeChecker{}, noBody)
	if v.Stage != StageMail || v.Action != Reject || v.Classification != Unclassified {
		t.Errorf("plaintext: %+v", v)
	}
	tx.Conn.TLS = tls13
	v = p.Evaluate(context.Background(), tx, fakeChecker{}, noBody)
	if v.Stage != StageEOM || v.Action != Accept || len(v.Report().HeadersRemoved) != 1 {
		t.Errorf("TLS: %+v", v)
	}
}

// M-IN: classified inbound mail from a source that is not secure gets
// warning 004; from a secure-list domain over TLS it does not.
func TestInboundClassifiedFromInsecureSource(t *testing.T) {
	p := mustPolicy(t, `outbound.seemail_domains=["seemail.example"]`, `profile="securemail"`)
	cases := []struct {
		name, from, class string
		tls               TLSInfo
		warn              string
	}{
		{"M-IN unclassified never flagged", "a@gmail.example", "", TLSInfo{}, ""},
		{"M-IN explicit UNCLASSIFIED never flagged", "a@gmail.example", "UNCLASSIFIED", TLSInfo{}, ""},
		{"M-IN classified from unknown domain", "a@gmail.example", "IN-CONFIDENCE", tls13, "004"},
		{"M-IN classified from secure domain in plaintext", "a@seemail.example", "SECRET", TLSInfo{}, "004"},
		{"M-IN classified from secure domain over TLS 1.1", "a@seemail.example", "SECRET", TLSInfo{Version: "TLSv1.1"}, "004"},
		{"M-IN classified from secure domain over TLS", "a@seemail.example", "SENSITIVE", tls13, ""},
		{"M-IN null sender", "", "RESTRICTED", tls13, "004"},
		{"M-IN unknown marking treated as classified", "a@gmail.example", "PERSONAL", tls13, "004"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.AtEndOfMessage(Transaction{Conn: Conn{ClientIP: internetIP, TLS: c.tls}, Envelope: Envelope{From: c.from}, Classification: c.class})
			if v.WarningCode != c.warn || v.Action != Accept {
				t.Errorf("warning %q action %s, want %q accept (reasons %q)", v.WarningCode, v.Action, c.warn, v.Reasons)
			}
		})
	}
}
