package message

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrMalformedHeader is wrapped when a header block is not RFC 5322.
var ErrMalformedHeader = errors.New("malformed header")

// ErrHeaderBlockTooLarge is wrapped when a header block passes the bound
// ReadHeaderBlock was given (with ErrMalformedHeader: what cannot be read
// whole is not a header block this gateway accepts).
var ErrHeaderBlockTooLarge = errors.New("header block too large")

// ReadHeaderBlock reads the header block of a message in the form Postfix
// hands headers to a milter under OptHeaderLeadingSpace: the name as
// written and the value exactly as it follows the colon, leading space
// included, folded lines joined by "\n" with their leading white space
// kept (RFC 5322 section 2.2.3). CRLF and bare LF line ends are both
// accepted; a leading mbox "From " line is skipped; blanks between a name
// and its colon ("Subject :") are taken off the name, as Postfix does
// before it hands the field to a milter. At most limit bytes
// are read, so memory stays bounded (ErrHeaderBlockTooLarge past it); r
// is left at the first byte of the body. It is the one header-block
// reader for `check`, the tests and the engine's helpers (issue 13); the
// warning rewriter reads with ScanHeaderBlock, its position-keeping form.
func ReadHeaderBlock(r *bufio.Reader, limit int64) ([]Header, error) {
	s, err := ScanHeaderBlock(r, ScanOptions{Limit: limit, SkipMbox: true, LenientNames: true})
	var hs []Header
	if len(s.Fields) > 0 {
		hs = make([]Header, len(s.Fields))
		for i, f := range s.Fields {
			hs[i] = f.Header
		}
	}
	return hs, err
}

// ScanOptions are the rules of ScanHeaderBlock.
type ScanOptions struct {
	// Limit bounds the bytes read (ErrHeaderBlockTooLarge past it).
	Limit int64
	// SkipMbox skips a first line "From ..." (an mbox separator, as mail
	// clients save a message): not a header.
	SkipMbox bool
	// LenientNames accepts blanks between a field name and its colon
	// ("Subject :", which RFC 822 allowed and mail in the wild has) and
	// takes them off the name.
	LenientNames bool
}

// ScannedField is a header field with the place of its raw bytes.
type ScannedField struct {
	Header // as ReadHeaderBlock gives it
	// Start and End are the offsets of the field's lines (line ends
	// included) from the start of the block.
	Start, End int64
}

// HeaderScan is a header block as ScanHeaderBlock read it.
type HeaderScan struct {
	Fields []ScannedField
	// Size is the bytes read: the block with its blank line, or up to
	// the end of input or the fault.
	Size int64
	// EOL is the line end of the first line ("\r\n" or "\n"; "" when
	// it has none).
	EOL string
	// Blank is true when the block ended with its blank line, false when
	// it ran to the end of input.
	Blank bool
}

// ScanHeaderBlock reads a header block as ReadHeaderBlock does (the same
// field, continuation and blank-line rules), keeping where each field's
// bytes are, so that a rewriter can keep every byte it does not change.
func ScanHeaderBlock(r *bufio.Reader, o ScanOptions) (HeaderScan, error) {
	var s HeaderScan
	for n := 1; ; n++ {
		line, err := readLine(r, o.Limit-s.Size)
		lineStart := s.Size
		s.Size += int64(len(line))
		if err != nil && err != io.EOF {
			return s, err
		}
		if s.EOL == "" && strings.HasSuffix(line, "\n") {
			s.EOL = "\n"
			if strings.HasSuffix(line, "\r\n") {
				s.EOL = "\r\n"
			}
		}
		trimmed := strings.TrimRight(line, "\r\n")
		switch {
		case trimmed == "":
			s.Blank = line != ""
			return s, nil // the blank line that ends the block, or end of input
		case n == 1 && o.SkipMbox && strings.HasPrefix(trimmed, "From ") && !strings.HasPrefix(strings.TrimLeft(trimmed[len("From "):], " \t"), ":"):
			// An mbox separator line, as mail clients save it: not a
			// header ("From : x", with a blank before the colon, is one).
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if len(s.Fields) == 0 {
				return s, fmt.Errorf("%w: line %d: continuation line before any header", ErrMalformedHeader, n)
			}
			f := &s.Fields[len(s.Fields)-1]
			f.Value += "\n" + trimmed
			f.End = s.Size
		default:
			name, value, ok := strings.Cut(trimmed, ":")
			if o.LenientNames {
				name = strings.TrimRight(name, " \t")
			}
			if !ok || !ValidFieldName(name) {
				return s, fmt.Errorf("%w: line %d: %q is not a header field", ErrMalformedHeader, n, Clip(trimmed, 60))
			}
			s.Fields = append(s.Fields, ScannedField{Header: Header{Name: name, Value: value}, Start: lineStart, End: s.Size})
		}
		if err == io.EOF {
			return s, nil
		}
	}
}

// readLine reads one line of at most max bytes.
func readLine(r *bufio.Reader, max int64) (string, error) {
	var b strings.Builder
	for {
		if max <= 0 {
			return b.String(), fmt.Errorf("%w (%w): more than the limit", ErrHeaderBlockTooLarge, ErrMalformedHeader)
		}
		frag, err := r.ReadSlice('\n')
		if int64(len(frag)) > max {
			return b.String(), fmt.Errorf("%w (%w): more than the limit", ErrHeaderBlockTooLarge, ErrMalformedHeader)
		}
		b.Write(frag)
		max -= int64(len(frag))
		if err == bufio.ErrBufferFull {
			continue
		}
		return b.String(), err
	}
}

// ValidFieldName reports whether name is a header field name: RFC 5322
// section 3.6.8, printable US-ASCII except colon.
func ValidFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
