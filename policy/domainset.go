package policy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// DomainSet is a list of domains and "*.suffix" wildcards. A wildcard
// matches every name below the suffix but not the suffix itself
// ("*.govt.nz" matches "mfat.govt.nz", not "govt.nz").
type DomainSet struct {
	exact    map[string]bool
	suffixes []string // ".govt.nz"
	entries  []string // as configured, for reports
}

// Match reports whether domain (any case, trailing dot allowed) is in the set.
func (s DomainSet) Match(domain string) bool {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	if d == "" {
		return false
	}
	if s.exact[d] {
		return true
	}
	for _, suf := range s.suffixes {
		if strings.HasSuffix(d, suf) {
			return true
		}
	}
	return false
}

// Len is the number of entries.
func (s DomainSet) Len() int { return len(s.entries) }

// Entries lists the entries (files expanded).
func (s DomainSet) Entries() []string { return append([]string(nil), s.entries...) }

func (s *DomainSet) add(d string) {
	if s.exact == nil {
		s.exact = map[string]bool{}
	}
	if suf, ok := strings.CutPrefix(d, "*"); ok {
		s.suffixes = append(s.suffixes, suf)
	} else {
		s.exact[d] = true
	}
	s.entries = append(s.entries, d)
}

// domainSet parses a list whose entries are domains, wildcards or
// "file:/path" (one entry a line, # comments), reporting every bad entry
// with the file line it came from.
func domainSet(v any) (DomainSet, error) {
	var set DomainSet
	list, err := stringList(v)
	if err != nil {
		return set, err
	}
	var bad []string
	for _, e := range list {
		path, isFile := strings.CutPrefix(e, "file:")
		if !isFile {
			d, err := checkDomain(e, true)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			set.add(d)
			continue
		}
		if !strings.HasPrefix(path, "/") {
			bad = append(bad, fmt.Sprintf("%q: the file path must be absolute", e))
			continue
		}
		if err := readDomainFile(path, &set, &bad); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return DomainSet{}, fmt.Errorf("bad domain: %s", strings.Join(bad, "; "))
	}
	return set, nil
}

func readDomainFile(path string, set *DomainSet, bad *[]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		d, err := checkDomain(line, true)
		if err != nil {
			*bad = append(*bad, fmt.Sprintf("%s:%d: %v", path, n, err))
			continue
		}
		set.add(d)
	}
	return sc.Err()
}
