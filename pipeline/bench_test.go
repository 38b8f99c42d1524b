package pipeline

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// benchChecker answers every sender check at once with what a well-run
// sending domain gets (SPF, Sender ID, DKIM and DMARC pass), reading the
// message as the DKIM verifier does, so that the benchmark measures the
// gateway's own work per message.
type benchChecker struct{}

func (benchChecker) Mail(_ context.Context, w policy.Wants, _ policy.Conn, e policy.Envelope) policy.MailChecks {
	var mc policy.MailChecks
	if w.SPF {
		mc.SPF = &policy.AuthCheck{Result: policy.ResultPass, Scope: "mfrom", Identity: e.From, Domain: "sender.example", RecordFound: true, AllQualifier: "-"}
	}
	if w.SenderIDMF {
		mc.SenderIDMF = &policy.AuthCheck{Result: policy.ResultPass, Scope: "mfrom", Identity: e.From, Domain: "sender.example", RecordFound: true, AllQualifier: "-"}
	}
	return mc
}

func (benchChecker) Headers(_ context.Context, w policy.Wants, _ policy.Conn, _ policy.Envelope, _ policy.MailChecks, _ []policy.Header) policy.HeaderChecks {
	if !w.SenderIDPRA {
		return policy.HeaderChecks{}
	}
	return policy.HeaderChecks{SenderIDPRA: &policy.AuthCheck{Result: policy.ResultPass, Scope: "pra", Identity: "alice@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-"}}
}

func (benchChecker) Message(_ context.Context, w policy.Wants, _ policy.Conn, _ policy.Envelope, _ []policy.Header, _ policy.MailChecks, msg io.Reader) policy.MessageChecks {
	// Read as the DKIM verifier reads it (a buffer of its own), not by
	// the multi-reader's WriteTo, which allocates 32 KB the real path
	// does not.
	_, _ = io.Copy(io.Discard, struct{ io.Reader }{msg})
	var m policy.MessageChecks
	if w.DKIM {
		m.DKIM = []policy.DKIMCheck{{Result: policy.ResultPass, Domain: "sender.example", Selector: "s1", HeaderB: "abcdefgh", Algorithm: "rsa-sha256"}}
	}
	if w.DMARC {
		m.DMARC = &policy.DMARCCheck{Result: policy.ResultPass, Disposition: "none", Published: "reject", FromDomain: "sender.example", SPFAligned: true, DKIMAligned: true}
	}
	return m
}

// benchHeaders is an inbound message's header block as Postfix passes it
// (values with their leading space, folds as "\n"): the trace and
// authentication headers of a large provider, a DKIM signature, MIME.
var benchHeaders = [][2]string{
	{"Received", " from mail.sender.example (mail.sender.example [198.51.100.7])\n\tby mx.agency.govt.nz (Postfix) with ESMTPS id 4ABC123\n\tfor <bob@agency.govt.nz>; Tue, 1 Dec 2026 11:00:00 +1300 (NZDT)"},
	{"Received", " from [10.0.0.5] (unknown [10.0.0.5])\n\tby mail.sender.example (Postfix) with ESMTPSA id 9XYZ\n\tfor <bob@agency.govt.nz>; Tue, 1 Dec 2026 10:59:59 +1300"},
	{"DKIM-Signature", " v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example; s=s1;\n\tt=1795000000; h=from:to:subject:date:message-id:mime-version:content-type;\n\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n\tb=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/abcdefghijklmnopqrstuvwxyz\n\t ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ=="},
	{"From", " Alice Example <alice@sender.example>"},
	{"To", " Bob Agency <bob@agency.govt.nz>, team@agency.govt.nz"},
	{"Cc", " carol@sender.example"},
	{"Subject", " Re: quarterly report figures for the committee"},
	{"Date", " Tue, 1 Dec 2026 10:59:58 +1300"},
	{"Message-ID", " <20261201105958.12345@mail.sender.example>"},
	{"In-Reply-To", " <20261130090000.999@agency.govt.nz>"},
	{"References", " <20261129080000.111@agency.govt.nz>\n <20261130090000.999@agency.govt.nz>"},
	{"MIME-Version", " 1.0"},
	{"Content-Type", " multipart/alternative; boundary=\"=_alt_0123456789\""},
	{"X-Mailer", " Example Mail 12.3"},
	{"Thread-Index", " AQHZ1234567890abcdefABCDEF=="},
	{"Content-Language", " en-NZ"},
}

// benchBody is a multipart/alternative body (text and HTML) of about 6 KB.
var benchBody = func() string {
	para := "The figures for the third quarter are attached below, as the committee asked at its last meeting. "
	text := strings.Repeat(para+"\r\n", 25)
	html := "<html><head><meta charset=3D\"utf-8\"></head><body><p>" + strings.Repeat(para+"<br>\r\n", 25) + "</p></body></html>\r\n"
	return "--=_alt_0123456789\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + text +
		"\r\n--=_alt_0123456789\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + html +
		"\r\n--=_alt_0123456789--\r\n"
}()

// BenchmarkInboundTransaction drives one inbound message through the
// transaction as serve's milter callbacks do, with the full default `sge`
// policy: MAIL FROM, RCPT, every header, end of headers, the body in one
// chunk, end of message, the output (header edits and the body chain), so
// that per-message work in the gateway's own code shows (issue 13 point
// 7: inbound is to cost little beyond the milter protocol).
func BenchmarkInboundTransaction(b *testing.B) {
	p, err := policy.Parse("bench", nil, []string{`domains=["agency.govt.nz"]`, `internal_networks=[]`, `authserv_id="mx.agency.govt.nz"`})
	if err != nil {
		b.Fatal(err)
	}
	st, err := NewState(p, benchChecker{})
	if err != nil {
		b.Fatal(err)
	}
	conn := policy.Conn{ClientIP: netip.MustParseAddr("198.51.100.7"), ClientName: "mail.sender.example", HELO: "mail.sender.example",
		Daemon: "smtpd", TLS: policy.TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", CipherBits: 256}}
	body := []byte(benchBody)
	run := func() policy.Verdict {
		tx, v, err := Begin(st, conn, policy.Envelope{From: "alice@sender.example"}, time.Now())
		if err != nil || v.Final() {
			b.Fatalf("begin: %v %v", v.Action, err)
		}
		defer tx.Close()
		tx.Rcpt("bob@agency.govt.nz")
		tx.Rcpt("team@agency.govt.nz")
		tx.SetQueueID("4ABC123")
		for _, h := range benchHeaders {
			tx.Header(h[0], h[1])
		}
		if v := tx.EndOfHeaders(); v.Final() {
			b.Fatalf("end of headers: %v %v", v.Action, v.Reasons)
		}
		tx.BodyChunk(body)
		v = tx.EndOfMessage()
		out, err := tx.Output(v)
		if err != nil {
			b.Fatal(err)
		}
		if r := out.Body(); r != nil {
			_, _ = io.Copy(io.Discard, r)
		}
		return v
	}
	if v := run(); v.Action != policy.Accept {
		b.Fatalf("the benchmark message is not accepted: %v %v", v.Action, v.Reasons)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
}
