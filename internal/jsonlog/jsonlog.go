// Package jsonlog is slog's JSON handler with a fast path for flat
// records: a record whose attributes are all strings, integers, booleans
// or Raw JSON, logged on a handler with no attributes or groups of its
// own, is written here without reflection and without re-checking the Raw
// values; any other record goes to slog.JSONHandler itself. The output is
// byte for byte slog.JSONHandler's (TestMatchesSlog, FuzzString).
//
// Why (issue 13 point 7): serve writes one decision line per message, and
// encoding/json's reflection over its structured values (the checks, the
// DKIM and DMARC results) was about half of the line's cost; the line was
// a quarter of what the milter adds to the no-op floor. The caller writes
// those values itself (Raw) and the handler passes them on as they are.
package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Raw is a value already encoded as JSON by the caller, who answers for
// its being valid. Outside the fast path (and for any other handler) it
// is a json.Marshaler, so it is still written correctly, only slower.
type Raw []byte

// MarshalJSON returns r itself.
func (r Raw) MarshalJSON() ([]byte, error) { return r, nil }

// Handler writes JSON lines like slog.JSONHandler.
type Handler struct {
	inner slog.Handler // for every record the fast path does not take
	w     *lockedWriter
	level slog.Leveler
	fast  bool // no attributes or groups added, no ReplaceAttr, no AddSource
}

// lockedWriter serialises the writes of both paths, as slog.JSONHandler's
// own mutex does for its.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// New is slog.NewJSONHandler(w, opts) with the fast path.
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	lw := &lockedWriter{w: w}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{inner: slog.NewJSONHandler(lw, opts), w: lw, level: level,
		fast: opts.ReplaceAttr == nil && !opts.AddSource}
}

// Enabled reports whether the level is at or above the handler's.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs returns slog's own handler with the attributes: the fast path
// is for the bare handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(as), w: h.w, level: h.level}
}

// WithGroup likewise.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), w: h.w, level: h.level}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Handle writes the record.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast {
		return h.inner.Handle(ctx, r)
	}
	return h.write(r.Time, r.Level, r.Message, r.Attrs, func() error { return h.inner.Handle(ctx, r) })
}

// LogAttrs logs a record of the attributes at time t, as
// slog.Logger.LogAttrs does, without the Record: no copy of the
// attributes and no caller's program counter, which this handler does not
// write. Callers that log through a Handler they hold (the milter's
// decision line) use it.
func (h *Handler) LogAttrs(t time.Time, level slog.Level, msg string, attrs ...slog.Attr) error {
	if !h.Enabled(context.Background(), level) {
		return nil
	}
	slow := func() error {
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return h.inner.Handle(context.Background(), r)
	}
	if !h.fast {
		return slow()
	}
	each := func(f func(slog.Attr) bool) {
		for _, a := range attrs {
			if !f(a) {
				return
			}
		}
	}
	return h.write(t, level, msg, each, slow)
}

// write writes the line, or calls slow when an attribute is not of the
// fast kinds.
func (h *Handler) write(t time.Time, level slog.Level, msg string, attrs func(func(slog.Attr) bool), slow func() error) error {
	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			bufPool.Put(bp)
		}
	}()
	b, ok := appendRecord((*bp)[:0], t, level, msg, attrs)
	*bp = b
	if !ok {
		return slow()
	}
	_, err := h.w.Write(b)
	return err
}

// appendRecord writes the record as slog.JSONHandler does, or reports
// false when an attribute is not of the fast kinds.
func appendRecord(b []byte, t time.Time, level slog.Level, msg string, attrs func(func(slog.Attr) bool)) ([]byte, bool) {
	b = append(b, '{')
	if !t.IsZero() {
		t = t.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false // slog writes an error for it
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"', ',')
	}
	b = append(b, `"level":`...)
	b = appendString(b, level.String(), false)
	b = append(b, `,"msg":`...)
	b = appendString(b, msg, false)
	ok := true
	attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false // slog elides some of these and writes others
			return false
		}
		v := a.Value
		var raw Raw
		switch v.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool:
		case slog.KindAny:
			if raw, ok = v.Any().(Raw); !ok {
				return false
			}
		default:
			ok = false
			return false
		}
		b = append(b, ',')
		b = appendString(b, a.Key, false)
		b = append(b, ':')
		switch v.Kind() {
		case slog.KindString:
			b = appendString(b, v.String(), false)
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		default:
			b = append(b, raw...)
		}
		return true
	})
	if !ok {
		return b, false
	}
	return append(b, '}', '\n'), true
}

const hexDigits = "0123456789abcdef"

// safeASCII are the ASCII bytes a JSON string holds as they are:
// printable, other than '"' and '\\' (encoding/json's and slog's safeSet).
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string as encoding/json writes it with
// HTML escaping off, as slog writes the values of json.Marshal: control
// characters escaped (\b and \f by name), invalid UTF-8 as U+FFFD, U+2028
// and U+2029 escaped. For building Raw values from strings that may be
// anyone's (an identity, a DKIM domain, a reason quoting a header).
func AppendString(b []byte, s string) []byte { return appendString(b, s, true) }

// appendString is encoding/json's string writer, or with named false
// slog's own (for keys, the message and string values), which writes \b
// and \f as \u0008 and \u000c.
func appendString(b []byte, s string, named bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b' && named:
				b = append(b, '\\', 'b')
			case c == '\f' && named:
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Any is slog.Any(key, v) with v encoded here once, as slog.JSONHandler
// encodes it (encoding/json, HTML escaping off), so that the record stays
// on the fast path. For values of no hand-written encoder; a value that
// does not encode is left to slog, which writes the error.
func Any(key string, v any) slog.Attr {
	var bb bytes.Buffer
	enc := json.NewEncoder(&bb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return slog.Any(key, v)
	}
	return slog.Any(key, Raw(bytes.TrimSuffix(bb.Bytes(), []byte("\n"))))
}
