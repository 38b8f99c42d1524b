package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// nastyStrings are the strings an attacker puts in a header or an
// address, and the ones a JSON writer gets wrong.
var nastyStrings = []string{
	"", "plain", `quote " and backslash \`, "nl\n cr\r tab\t", "\b\f\v\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "\u2028 line \u2029 para", "caf\u00e9 \u65e5\u672c \U0001F600",
	"bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate", "trailing \xe2\x80", "\xef\xbf\xbd real fffd",
	`{"not":"json"}`, strings.Repeat("long ", 300),
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return nastyStrings[r.IntN(len(nastyStrings))]
	}
	n := r.IntN(20)
	b := make([]byte, n)
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(0x20))
		case 1:
			b[i] = byte(0x80 + r.IntN(0x80))
		default:
			b[i] = byte(0x20 + r.IntN(0x60))
		}
	}
	return string(b)
}

// randAttr is an attribute of a fast kind, or with slow set, sometimes
// one the fast path leaves to slog.
func randAttr(r *rand.Rand, slow bool) slog.Attr {
	key := randString(r)
	if key == "" {
		key = "k"
	}
	n := 6
	if slow {
		n = 12
	}
	switch r.IntN(n) {
	case 0:
		return slog.String(key, randString(r))
	case 1:
		return slog.Int64(key, r.Int64()-r.Int64())
	case 2:
		return slog.Uint64(key, r.Uint64())
	case 3:
		return slog.Bool(key, r.IntN(2) == 0)
	case 4:
		return Any(key, map[string]any{"s": randString(r), "n": r.IntN(100), "l": []string{randString(r)}})
	case 5:
		return Any(key, []string{randString(r), randString(r)})
	case 6:
		return slog.Float64(key, r.Float64())
	case 7:
		return slog.Duration(key, time.Duration(r.Int64()))
	case 8:
		return slog.Group(key, slog.String("a", randString(r)))
	case 9:
		return slog.Any(key, errors.New(randString(r)))
	case 10:
		return slog.Any("", randString(r))
	default:
		return slog.Time(key, time.Unix(r.Int64N(1<<34), r.Int64N(1e9)))
	}
}

// TestMatchesSlog: the handler's lines are slog.JSONHandler's, on both
// paths and through both entry points, for records of random attributes.
func TestMatchesSlog(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2}
	for i := range 3000 {
		at := time.Unix(1_700_000_000+r.Int64N(1e8), r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(48)-24)*1800))
		if i%50 == 0 {
			at = time.Time{}
		}
		level := levels[r.IntN(len(levels))]
		msg := randString(r)
		attrs := make([]slog.Attr, r.IntN(12))
		for j := range attrs {
			attrs[j] = randAttr(r, i%3 == 0)
		}
		var want, got, got2 bytes.Buffer
		rec := slog.NewRecord(at, level, msg, 0)
		rec.AddAttrs(attrs...)
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		if err := slog.NewJSONHandler(&want, opts).Handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if err := New(&got, opts).Handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if err := New(&got2, opts).LogAttrs(at, level, msg, attrs...); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() || got2.String() != want.String() {
			t.Fatalf("record %d:\nslog:      %q\nHandle:    %q\nLogAttrs:  %q", i, want.String(), got.String(), got2.String())
		}
	}
}

// TestFastPathTaken: a record of the fast kinds is not handed to slog
// (else the handler would be correct and no faster), and a slow one is.
func TestFastPathTaken(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, nil)
	line, ok := appendRecord(nil, time.Now(), slog.LevelInfo, "decision",
		func(f func(slog.Attr) bool) {
			_ = f(slog.String("a", "b")) && f(slog.Int("n", 1)) && f(slog.Any("r", Raw(`[1]`)))
		})
	if !ok || !bytes.HasSuffix(line, []byte(`"a":"b","n":1,"r":[1]}`+"\n")) {
		t.Fatalf("fast record: %v %q", ok, line)
	}
	if _, ok := appendRecord(nil, time.Now(), slog.LevelInfo, "m", func(f func(slog.Attr) bool) { f(slog.Float64("f", 1)) }); ok {
		t.Fatal("a float was taken by the fast path")
	}
	// A handler with attributes of its own is slog's, and still right.
	slog.New(h).With("c", "d").Info("m", "e", Raw(`{"x":1}`))
	if !strings.Contains(buf.String(), `"msg":"m","c":"d","e":{"x":1}}`) {
		t.Fatalf("WithAttrs: %q", buf.String())
	}
	buf.Reset()
	_ = h.LogAttrs(time.Now(), slog.LevelDebug, "below the level")
	if buf.Len() != 0 {
		t.Fatalf("a record below the level was written: %q", buf.String())
	}
}

// FuzzString: AppendString is encoding/json's string writer without HTML
// escaping, and the key and value writer slog's.
func FuzzString(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var bb bytes.Buffer
		enc := json.NewEncoder(&bb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got, want := string(AppendString(nil, s)), strings.TrimSuffix(bb.String(), "\n"); got != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
		var sl bytes.Buffer
		_ = slog.NewJSONHandler(&sl, nil).Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, s, 0))
		line, _ := appendRecord(nil, time.Time{}, slog.LevelInfo, s, func(func(slog.Attr) bool) {})
		if string(line) != sl.String() {
			t.Fatalf("message %q: %s, slog %s", s, line, sl.String())
		}
	})
}
