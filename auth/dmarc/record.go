package dmarc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Policy is a requested Mail Receiver policy (RFC 7489 section 6.3, p=
// and sp=), and also the disposition applied to a message.
type Policy string

// Policies of RFC 7489 section 6.3.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// Alignment is an identifier alignment mode (RFC 7489 section 3.1,
// adkim= and aspf=).
type Alignment string

// Alignment modes.
const (
	Relaxed Alignment = "r"
	Strict  Alignment = "s"
)

// Defaults of RFC 7489 section 6.3.
const (
	DefaultPercent        = 100
	DefaultReportInterval = 86400
)

// Record parsing errors.
var (
	// ErrNotDMARC: the TXT record does not start with "v=DMARC1" (RFC
	// 7489 section 6.3, v=: such records are ignored).
	ErrNotDMARC = errors.New("dmarc: not a DMARC record")
	// ErrInvalidRecord: a DMARC record without a valid p= (or with an
	// invalid sp=) (RFC 7489 section 6.6.3 step 6). ParseRecord returns
	// the record it could read with it, rua= included.
	ErrInvalidRecord = errors.New("dmarc: invalid DMARC record")
)

// Record is a parsed DMARC record (RFC 7489 section 6.3).
type Record struct {
	// Policy is p=.
	Policy Policy
	// SubdomainPolicy is sp=; "" when absent (p= then applies to
	// subdomains too).
	SubdomainPolicy Policy
	// Percent is pct= (0 to 100; default 100).
	Percent int
	// DKIMAlignment and SPFAlignment are adkim= and aspf= (default r).
	DKIMAlignment, SPFAlignment Alignment
	// AggregateReportURIs and FailureReportURIs are rua= and ruf= (the
	// URIs as written, size limits "!10m" kept). Parsed, not used: this
	// product sends no reports.
	AggregateReportURIs, FailureReportURIs []string
	// FailureOptions is fo= (default ["0"]).
	FailureOptions []string
	// ReportFormats is rf= (default ["afrf"]).
	ReportFormats []string
	// ReportInterval is ri= in seconds (default 86400).
	ReportInterval uint32
	// Ignored lists the tags whose values were syntax errors and so were
	// replaced by their defaults (RFC 7489 section 6.3: "Syntax errors
	// in the remainder of the record SHOULD be discarded in favor of
	// default values").
	Ignored []string
}

// PolicyFor returns the policy for a message whose From domain is the
// organisational domain itself (p=) or a subdomain of it (sp=, or p= when
// sp= is absent; RFC 7489 section 6.3).
func (r *Record) PolicyFor(subdomain bool) Policy {
	if subdomain && r.SubdomainPolicy != "" {
		return r.SubdomainPolicy
	}
	return r.Policy
}

// String formats the record back as "v=DMARC1; p=...; ..." with every
// tag explicit.
func (r *Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=DMARC1; p=%s", r.Policy)
	if r.SubdomainPolicy != "" {
		fmt.Fprintf(&b, "; sp=%s", r.SubdomainPolicy)
	}
	fmt.Fprintf(&b, "; pct=%d; adkim=%s; aspf=%s", r.Percent, r.DKIMAlignment, r.SPFAlignment)
	if len(r.AggregateReportURIs) > 0 {
		fmt.Fprintf(&b, "; rua=%s", strings.Join(r.AggregateReportURIs, ","))
	}
	if len(r.FailureReportURIs) > 0 {
		fmt.Fprintf(&b, "; ruf=%s", strings.Join(r.FailureReportURIs, ","))
	}
	fmt.Fprintf(&b, "; fo=%s; rf=%s; ri=%d", strings.Join(r.FailureOptions, ":"), strings.Join(r.ReportFormats, ":"), r.ReportInterval)
	return b.String()
}

// ParseRecord parses the text of one DMARC TXT record (its strings
// already concatenated). The record must start with the tag "v=DMARC1",
// exactly (RFC 7489 section 6.3: "It MUST be the first tag in the list"
// and "MUST match precisely"), else ErrNotDMARC. Tag names are matched
// case-insensitively, policy and alignment values too (RFC 7489 section
// 6.4: ABNF literals); unknown tags are ignored; the first of repeated
// tags wins. A missing or invalid p=, or an invalid sp=, gives
// ErrInvalidRecord together with what could be read (RFC 7489 section
// 6.6.3 step 6 then looks at rua=); other bad values fall back to their
// defaults and are listed in Record.Ignored.
func ParseRecord(txt string) (*Record, error) {
	specs := strings.Split(txt, ";")
	name, value, ok := strings.Cut(specs[0], "=")
	if !ok || strings.Trim(name, " \t") != "v" || strings.Trim(value, " \t") != "DMARC1" {
		return nil, ErrNotDMARC
	}
	r := &Record{
		Percent:        DefaultPercent,
		DKIMAlignment:  Relaxed,
		SPFAlignment:   Relaxed,
		FailureOptions: []string{"0"},
		ReportFormats:  []string{"afrf"},
		ReportInterval: DefaultReportInterval,
	}
	seen := map[string]bool{}
	var invalid []string
	for _, spec := range specs[1:] {
		if strings.Trim(spec, " \t\r\n") == "" {
			continue // RFC 7489 section 6.4: a trailing ";" is allowed
		}
		name, value, ok := strings.Cut(spec, "=")
		name = strings.ToLower(strings.Trim(name, " \t\r\n"))
		value = strings.Trim(value, " \t\r\n")
		if !ok || name == "" {
			r.Ignored = append(r.Ignored, strings.TrimSpace(spec))
			continue
		}
		if seen[name] {
			r.Ignored = append(r.Ignored, name)
			continue
		}
		seen[name] = true
		bad := false
		switch name {
		case "p":
			if r.Policy, ok = parsePolicy(value); !ok {
				invalid = append(invalid, "p="+value)
			}
		case "sp":
			if r.SubdomainPolicy, ok = parsePolicy(value); !ok {
				invalid = append(invalid, "sp="+value)
			}
		case "adkim":
			r.DKIMAlignment, bad = parseAlignment(value)
		case "aspf":
			r.SPFAlignment, bad = parseAlignment(value)
		case "pct":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > 100 || len(value) > 3 {
				bad = true
			} else {
				r.Percent = n
			}
		case "ri":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				bad = true
			} else {
				r.ReportInterval = uint32(n)
			}
		case "fo":
			opts, ok := parseList(value, ":", func(s string) bool { return s == "0" || s == "1" || s == "d" || s == "s" })
			if bad = !ok; ok {
				r.FailureOptions = opts
			}
		case "rf":
			formats, ok := parseList(value, ":", isKeyword)
			if bad = !ok; ok {
				r.ReportFormats = formats
			}
		case "rua", "ruf":
			// Keep the valid URIs: RFC 7489 section 6.6.3 step 6 asks
			// whether "at least one syntactically valid reporting URI"
			// is present.
			var uris []string
			for _, u := range strings.Split(value, ",") {
				if u = strings.Trim(u, " \t\r\n"); validReportURI(u) {
					uris = append(uris, u)
				} else {
					r.Ignored = append(r.Ignored, name+"="+u)
				}
			}
			if name == "rua" {
				r.AggregateReportURIs = uris
			} else {
				r.FailureReportURIs = uris
			}
		}
		if bad {
			r.Ignored = append(r.Ignored, name+"="+value)
		}
	}
	if r.Policy == "" && !seen["p"] {
		invalid = append(invalid, "no p= tag")
	}
	if len(invalid) > 0 {
		return r, fmt.Errorf("%w: %s", ErrInvalidRecord, strings.Join(invalid, ", "))
	}
	return r, nil
}

func parsePolicy(s string) (Policy, bool) {
	switch p := Policy(strings.ToLower(s)); p {
	case PolicyNone, PolicyQuarantine, PolicyReject:
		return p, true
	}
	return "", false
}

// parseAlignment returns the mode and whether s was invalid (then
// Relaxed, the default).
func parseAlignment(s string) (Alignment, bool) {
	switch a := Alignment(strings.ToLower(s)); a {
	case Relaxed, Strict:
		return a, false
	}
	return Relaxed, true
}

func parseList(s, sep string, valid func(string) bool) ([]string, bool) {
	var out []string
	for _, item := range strings.Split(s, sep) {
		item = strings.Trim(item, " \t\r\n")
		if !valid(item) {
			return nil, false
		}
		out = append(out, item)
	}
	return out, len(out) > 0
}

// isKeyword: RFC 5321 Keyword (rf= values, RFC 7489 section 6.4).
func isKeyword(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// validReportURI: a DMARC URI, an absolute URI with an optional size
// limit "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] (RFC 7489 section 6.4).
func validReportURI(s string) bool {
	if i := strings.LastIndexByte(s, '!'); i >= 0 {
		size := strings.TrimRight(strings.ToLower(s[i+1:]), "kmgt")
		if len(s[i+1:])-len(size) > 1 || size == "" || strings.Trim(size, "0123456789") != "" {
			return false
		}
		s = s[:i]
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "" || u.Path != "") && !strings.ContainsAny(s, " \t")
}
