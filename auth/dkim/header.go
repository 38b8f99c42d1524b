package dkim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
)

const crlf = "\r\n"

// readHeader reads the header section of a message (RFC 5322 section
// 2.2): one string per field, continuation lines included, each line
// CRLF-terminated. It splits fields exactly as go-msgauth does (a line
// starting with SP or HTAB continues the previous field), so that the
// fields we look at are the ones it verifies. A header section that ends
// at EOF without the empty line is accepted (a message without body).
func readHeader(br *bufio.Reader) ([]string, error) {
	tr := textproto.NewReader(br)
	var h []string
	for {
		l, err := tr.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && len(h) > 0 && l == "" {
				return h, nil
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no end of header", ErrMalformedHeader)
			}
			return nil, fmt.Errorf("dkim: reading header: %w", err)
		}
		if l == "" {
			return h, nil
		}
		if len(h) > 0 && (l[0] == ' ' || l[0] == '\t') {
			h[len(h)-1] += l + crlf
		} else {
			h = append(h, l+crlf)
		}
	}
}

// joinHeader is the header section as go-msgauth reads it back: the
// fields, then the empty line.
func joinHeader(h []string) string {
	n := 2
	for _, f := range h {
		n += len(f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range h {
		b.WriteString(f)
	}
	b.WriteString(crlf)
	return b.String()
}

// fieldName returns the name of a raw header field, trimmed as go-msgauth
// trims it.
func fieldName(f string) string {
	k, _, _ := strings.Cut(f, ":")
	return strings.TrimSpace(k)
}

// fieldValue returns the raw value of a header field (after the colon).
func fieldValue(f string) string {
	_, v, _ := strings.Cut(f, ":")
	return v
}

// parseTags parses a tag-list (RFC 6376 section 3.2) leniently: the first
// occurrence of a tag wins, tags without "=" are skipped. Only for
// reporting: go-msgauth does the strict parsing that decides the result.
func parseTags(s string) map[string]string {
	tags := map[string]string{}
	for _, spec := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup || k == "" {
			continue
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags
}

// stripFWS removes all whitespace (FWS inside base64 and other values,
// RFC 6376 section 3.5).
func stripFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
