package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The [smime] defaults are the same in every profile but the mode: on
// under seemail, off elsewhere (issue 14 point 2). No warning but, under
// seemail, that no identities and no trust anchors are set.
func TestSMIMEDefaults(t *testing.T) {
	for _, prof := range []string{ProfileSGE, ProfileSecureMail, ProfileSEEMail} {
		p := mustPolicy(t, `profile="`+prof+`"`)
		s := p.SMIME
		wantMode := SMIMEOff
		if prof == ProfileSEEMail {
			wantMode = SMIMEOn
		}
		if s.Mode != wantMode || !s.CRLCheck || s.CRLTimeout != 10*time.Second || s.GiveUp != 72*time.Hour ||
			s.Peers != "/var/lib/nzsecure-milter/peers" || s.CRLDir != "/var/lib/nzsecure-milter/crl" ||
			len(s.Identities) != 0 || len(s.TrustAnchors) != 0 || len(s.CRLBypass) != 0 || len(s.EncryptTo) != 0 {
			t.Errorf("%s: defaults %+v", prof, s)
		}
		// seemail's on without identities or anchors holds every message
		// to a peer: lint says so (smimeLintWarnings).
		if n := len(p.Warnings); n != 0 && prof != ProfileSEEMail || prof == ProfileSEEMail && n != 2 {
			t.Errorf("%s: warnings %v", prof, p.Warnings)
		}
	}
}

// Valid values of every [smime] key, through --set.
func TestSMIMEKeysValid(t *testing.T) {
	fp := strings.Repeat("AB", 32)
	p := mustPolicy(t,
		`smime.mode="on"`,
		`smime.identities=["Agency-A.govt.nz.:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-a-new.key", "agency-a.govt.nz:../testdata/smime/agency-a-old.crt:../testdata/smime/agency-a-old.key"]`,
		`smime.trust_anchors=["../testdata/smime/ca.crt"]`,
		`smime.peers="/tmp/peers"`, `smime.crl_dir="/tmp/crl"`, `smime.crl_check=false`,
		`smime.crl_bypass=["`+fp+`", "`+strings.Repeat("ab:", 31)+`ab"]`,
		`smime.crl_timeout="2s"`, `smime.encrypt_to=["agency-b.govt.nz", "*.govt.nz"]`, `smime.give_up="24h"`)
	s := p.SMIME
	want := SMIMEIdentity{"agency-a.govt.nz", "../testdata/smime/agency-a-new.crt", "../testdata/smime/agency-a-new.key"}
	if s.Mode != SMIMEOn || len(s.Identities) != 2 || s.Identities[0] != want {
		t.Errorf("identities %+v", s.Identities)
	}
	if len(s.TrustAnchors) != 1 || s.Peers != "/tmp/peers" || s.CRLDir != "/tmp/crl" || s.CRLCheck ||
		s.CRLTimeout != 2*time.Second || s.GiveUp != 24*time.Hour || len(s.EncryptTo) != 2 {
		t.Errorf("values %+v", s)
	}
	lower := strings.Repeat("ab", 32)
	if len(s.CRLBypass) != 2 || s.CRLBypass[0] != lower || s.CRLBypass[1] != lower {
		t.Errorf("crl_bypass %q, want lower-case hex without colons", s.CRLBypass)
	}
	// "on" is acted on now (issue 14): no warning.
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %v, want none", p.Warnings)
	}
}

// Invalid values, each refused with the key named.
func TestSMIMEKeysInvalid(t *testing.T) {
	for _, set := range []string{
		`smime.mode="yes"`, `smime.mode=true`,
		`smime.identities="agency-a.govt.nz:a:b"`,
		`smime.identities=["bad_domain:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-a-new.key"]`,
		`smime.identities=["agency-a.govt.nz:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-b.key"]`,
		`smime.identities=["agency-b.govt.nz:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-a-new.key"]`,
		`smime.trust_anchors=["../testdata/smime/make-fixtures.sh"]`,
		`smime.peers=""`, `smime.crl_dir="crl"`, `smime.crl_check="false"`,
		`smime.crl_bypass=["` + strings.Repeat("a", 63) + `"]`,
		`smime.crl_timeout="0s"`, `smime.crl_timeout="1h"`,
		`smime.encrypt_to=["no spaces.example"]`, `smime.give_up="72"`,
	} {
		key, _, _ := strings.Cut(set, "=")
		_, err := Load("", []string{set})
		var probs Problems
		if !errors.As(err, &probs) || len(probs) != 1 || probs[0].Key != key {
			t.Errorf("%s: got %v, want one problem for %s", set, err, key)
		}
	}
}

// FuzzSMIMEKeys: no smime.identities or smime.crl_bypass entry panics, and
// what is accepted is what the milter can use: a 64-hex fingerprint, an
// identity whose files loaded.
func FuzzSMIMEKeys(f *testing.F) {
	f.Add("agency-a.govt.nz:../testdata/smime/agency-a-new.crt:../testdata/smime/agency-a-new.key")
	f.Add(strings.Repeat("ab:", 31) + "ab")
	f.Add("a:b:c:d")
	f.Add("x:/dev/zero:/dev/zero")
	f.Fuzz(func(t *testing.T, s string) {
		if fps, err := fingerprints([]any{s}); err == nil && (len(fps) != 1 || len(fps[0]) != 64) {
			t.Fatalf("accepted %q as %q", s, fps)
		}
		if ids, err := smimeIdentities([]any{s}); err == nil && (len(ids) != 1 || ids[0].Domain == "") {
			t.Fatalf("accepted %q as %+v", s, ids)
		}
	})
}
