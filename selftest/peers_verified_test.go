package selftest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
)

// With smime.mode on, --peers passes only an answer the milter's inbound
// S/MIME path verified (R98): signed by its structure is not enough, nor
// is a signature whose certificate is untrusted or revoked.
func TestPingPeersNeedVerifiedAnswer(t *testing.T) {
	_, cert := testpki.New(t, "localhost")
	key := []byte(strings.Repeat("s", 32))
	f := &fakeMTA{key: key, cert: cert, ignoreToken: true, from: map[string]string{}}
	addr := f.serve(t)
	dir := filepath.Join(t.TempDir(), "peer-answers")
	p := testPolicy(t, `smime.mode="on"`)
	cases := []struct {
		name string
		a    PeerAnswer
		pass bool
		got  string
	}{
		{"verified", PeerAnswer{Signed: true, SMIME: SMIMEVerified, Verified: true, Detail: "signed by domain-confidentiality-authority@peer.example (0011), valid now"}, true, "S/MIME verified: signed by domain-confidentiality-authority@peer.example"},
		{"signed by structure only", PeerAnswer{Signed: true}, false, "signed true, S/MIME not verified"},
		{"revoked signer", PeerAnswer{Signed: true, SMIME: SMIMEUnverified, Code: "101", Detail: "the sender's certificate is revoked"}, false, "S/MIME not verified (101): the sender's certificate is revoked"},
		{"not S/MIME", PeerAnswer{SMIME: SMIMENone}, false, "not S/MIME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.a
			a.Domain, a.From, a.Received = "peer.example", "postmaster@peer.example", time.Now()
			if err := RecordAnswer(dir, a); err != nil {
				t.Fatal(err)
			}
			res := PingPeers(context.Background(), PeerConfig{
				Config: Config{SMTP: addr, Policy: p, Key: key, Timeout: 5 * time.Second},
				Peers:  []string{"ping@peer.example"}, AnswersDir: dir, Wait: time.Second, Poll: 10 * time.Millisecond})
			if len(res) != 1 || (res[0].Status == Pass) != c.pass || !strings.Contains(res[0].Got, c.got) {
				t.Errorf("%+v, want pass %v and %q", res, c.pass, c.got)
			}
			if !strings.Contains(res[0].Want, "verified") {
				t.Errorf("want %q does not say verified", res[0].Want)
			}
		})
	}
	// smime.mode off: any answer passes.
	if err := RecordAnswer(dir, PeerAnswer{Domain: "peer.example", From: "postmaster@peer.example", Received: time.Now(), SMIME: SMIMENotChecked}); err != nil {
		t.Fatal(err)
	}
	res := PingPeers(context.Background(), PeerConfig{Config: Config{SMTP: addr, Policy: testPolicy(t), Key: key, Timeout: 5 * time.Second},
		Peers: []string{"ping@peer.example"}, AnswersDir: dir, Wait: time.Second, Poll: 10 * time.Millisecond})
	if res[0].Status != Pass {
		t.Errorf("smime.mode off: %+v", res[0])
	}
}
