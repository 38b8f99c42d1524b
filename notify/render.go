package notify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Sentinel errors of the package; the functions wrap them with %w.
var (
	// ErrUnknownCode: the warning code is not in Table 3 (or is retired).
	ErrUnknownCode = errors.New("unknown warning code")
	// ErrAlreadyWarned: the message already carries this gateway's
	// X-NZ-Secure-Warning header (R79: one warning per message).
	ErrAlreadyWarned = errors.New("message already carries this gateway's warning")
	// ErrBadMode: the warning mode is not wrap, prepend or header.
	ErrBadMode = errors.New("unknown warning mode")
	// ErrMalformed: the original message cannot be read as RFC 5322.
	ErrMalformed = errors.New("malformed message")
)

// TextParams fills the placeholders of a Table 2 text and carries what R78
// lets the gateway append.
type TextParams struct {
	// Detail replaces the "..." of "[Code: 999, ...]" (R78: "permitted to
	// append additional information"); empty renders "[Code: 002]".
	Detail string
	// RetryHours replaces the X of "try again in X hours" (Table 2 row 2);
	// 0 leaves the spec's "X hours".
	RetryHours int
	// Link is the per-code "for further information" address (R78's
	// example: "For further information on this error, click here,
	// http://www.agency.govt.nz/seeinfo/warning5.html"); empty for none.
	Link string
}

// LinkIntro is the words before the R78 link.
const LinkIntro = "For further information on this error, see:"

// WarningHeader is the header the gateway adds to every message it warns
// about (all three modes); its value starts with ShortText.
const WarningHeader = "X-NZ-Secure-Warning"

// lookup returns the Table 3 row and its Table 2 text, or ErrUnknownCode.
func lookup(code string) (WarningCode, Table2Text, error) {
	w, ok := Warning(code)
	if !ok {
		return WarningCode{}, Table2Text{}, fmt.Errorf("%w: %q", ErrUnknownCode, code)
	}
	t, _ := Table2Entry(w.Row)
	return w, t, nil
}

// WarningLine renders the Table 2 text for code (R42, R78): the placeholder
// "[Code: 999, ...]" becomes "[Code: <code>]" or "[Code: <code>, <detail>]",
// and for SECURE DELIVERY DELAYED "X hours" becomes the retry interval when
// one is given.
func WarningLine(code string, p TextParams) (string, error) {
	_, t, err := lookup(code)
	if err != nil {
		return "", err
	}
	return fillTable2(t, code, p), nil
}

// Table2Line renders a Table 2 row directly, for a text that has no Table
// 3 code (row 5, SYSTEM WARNING MESSAGE) or with a code of the caller's
// choosing. A row with the "[Code: 999, ...]" placeholder needs a code.
func Table2Line(row Table2Row, code string, p TextParams) (string, error) {
	t, ok := Table2Entry(row)
	if !ok {
		return "", fmt.Errorf("%w: no Table 2 row %d", ErrUnknownCode, row)
	}
	if code == "" && strings.Contains(t.Text, CodePlaceholder) {
		return "", fmt.Errorf("%w: Table 2 row %d needs a code", ErrUnknownCode, row)
	}
	return fillTable2(t, code, p), nil
}

func fillTable2(t Table2Text, code string, p TextParams) string {
	s := t.Text
	if t.Row == SecureDeliveryDelayed && p.RetryHours > 0 {
		h := strconv.Itoa(p.RetryHours) + " hours"
		if p.RetryHours == 1 {
			h = "1 hour"
		}
		s = strings.Replace(s, RetryPlaceholder, h, 1)
	}
	tag := "[Code: " + code + "]"
	if d := oneLine(p.Detail); d != "" {
		tag = "[Code: " + code + ", " + d + "]"
	}
	return strings.Replace(s, CodePlaceholder, tag, 1)
}

// WarningLines renders the full warning for code as lines: the Table 2 text
// (WarningLine), a blank line, the Table 3 description with its causes one
// per line, and, when a link is given, a blank line and the R78 link line.
// Wrap-mode warnings and postmaster notices use it.
func WarningLines(code string, p TextParams) ([]string, error) {
	w, t, err := lookup(code)
	if err != nil {
		return nil, err
	}
	lines := []string{fillTable2(t, code, p), "", w.Meaning}
	lines = append(lines, w.Causes...)
	if l := oneLine(p.Link); l != "" {
		lines = append(lines, "", LinkIntro+" "+l)
	}
	return lines, nil
}

// BannerLines is the short form for prepend mode: the Table 2 text and, when
// a link is given, the R78 link line.
func BannerLines(code string, p TextParams) ([]string, error) {
	line, err := WarningLine(code, p)
	if err != nil {
		return nil, err
	}
	lines := []string{line}
	if l := oneLine(p.Link); l != "" {
		lines = append(lines, LinkIntro+" "+l)
	}
	return lines, nil
}

// ShortText is the start of the X-NZ-Secure-Warning value: the code and the
// Table 2 heading, e.g. "002 UNVERIFIED MESSAGE" (ASCII only).
func ShortText(code string) (string, error) {
	_, t, err := lookup(code)
	if err != nil {
		return "", err
	}
	return code + " " + t.Heading, nil
}

// ASCIIDash replaces the spec's EN DASH (U+2013) with "-". It is the one
// change the package makes to a normative text, and only where the text
// must be ASCII or must fit a legacy charset that has no en dash (see
// Options.StrictText).
func ASCIIDash(s string) string { return strings.ReplaceAll(s, "\u2013", "-") }

// oneLine makes s safe for one line of a generated message: control
// characters (CR, LF, NUL, ...) become spaces, runs of white space collapse,
// and the result is trimmed and cut at 900 bytes on a rune boundary.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
		if b.Len() >= 900 {
			break
		}
	}
	return b.String()
}

// LinkFor expands a per-code link template (R78), replacing "{code}" with
// the Table 3 code: "https://www.agency.govt.nz/seeinfo/warning{code}.html".
// An empty template gives no link.
func LinkFor(template, code string) string {
	return strings.ReplaceAll(template, "{code}", code)
}
