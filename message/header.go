package message

import "strings"

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
