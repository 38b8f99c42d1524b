package heldmail

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
)

// Mail held for the administrator (HeldMessage.AdminHold, R62 with R110):
// the retry loop never sends it nor gives it up; only Release does, with
// the hold named in Released.

func (rg *testRig) putAdmin(t *testing.T, msg string) string {
	t.Helper()
	h := held(rg.clock)
	h.Code, h.Domain, h.AdminHold, h.Released = "", "", "classification", []string{"lookalike"}
	id, err := rg.s.Put(context.Background(), h, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAdminHoldNotRetried(t *testing.T) {
	rg := newRig(t)
	rg.retry.out = Outcome{Result: Sent}
	id := rg.putAdmin(t, testMsg)
	// Far past smime.give_up: still no retry, no notice, no move.
	rg.clock = rg.clock.Add(30 * 24 * time.Hour)
	st := rg.r.Round(context.Background())
	if rg.retry.calls != 0 || st[ActAdminHeld] != 1 || len(rg.sub.got) != 0 {
		t.Fatalf("round: %d retries, stats %v, %d notices", rg.retry.calls, st, len(rg.sub.got))
	}
	a, err := rg.r.RetryOne(context.Background(), id)
	if a != ActAdminHeld || !errors.Is(err, ErrAdminHold) || rg.retry.calls != 0 {
		t.Fatalf("RetryOne: %s %v, %d retries", a, err, rg.retry.calls)
	}
	if e, err := rg.s.Entry(id); err != nil || e.Tries != 0 {
		t.Fatalf("entry after the round: %+v %v", e, err)
	}
}

func TestReleaseSends(t *testing.T) {
	rg := newRig(t)
	id := rg.putAdmin(t, testMsg)
	var got pipeline.HeldMessage
	var body string
	rg.r.Released = func(_ context.Context, h pipeline.HeldMessage, msg io.Reader) (Outcome, error) {
		got = h
		b, err := io.ReadAll(msg)
		body = string(b)
		return Outcome{Result: Sent, Reason: "smime submitted"}, err
	}
	a, err := rg.r.Release(context.Background(), id)
	if a != ActReleased || err != nil {
		t.Fatalf("release: %s %v", a, err)
	}
	if got.AdminHold != "" || !slices.Equal(got.Released, []string{"lookalike", "classification"}) || body != testMsg {
		t.Fatalf("re-run given %+v, %q", got, body)
	}
	if _, err := rg.s.Entry(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry still there after the release: %v", err)
	}
	ds := rg.decisions(t)
	if len(ds) != 1 || ds[0]["action"] != string(ActReleased) || ds[0]["admin_hold"] != "classification" {
		t.Fatalf("decisions %v", ds)
	}
}

func TestReleaseNotCarriedOutStaysHeld(t *testing.T) {
	for name, run := range map[string]RetryFunc{
		"tempfail": func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) {
			return Outcome{Result: StillHeld, Reason: "the gateway would tempfail it now"}, nil
		},
		"refused": func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) {
			return Outcome{Result: Refused, Reason: "the policy now refuses it"}, nil
		},
		"error": func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) {
			return Outcome{}, errors.New("MTA down")
		},
		"panic": func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			rg := newRig(t)
			rg.r.Released = run
			id := rg.putAdmin(t, testMsg)
			a, err := rg.r.Release(context.Background(), id)
			if a != ActNotReleased || !errors.Is(err, ErrNotReleased) {
				t.Fatalf("release: %s %v", a, err)
			}
			e, err := rg.s.Entry(id)
			if err != nil || e.AdminHold != "classification" || e.Tries != 1 || e.LastReason == "" {
				t.Fatalf("entry %+v %v", e, err)
			}
			if len(rg.sub.got) != 0 {
				t.Fatalf("notices sent: %+v", rg.sub.got)
			}
		})
	}
}

func TestReleaseOfCertificateHoldRefused(t *testing.T) {
	rg := newRig(t)
	rg.r.Released = func(context.Context, pipeline.HeldMessage, io.Reader) (Outcome, error) {
		t.Fatal("a certificate hold was re-run by Release")
		return Outcome{}, nil
	}
	id := rg.put(t, testMsg)
	if a, err := rg.r.Release(context.Background(), id); a != ActNotReleased || !errors.Is(err, ErrNotAdminHold) {
		t.Fatalf("release of a 201 hold: %s %v", a, err)
	}
	if _, err := rg.s.Entry(id); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseCorruptNeverSent(t *testing.T) {
	rg := newRig(t)
	id := rg.putAdmin(t, testMsg)
	if err := writeFile(rg.s.path(id, ".eml"), strings.Replace(testMsg, "budget", "bUdget", 1)); err != nil {
		t.Fatal(err)
	}
	rg.r.Released = func(_ context.Context, _ pipeline.HeldMessage, msg io.Reader) (Outcome, error) {
		if _, err := io.ReadAll(msg); err != nil {
			return Outcome{}, err
		}
		return Outcome{Result: Sent}, nil
	}
	if a, err := rg.r.Release(context.Background(), id); a != ActNotReleased || !errors.Is(err, ErrNotReleased) {
		t.Fatalf("release of a damaged message: %s %v", a, err)
	}
}
