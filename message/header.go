package message

import (
	"io"
	"strings"
)

// Header is one header field as received: name as written, value unfolded
// only as far as the MTA did (Postfix sends it with folds, "\n" or "\r\n").
type Header struct {
	Name  string
	Value string
}

// EditOp is a header change the milter makes at end of message.
type EditOp string

const (
	// OpAdd appends Name: Value (milter AddHeader).
	OpAdd EditOp = "add"
	// OpDelete removes the Index-th (1-based, per name) Name header (milter
	// ChangeHeader with an empty value).
	OpDelete EditOp = "delete"
	// OpChange replaces the value of the Index-th (1-based, counted per name
	// without regard to case) Name header (milter ChangeHeader).
	OpChange EditOp = "change"
	// OpInsert puts Name: Value at position Index of the whole list, 0 being
	// the top (milter InsertHeader).
	OpInsert EditOp = "insert"
)

// HeaderEdit is one header change, applied in order. For OpDelete, Value
// is the value being removed (for the log and `check`); for the others it
// is the new value, unfolded or with folds as "\n", without leading space.
type HeaderEdit struct {
	Op    EditOp
	Name  string
	Index int
	Value string
}

// ApplyEdits returns the header list as the MTA will have it after edits,
// each applied in order with per-name 1-based indexes counted over the
// current list, as the milter protocol counts them. An edit whose header
// is not there is ignored, as the MTA ignores it. hs is not modified.
func ApplyEdits(hs []Header, edits []HeaderEdit) []Header {
	return ApplyEditsFunc(hs, edits, func(h Header) string { return h.Name },
		func(name, value string) Header { return Header{Name: name, Value: value} },
		func(h Header, value string) Header { h.Value = value; return h })
}

// ApplyEditsFunc is ApplyEdits for any list of header fields: nameOf reads
// an item's name, build makes a new field, change gives an item its new
// value. It lets a writer that keeps each untouched field's raw bytes
// (notify) apply edits with the same rules as the MTA and the engine.
// items is not modified.
func ApplyEditsFunc[T any](items []T, edits []HeaderEdit, nameOf func(T) string, build func(name, value string) T, change func(old T, value string) T) []T {
	out := append([]T(nil), items...)
	for _, e := range edits {
		switch e.Op {
		case OpAdd:
			out = append(out, build(e.Name, e.Value))
		case OpDelete:
			if i := NthHeader(out, nameOf, e.Name, e.Index); i >= 0 {
				out = append(out[:i], out[i+1:]...)
			}
		case OpChange:
			if i := NthHeader(out, nameOf, e.Name, e.Index); i >= 0 {
				out[i] = change(out[i], e.Value)
			}
		case OpInsert:
			i := min(max(e.Index, 0), len(out))
			out = append(out[:i], append([]T{build(e.Name, e.Value)}, out[i:]...)...)
		}
	}
	return out
}

// NthHeader returns the position in items of the nth (1-based) item whose
// name is name, compared without regard to case, or -1: the milter
// protocol's per-name header index, as ChangeHeader counts it.
func NthHeader[T any](items []T, nameOf func(T) string, name string, nth int) int {
	n := 0
	for i, it := range items {
		if strings.EqualFold(nameOf(it), name) {
			if n++; n == nth {
				return i
			}
		}
	}
	return -1
}

// HeaderValues returns the values of every header named name (any case),
// in order.
func HeaderValues(hs []Header, name string) []string {
	var out []string
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

// HeaderField renders one header field as a message carries it: "Name:",
// a space unless the value is empty or already starts with a space or tab
// (the MTA passes the value without the space after the colon), then the
// value with every fold
// ("\n" or "\r\n") ended by eol, and eol. Values are not folded anew: a
// value is written as received or as we made it (RFC 5322 section 2.2).
func HeaderField(name, value, eol string) string {
	var b strings.Builder
	writeField(&b, name, value, eol)
	return b.String()
}

func writeField(b *strings.Builder, name, value, eol string) {
	b.WriteString(name)
	b.WriteByte(':')
	if value != "" && value[0] != ' ' && value[0] != '\t' {
		b.WriteByte(' ')
	}
	if eol == "\n" {
		b.WriteString(strings.ReplaceAll(value, "\r\n", "\n"))
	} else {
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(value, "\r\n", "\n"), "\n", eol))
	}
	b.WriteString(eol)
}

// HeaderBlock renders hs with HeaderField and the empty line that ends a
// header block (RFC 5322 section 2.1): the one header-block writer for
// DKIM signing, `check --output`, the original a warning refers to and
// the messages notify rewrites.
func HeaderBlock(hs []Header, eol string) string {
	var b strings.Builder
	n := len(eol)
	for _, h := range hs {
		n += len(h.Name) + len(h.Value) + 2 + len(eol)
	}
	b.Grow(n + n/32) // folds may grow by a byte each (LF to CRLF)
	for _, h := range hs {
		writeField(&b, h.Name, h.Value, eol)
	}
	b.WriteString(eol)
	return b.String()
}

// WriteHeaderBlock writes HeaderBlock(hs, eol) to w.
func WriteHeaderBlock(w io.Writer, hs []Header, eol string) error {
	_, err := io.WriteString(w, HeaderBlock(hs, eol))
	return err
}
