package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// ListSource is one accredited gateway list kept in a directory (R55:
// SEEMail, SecureMail; R108: WORKSPACE, "*@domainname" entries): the URL
// names the base, the attribute, the scope and the filter (RFC 4516), and
// File is where the last good copy is kept, one domain a line, for the
// policy to read (policy lists.*_ldap).
type ListSource struct {
	Name string // "seemail", "securemail" or "workspace"
	URL  URL
	File string
	// Wildcards allows "*.suffix" entries (not in WORKSPACE: R108's list
	// is of whole domains).
	Wildcards bool
}

// DefaultListAttr is the attribute read when a list URL names none.
const DefaultListAttr = "mail"

// MaxListEntries bounds one list.
const MaxListEntries = 100_000

// maxListBytes bounds all a directory may send for one list.
const maxListBytes = 64 << 20

// ListResult is one refresh of one list.
type ListResult struct {
	Name    string
	File    string
	Entries int  // entries in the file after the refresh
	Changed bool // the file was rewritten with different entries
	// Err is why the directory's answer was not used; the last good copy
	// (if any) stays in File.
	Err error
}

// ErrBadList: the directory answered, but not with a list the gateway
// can use (empty, truncated, or an entry that is no domain): the last good
// copy is kept, as when the directory is down.
var ErrBadList = errors.New("discovery: unusable list")

// RefreshList reads src from its directory (bounded by timeout) and, when
// the answer is a complete list of valid domains, writes it to src.File
// atomically. On any failure the file is left as it was: the last good copy
// is used while the directory is down (issue 15 point 3). An empty answer is
// a failure too: a directory that lost its entries must not empty the
// SEEMail list (mail to every agency would lose S/MIME).
func RefreshList(ctx context.Context, src ListSource, tlsConf *tls.Config, timeout time.Duration) ListResult {
	return refreshList(ctx, search, src, tlsConf, timeout)
}

func refreshList(ctx context.Context, fn searcher, src ListSource, tlsConf *tls.Config, timeout time.Duration) ListResult {
	r := ListResult{Name: src.Name, File: src.File}
	old, oldErr := readListFile(src.File)
	r.Entries = len(old)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := query{base: src.URL.Base, scope: src.URL.Scope, filter: src.URL.Filter, attrs: src.URL.Attrs,
		sizeLimit: MaxListEntries, maxValues: MaxListEntries, maxValue: 1024, maxBytes: maxListBytes}
	if q.filter == "" {
		q.filter = "(objectClass=*)"
	}
	if len(q.attrs) == 0 {
		q.attrs = []string{DefaultListAttr}
	}
	vals, err := fn(sctx, src.URL, tlsConf, q)
	if err != nil {
		if sctx.Err() != nil && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: %s: no answer within %s: %v", ErrUnavailable, src.URL.Raw, timeout, err)
		}
		r.Err = keptNote(err, old, oldErr)
		return r
	}
	entries, bad := parseListEntries(vals, src.Wildcards)
	switch {
	case len(bad) > 0:
		r.Err = keptNote(fmt.Errorf("%w: %s: %d entries are not domains: %s", ErrBadList, src.URL.Raw, len(bad), strings.Join(firstN(bad, 5), ", ")), old, oldErr)
		return r
	case len(entries) == 0:
		r.Err = keptNote(fmt.Errorf("%w: %s: no entries", ErrBadList, src.URL.Raw), old, oldErr)
		return r
	}
	if oldErr == nil && slices.Equal(old, entries) {
		return r
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s list from %s, %s (nzsecure-milter, R55/R108); rewritten on every refresh\n", src.Name, src.URL.Raw, time.Now().UTC().Format(time.RFC3339))
	for _, e := range entries {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	if err := writeFileAtomic(src.File, []byte(b.String())); err != nil {
		r.Err = keptNote(err, old, oldErr)
		return r
	}
	r.Entries, r.Changed = len(entries), true
	return r
}

func keptNote(err error, old []string, oldErr error) error {
	if oldErr != nil {
		return fmt.Errorf("%w; no earlier copy", err)
	}
	return fmt.Errorf("%w; the last good copy (%d entries) is kept", err, len(old))
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// parseListEntries turns attribute values into sorted unique domains:
// "*@domain" and "@domain" (R108's form) and "domain" are one domain;
// "*.suffix" a wildcard where allowed.
func parseListEntries(vals [][]byte, wildcards bool) (entries, bad []string) {
	set := map[string]bool{}
	for _, v := range vals {
		s := strings.ToLower(strings.TrimSpace(string(v)))
		d := s
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			if lp := s[:i]; lp != "" && lp != "*" {
				bad = append(bad, fmt.Sprintf("%q", s))
				continue
			}
			d = s[i+1:]
		}
		d = strings.TrimSuffix(d, ".")
		name := d
		if wildcards {
			name = strings.TrimPrefix(d, "*.")
		}
		if checkDomain(name) != nil || strings.Contains(name, "_") {
			bad = append(bad, fmt.Sprintf("%q", s))
			continue
		}
		set[d] = true
	}
	for d := range set {
		entries = append(entries, d)
	}
	slices.Sort(entries)
	return entries, bad
}

// readListFile reads a list file as written above.
func readListFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out, nil
}

func writeFileAtomic(path string, data []byte) error {
	return smime.WriteFileAtomic(filepath.Dir(path), path, data)
}

// RunLists refreshes every list now and then every interval until ctx
// ends, calling report after every list, and changed (serve: reload the
// policy, which reads the files) after a round in which some file differs
// from what this process last saw in it: rewritten by this refresh, or by
// another gateway sharing lists.dir (issue 15 point 5), whose refresh
// would find the file already up to date.
func RunLists(ctx context.Context, srcs []ListSource, tlsConf *tls.Config, timeout, interval time.Duration, report func(ListResult), changed func()) {
	if len(srcs) == 0 {
		return
	}
	if interval < time.Minute {
		interval = time.Minute
	}
	runLists(ctx, srcs, func(s ListSource) ListResult { return RefreshList(ctx, s, tlsConf, timeout) }, interval, report, changed)
}

func runLists(ctx context.Context, srcs []ListSource, refresh func(ListSource) ListResult, interval time.Duration, report func(ListResult), changed func()) {
	// What the policy was loaded with: the files as they are now.
	seen := make([][]string, len(srcs))
	for i, s := range srcs {
		seen[i], _ = readListFile(s.File)
	}
	for {
		differs := false
		for i, s := range srcs {
			r := refresh(s)
			if report != nil {
				report(r)
			}
			now, _ := readListFile(s.File)
			if !slices.Equal(now, seen[i]) {
				seen[i], differs = now, true
			}
		}
		if differs && changed != nil {
			changed()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
