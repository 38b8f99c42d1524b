package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The held-mail keys (heldmail; issue 14 point 6): defaults, set values,
// and refusals with the key named.
func TestSMIMEHeldKeys(t *testing.T) {
	p := mustPolicy(t)
	if s := p.SMIME; s.HeldDir != "/var/lib/nzsecure-milter/held" || s.RetryInterval != 15*time.Minute ||
		s.HeldMaxCount != 10000 || s.HeldMaxSize != 4<<30 || s.GiveUp != 72*time.Hour {
		t.Fatalf("defaults %+v", s)
	}
	p = mustPolicy(t, `smime.held_dir="/srv/held"`, `smime.retry_interval="1h"`, `smime.held_max_count=5`, `smime.held_max_size="10M"`)
	if s := p.SMIME; s.HeldDir != "/srv/held" || s.RetryInterval != time.Hour || s.HeldMaxCount != 5 || s.HeldMaxSize != 10<<20 {
		t.Fatalf("set %+v", s)
	}
	for _, set := range []string{
		`smime.held_dir="held"`, `smime.held_dir=""`,
		`smime.retry_interval="10s"`, `smime.retry_interval="48h"`, `smime.retry_interval=15`,
		`smime.held_max_count=0`, `smime.held_max_count="many"`,
		`smime.held_max_size="0"`, `smime.held_max_size="lots"`,
	} {
		key, _, _ := strings.Cut(set, "=")
		_, err := Load("", []string{set})
		var probs Problems
		if !errors.As(err, &probs) || len(probs) != 1 || probs[0].Key != key {
			t.Errorf("%s: got %v, want one problem for %s", set, err, key)
		}
	}
}
