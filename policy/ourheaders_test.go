package policy

import (
	"strings"
	"testing"
	"time"
)

// Issue 12 point 8: every header this gateway writes is removed when a
// client supplies it, in any case, folded or written "Name :", inbound and
// outbound; the only copies left are the ones we add.
func TestOurHeadersStripped(t *testing.T) {
	p := mustPolicy(t, `domains=["agency.govt.nz"]`)
	forged := hdrs(
		"X-NZ-Secure-Gateway", "received=Mon, 01 Jan 2026 00:00:00 +0000; gateway=mx.agency.govt.nz",
		"From", "alice@agency.govt.nz",
		"x-nz-secure-warning", "005 THIS MESSAGE IS FROM OUR DOMAIN (mx.agency.govt.nz)",
		"X-NZ-Secure-Warning ", "002 folded\n\t(mx.agency.govt.nz)",
		"X-NZ-SECURE-ROUTE", "tls",
		"Authentication-Results", "mx.agency.govt.nz;\n\tdkim=pass header.d=agency.govt.nz",
		"Authentication-Results", "other.example; spf=pass",
		"X-NZ-Secure-email", "compliant",
		"Subject", "hello",
	)
	for _, c := range []struct {
		name string
		tx   Transaction
	}{
		{"inbound", Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "x@sender.example"}, Headers: forged, Received: time.Now()}},
		{"outbound", Transaction{Conn: Conn{ClientIP: internetIP}, Envelope: Envelope{From: "alice@agency.govt.nz", AuthUser: "alice"}, Headers: forged, Received: time.Now()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := p.AtEndOfMessage(c.tx)
			if v.Action != Accept {
				t.Fatalf("%s %v", v.Action, v.Reply)
			}
			final := ApplyEdits(forged, v.Edits)
			count := map[string]int{}
			for _, h := range final {
				count[strings.ToLower(strings.TrimSpace(h.Name))]++
				if strings.Contains(h.Value, "forged") || strings.Contains(h.Value, "2026 00:00:00") ||
					strings.Contains(h.Value, "THIS MESSAGE") || strings.Contains(h.Value, "folded") || h.Value == "tls" ||
					strings.Contains(h.Value, "dkim=pass header.d=agency") || h.Value == "compliant" {
					t.Errorf("forged header kept: %s: %q", h.Name, h.Value)
				}
			}
			if count["x-nz-secure-gateway"] != 1 {
				t.Errorf("%d X-NZ-Secure-Gateway, want only ours", count["x-nz-secure-gateway"])
			}
			if count["x-nz-secure-warning"] != 0 || count["x-nz-secure-route"] != 0 {
				t.Errorf("warning/route headers left: %v", count)
			}
			if count["subject"] != 1 || count["from"] != 1 {
				t.Errorf("other headers touched: %v", count)
			}
			// Another authserv-id's results stay.
			var other bool
			for _, h := range final {
				other = other || strings.HasPrefix(h.Value, "other.example")
			}
			if !other {
				t.Error("a foreign Authentication-Results was removed")
			}
		})
	}
	for _, n := range []string{"X-NZ-Secure-Warning", "x-nz-secure-warning \t", "X-NZ-Secure-Route", "x-nz-secure-gateway", "X-NZ-Secure-email"} {
		if !IsOurHeader(n) {
			t.Errorf("IsOurHeader(%q) = false", n)
		}
	}
	for _, n := range []string{"X-NZ-Secure-Warnings", "Subject", "X-Warning"} {
		if IsOurHeader(n) {
			t.Errorf("IsOurHeader(%q) = true", n)
		}
	}
}

// Issue 12 point 9: Authentication-Results stays small whatever the
// message holds: at most MaxAuthResultsDKIM signatures, the rest counted
// in a comment, and every repeated value clipped.
func TestAuthResultsBounded(t *testing.T) {
	p := mustPolicy(t, "inbound.spf=tag")
	long := strings.Repeat("a", 5000)
	var dk []DKIMCheck
	for i := 0; i < 500; i++ {
		dk = append(dk, DKIMCheck{Result: "neutral", Domain: long + ".example", Selector: long, HeaderB: long, Detail: long})
	}
	tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13, HELO: long}, Envelope: Envelope{From: "a@" + long},
		Headers: hdrs("From", "a@sender.example"),
		Mail:    MailChecks{SPF: &AuthCheck{Result: "fail", Identity: "a@" + long, Domain: long}},
		Header:  HeaderChecks{SenderIDPRA: &AuthCheck{Result: "pass", Identity: long + "@x"}},
		Message: MessageChecks{DKIM: dk, DMARC: &DMARCCheck{Result: "fail", FromDomain: long, Reason: long}}}
	ar := p.authResults(tx)
	if len(ar) > 16<<10 {
		t.Fatalf("Authentication-Results is %d bytes", len(ar))
	}
	if n := strings.Count(ar, "dkim="); n != MaxAuthResultsDKIM {
		t.Errorf("%d dkim results, want %d", n, MaxAuthResultsDKIM)
	}
	if !strings.Contains(ar, "(and 490 more signatures not listed)") {
		t.Errorf("no summary of the rest:\n%s", ar[len(ar)-400:])
	}
	// Below the bound, every result is listed and no summary is added.
	tx.Message.DKIM = dk[:3]
	if ar := p.authResults(tx); strings.Count(ar, "dkim=") != 3 || strings.Contains(ar, "more signatures") {
		t.Errorf("3 signatures: %s", ar)
	}
}

// M-RCV-SPF deferred to end of message still comes before the ping answer
// (R96): a sender failing SPF gets no ping reply, as when SPF was refused
// at MAIL FROM.
func TestDeferredSPFBeforePing(t *testing.T) {
	p := mustPolicy(t)
	tx := Transaction{Conn: Conn{ClientIP: internetIP, TLS: tls13}, Envelope: Envelope{From: "forged@victim.example", Rcpts: []string{"ping@agency.govt.nz"}},
		Headers: hdrs("From", "forged@victim.example"),
		Mail:    MailChecks{SPF: &AuthCheck{Result: ResultFail, Identity: "forged@victim.example", Domain: "victim.example", RecordFound: true}}}
	tx.Message = MessageChecks{DKIM: []DKIMCheck{{Result: "policy", Domain: "victim.example"}}}
	v := p.AtEndOfMessage(tx)
	if v.Action != Reject || v.Reply == nil || v.Reply.Status != "5.7.23" || len(v.Notices) != 0 {
		t.Fatalf("got %s %v notices %+v", v.Action, v.Reply, v.Notices)
	}
	if len(v.Message.DKIM) != 1 || len(v.Checks) == 0 {
		t.Errorf("the refusal does not report the checks: %+v %+v", v.Message, v.Checks)
	}
	tx.Mail.SPF.Result = ResultPass
	if v := p.AtEndOfMessage(tx); v.Action != Discard || len(v.Notices) != 1 {
		t.Errorf("SPF pass: ping not answered: %s %+v", v.Action, v.Notices)
	}
}

// TestSameName: the length shortcut of sameName decides as
// strings.EqualFold on the trimmed name does, for ASCII names and for
// names whose folding changes the length.
func TestSameName(t *testing.T) {
	names := []string{"X-NZ-Secure-email", "x-nz-secure-EMAIL", "X-NZ-Secure-email \t", "X-NZ-Secure-emai", "X-NZ-Secure-emails",
		"X-NZ-\u017Fecure-email", "X-NZ-\u017Fecure-email ", "X-NZ-Secure-emai\u212A", "", " ", "X-NZ-Secure-email\u00a0", "TLS-Required", "tls-required  "}
	for _, h := range names {
		for _, name := range []string{SecureEmailHeader, "TLS-Required", "Kind"} {
			want := strings.EqualFold(strings.TrimRight(h, " \t"), name)
			if got := sameName(h, name); got != want {
				t.Errorf("sameName(%q, %q) = %v, EqualFold says %v", h, name, got, want)
			}
		}
	}
}
