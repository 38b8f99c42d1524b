package checks

import (
	"context"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// BenchmarkSenderChecks is the SPF and Sender ID work of one inbound
// message under M-SEC (MAIL FROM, Sender ID mfrom, then the PRA) from a
// domain that publishes only v=spf1, through NewRunner's caching resolver:
// after the first message every lookup is a cache hit, as for a steady
// stream of mail from one correspondent (issue 13 point 7).
func BenchmarkSenderChecks(b *testing.B) {
	r := testRunner(b, dnstest.NewZone().TXT("v1only.example", "v=spf1 ip4:"+goodIP+" -all"))
	w := policy.Wants{SPF: true, SenderIDMF: true, SenderIDPRA: true}
	c := conn(goodIP, "mail.v1only.example")
	e := policy.Envelope{From: "sender@v1only.example"}
	hs := []policy.Header{{Name: "From", Value: " Sender <sender@v1only.example>"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		mc := r.Mail(ctx, w, c, e)
		hc := r.Headers(ctx, w, c, e, mc, hs)
		if mc.SPF.Result != policy.ResultPass || mc.SenderIDMF.Result != policy.ResultPass || hc.SenderIDPRA.Result != policy.ResultPass {
			b.Fatalf("%+v %+v %+v", mc.SPF, mc.SenderIDMF, hc.SenderIDPRA)
		}
	}
}
