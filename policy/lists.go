package policy

import (
	"fmt"
	"strings"
)

// listTest is one header test of the LISTSERVE rule.
type listTest struct {
	name   string // header name, compared without regard to case
	prefix bool   // name is a prefix (x-mailman: X-Mailman-Version, ...)
	value  string // when set, the value must be this (lower case)
	r199   bool   // in R199's list; false for the additions below
}

// listTests implements R199 (spec line 738, R199ListHeaders) item by item,
// then adds the RFC 2369 header R199 does not name and the other
// Precedence values mailing lists use:
//   - "mailing list:" cannot be a header name (no spaces in field names): it
//     is read as Mailing-List, the header ezmlm and Yahoo Groups write;
//   - "x-mailman:" is read as any header starting with X-Mailman (Mailman
//     writes X-Mailman-Version and X-Mailman-Approved-At, not X-Mailman);
//   - "precedence: bulk" compares the value without case or comments.
//
// Additions (not in R199): List-Owner (RFC 2369), Precedence: list and
// Precedence: junk.
var listTests = []listTest{
	{name: "Errors-To", r199: true},
	{name: "List-Archive", r199: true},
	{name: "List-Help", r199: true},
	{name: "List-Id", r199: true},
	{name: "List-Name", r199: true},
	{name: "List-Post", r199: true},
	{name: "List-Subscribe", r199: true},
	{name: "List-Unsubscribe", r199: true},
	{name: "Mailing-List", r199: true},
	{name: "Precedence", value: "bulk", r199: true},
	{name: "X-BeenThere", r199: true},
	{name: "X-Mailman", prefix: true, r199: true},
	{name: "List-Owner"},
	{name: "Precedence", value: "list"},
	{name: "Precedence", value: "junk"},
}

// ListMarker returns the first header that marks the message as coming
// from a list server (R199), as "Name" or "Name: value", and whether the
// test that matched is one of R199's own.
func ListMarker(headers []Header) (marker string, r199 bool, ok bool) {
	for _, h := range headers {
		name := strings.TrimSpace(h.Name)
		for _, t := range listTests {
			if t.prefix {
				if len(name) < len(t.name) || !strings.EqualFold(name[:len(t.name)], t.name) {
					continue
				}
			} else if !strings.EqualFold(name, t.name) {
				continue
			}
			if t.value != "" {
				if precedenceValue(h.Value) != t.value {
					continue
				}
				return t.name + ": " + t.value, t.r199, true
			}
			return name, t.r199, true
		}
	}
	return "", false, false
}

// IsListMail reports whether any LISTSERVE header (R199, plus List-Owner and
// Precedence: list/junk) is present.
func IsListMail(headers []Header) bool {
	_, _, ok := ListMarker(headers)
	return ok
}

// precedenceValue is the Precedence value in lower case without comments
// and white space.
func precedenceValue(v string) string {
	v = strings.ToLower(v)
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// Workspace is the WORKSPACE list of R108: domains (the LDAP list holds
// them as *@domainname) whose mail is not warned about as UNVERIFIED.
// The zero value and nil are empty lists.
type Workspace struct {
	domains map[string]struct{}
}

// NewWorkspace builds the list from entries written "*@domain", "@domain"
// or "domain". An entry with a real local part is refused: the list is of
// domains.
func NewWorkspace(entries []string) (*Workspace, error) {
	w := &Workspace{domains: make(map[string]struct{}, len(entries))}
	for _, e := range entries {
		d := strings.TrimSpace(e)
		if i := strings.LastIndexByte(d, '@'); i >= 0 {
			if lp := d[:i]; lp != "" && lp != "*" {
				return nil, fmt.Errorf("workspace entry %q: the WORKSPACE list (R108) holds domains (*@domain), not addresses", e)
			}
			d = d[i+1:]
		}
		d = NormDomain(d)
		if d == "" || strings.ContainsAny(d, " \t@*") {
			return nil, fmt.Errorf("workspace entry %q: not a domain", e)
		}
		w.domains[d] = struct{}{}
	}
	return w, nil
}

// Contains reports whether addr (an address, with or without angle
// brackets or display name) is in a workspace domain. The match is on the
// whole domain: a subdomain is a different entry, as in the LDAP list.
func (w *Workspace) Contains(addr string) bool {
	if w == nil || len(w.domains) == 0 {
		return false
	}
	_, d := SplitAddress(addr)
	if d == "" {
		return false
	}
	_, ok := w.domains[d]
	return ok
}

// Len is the number of domains in the list.
func (w *Workspace) Len() int {
	if w == nil {
		return 0
	}
	return len(w.domains)
}
