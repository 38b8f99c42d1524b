package classify

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/text/transform"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// The text of an Office Open XML or OpenDocument part (R34, issue 11
// point 7): the character data of the XML in document order, as a reader
// sees it. A Word paragraph is runs, and an editor splits a run wherever
// the formatting or the revision changes, so "[SEC" and "RET]" in two
// <w:t> of one <w:p> are one word: character data of a paragraph is
// joined as it is, and the end of a paragraph (w:p, a:p in DrawingML,
// text:p and text:h in ODF), a table cell, a shared string (xl si) or a
// spreadsheet cell is a line break. Attribute values are not text.
// Elements are matched by local name, so the prefixes a producer chooses
// do not matter.

// paragraphEnd lists the elements whose end is a line break.
var paragraphEnd = map[string]bool{
	"p": true, "h": true, // w:p, a:p (ECMA-376 17.3.1.22, 21.1.2.2.6); text:p, text:h (ODF 5.1)
	"br": true, "cr": true, "line-break": true, // w:br, w:cr, a:br; text:line-break
	"tc": true, "tr": true, // w:tc, a:tc, w:tr, a:tr: table cells and rows
	"table-cell": true, "table-row": true, // ODF tables
	"si": true, "c": true, "row": true, // xl shared string item, cell, row (ECMA-376 18.4.8, 18.3.1.4)
	"comment": true, "txbxContent": true, "list-item": true,
}

// isMetadataPart reports whether a part holds document properties, whose
// elements (dc:title, dc:subject, cp:keywords, meta:user-defined, ...)
// are each a line of their own.
func isMetadataPart(name string) bool {
	switch strings.ToLower(name) {
	case "docprops/core.xml", "docprops/app.xml", "docprops/custom.xml", "meta.xml":
		return true
	}
	return false
}

// maxODFSpaces bounds the spaces one <text:s text:c="N"/> stands for.
const maxODFSpaces = 8

// xmlView is one view of a part's text: a matcher and its buffer.
type xmlView struct {
	m   *matcher
	out []byte
}

func (v *xmlView) emit(b ...byte) {
	if len(v.out)+len(b) > cap(v.out) {
		v.m.write(v.out)
		v.out = v.out[:0]
	}
	if len(b) > cap(v.out) {
		v.m.write(b)
		return
	}
	v.out = append(v.out, b...)
}

func (v *xmlView) close() {
	v.m.write(v.out)
	v.m.close()
}

// xmlText extracts the text of the XML part read from r into a matcher
// named where. The reader is bounded (limitReader), and so is what a token
// of encoding/xml may hold; the decoder never expands entities beyond the
// predefined ones, so there is no entity expansion bomb.
//
// Word can hide runs (<w:vanish/>, ECMA-376 17.3.2.41). As for HTML and
// RTF (issue 11 point 4), the text is matched in two views, every run
// included and hidden runs left out, so that neither hiding a marking nor
// hiding a few characters inside one defeats the scan.
func xmlText(ctx *scanCtx, r io.Reader, where string, meta bool) error {
	all := &xmlView{m: newMatcher(ctx, where), out: make([]byte, 0, 4096)}
	shown := &xmlView{m: newMatcher(ctx, where), out: make([]byte, 0, 4096)}
	inRun, hidden := false, false
	emit := func(b ...byte) {
		all.emit(b...)
		if !hidden {
			shown.emit(b...)
		}
	}
	d := xml.NewDecoder(r)
	// An 8-bit encoding declared in the XML declaration (XML 1.0 section
	// 4.3.3); Go's decoder knows only UTF-8 by itself.
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		enc, ok := lookupCharset(label)
		switch {
		case !ok:
			return nil, fmt.Errorf("unknown XML encoding %q", message.Clip(label, 40))
		case enc == nil:
			return in, nil
		}
		return transform.NewReader(in, enc.NewDecoder()), nil
	}
	var err error
	for {
		var tok xml.Token
		tok, err = d.RawToken()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isIndentation(t) {
				emit(t...)
			}
		case xml.StartElement:
			switch t.Name.Local {
			case "r":
				inRun, hidden = t.Name.Space == "w", false
			case "vanish":
				if inRun && t.Name.Space == "w" {
					hidden = !isOff(t.Attr)
				}
			case "noBreakHyphen": // w:noBreakHyphen reads as a hyphen
				emit('-')
			case "sheet", "table":
				// A sheet's name is on its tab, in an attribute: xl
				// <sheet name=...> (ECMA-376 18.2.19), ODF <table:table
				// table:name=...> (ODF 9.1.2).
				for _, a := range t.Attr {
					if a.Name.Local == "name" && (t.Name.Local == "sheet" || a.Name.Space == "table") {
						emit([]byte(a.Value)...)
						emit('\n')
					}
				}
			case "tab": // w:tab, a:tab, text:tab
				emit('\t')
			case "s": // text:s, text:c spaces (ODF 6.1.3)
				if t.Name.Space == "" {
					break // xl's <s> does not exist; only a prefixed s is ODF's
				}
				n := 1
				for _, a := range t.Attr {
					if a.Name.Local == "c" {
						if v, e := strconv.Atoi(a.Value); e == nil {
							n = min(max(v, 1), maxODFSpaces)
						}
					}
				}
				for ; n > 0; n-- {
					emit(' ')
				}
			}
		case xml.EndElement:
			if t.Name.Local == "r" && t.Name.Space == "w" {
				inRun, hidden = false, false
			}
			if meta || paragraphEnd[t.Name.Local] {
				hidden = false
				emit('\n')
			}
		}
	}
	all.close()
	shown.close()
	if err == io.EOF {
		return nil
	}
	return err
}

// isOff reports whether a Word toggle property is switched off
// (w:val="0", "false" or "off", ECMA-376 17.17.4).
func isOff(attrs []xml.Attr) bool {
	for _, a := range attrs {
		if a.Name.Local == "val" {
			switch a.Value {
			case "0", "false", "off":
				return true
			}
		}
	}
	return false
}

// isIndentation reports whether character data is only white space with a
// line break: the indentation of pretty-printed XML between elements, not
// text (a run's own spaces, <w:t xml:space="preserve"> </w:t>, stay).
func isIndentation(b []byte) bool {
	nl := false
	for _, c := range b {
		switch c {
		case '\n', '\r':
			nl = true
		case ' ', '\t':
		default:
			return false
		}
	}
	return nl
}
