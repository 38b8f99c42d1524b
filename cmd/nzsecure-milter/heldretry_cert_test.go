package main

import (
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// R44, R51: a held retry still without a certificate asks again (the
// notifier's rate limit decides whether it goes); only the certificate
// requests of the retry's verdict are handed on, never its DELAYED
// notices (the retrier sends those once).
func TestHeldRetrySendsCertRequests(t *testing.T) {
	var got []policy.Notice
	heldCertRequests = func(_ *policy.Policy, v policy.Verdict, _ policy.Envelope, _ []policy.Header) {
		got = append(got, v.Notices...)
	}
	t.Cleanup(func() { heldCertRequests = nil })
	v := policy.Verdict{Notices: []policy.Notice{
		{Kind: policy.NoticeDelayed, To: "alice@agency.govt.nz", Code: "201"},
		{Kind: policy.NoticeCertRequest, To: "domain-certificate-request@agency-b.govt.nz", From: "agency.govt.nz"},
	}}
	sendCertRequests(nil, policy.Envelope{}, nil, v)
	if len(got) != 1 || got[0].Kind != policy.NoticeCertRequest {
		t.Fatalf("handed on %+v", got)
	}
	got = nil
	sendCertRequests(nil, policy.Envelope{}, nil, policy.Verdict{Notices: v.Notices[:1]})
	if len(got) != 0 {
		t.Errorf("a verdict without requests handed on %+v", got)
	}
}
