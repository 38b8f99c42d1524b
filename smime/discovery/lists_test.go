package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listSource(t *testing.T, addr string) ListSource {
	t.Helper()
	u, err := ParseURL("ldap://" + addr + "/ou=SEEMail,ou=lists,c=NZ?mail?one?(objectClass=inetOrgPerson)")
	if err != nil {
		t.Fatal(err)
	}
	return ListSource{Name: "seemail", URL: u, File: filepath.Join(t.TempDir(), "lists", "seemail"), Wildcards: true}
}

func fileEntries(t *testing.T, path string) string {
	t.Helper()
	got, err := readListFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(got, ",")
}

// R55, R108: the list is read from the directory ("*@domain" and
// "@domain" entries, any case) into the file the policy reads; with the
// directory down the last good copy stays.
func TestRefreshListKeepsLastGoodCopy(t *testing.T) {
	srv := startDirectory(t)
	src := listSource(t, srv.Addr)
	r := RefreshList(context.Background(), src, nil, 3*time.Second)
	if r.Err != nil || !r.Changed || r.Entries != 3 {
		t.Fatalf("first refresh: %+v", r)
	}
	const want = "agency-a.govt.nz,agency-b.govt.nz,sub.agency-b.govt.nz"
	if got := fileEntries(t, src.File); got != want {
		t.Fatalf("list file = %s, want %s", got, want)
	}
	// Unchanged: not rewritten.
	if r := RefreshList(context.Background(), src, nil, 3*time.Second); r.Err != nil || r.Changed {
		t.Fatalf("second refresh: %+v", r)
	}
	srv.Stop(t)
	r = RefreshList(context.Background(), src, nil, time.Second)
	if !errors.Is(r.Err, ErrUnavailable) || r.Changed || r.Entries != 3 || !strings.Contains(r.Err.Error(), "last good copy (3 entries) is kept") {
		t.Fatalf("refresh with the directory down: %+v", r)
	}
	if got := fileEntries(t, src.File); got != want {
		t.Fatalf("list file after the outage = %s", got)
	}
}

// An answer that is empty, truncated or holds a non-domain is not used.
func TestRefreshListRefusesBadAnswers(t *testing.T) {
	src := listSource(t, "127.0.0.1:1")
	if err := os.MkdirAll(filepath.Dir(src.File), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src.File, []byte("# earlier\nagency-a.govt.nz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, answer := range map[string]struct {
		vals [][]byte
		err  error
	}{
		"empty":     {nil, nil},
		"address":   {[][]byte{[]byte("*@agency-a.govt.nz"), []byte("bob@agency-b.govt.nz")}, nil},
		"garbage":   {[][]byte{[]byte("agency a")}, nil},
		"truncated": {[][]byte{[]byte("agency-b.govt.nz")}, ErrTruncated},
	} {
		fn := func(context.Context, URL, *tls.Config, query) ([][]byte, error) { return answer.vals, answer.err }
		r := refreshList(context.Background(), fn, src, nil, time.Second)
		if r.Err == nil || r.Changed {
			t.Errorf("%s: %+v, want refused", name, r)
		}
		if got := fileEntries(t, src.File); got != "agency-a.govt.nz" {
			t.Errorf("%s: file now %s", name, got)
		}
	}
	// WORKSPACE: no wildcards.
	src.Wildcards = false
	fn := func(context.Context, URL, *tls.Config, query) ([][]byte, error) {
		return [][]byte{[]byte("*.govt.nz")}, nil
	}
	if r := refreshList(context.Background(), fn, src, nil, time.Second); r.Err == nil {
		t.Errorf("a wildcard in a list without wildcards was accepted")
	}
}

func TestParseURL(t *testing.T) {
	u, err := ParseURL("ldaps://Dir.Example/ou=SEEMail,c=NZ?mail,cn?one?(objectClass=*)")
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "ldaps" || u.Host != "Dir.Example:636" || u.Base != "ou=SEEMail,c=NZ" || strings.Join(u.Attrs, ",") != "mail,cn" || u.Scope != ScopeOne || u.Filter != "(objectClass=*)" {
		t.Fatalf("%+v", u)
	}
	if u, err := ParseURL("ldap://h"); err != nil || u.Host != "h:389" || u.Base != "" || u.Scope != ScopeSub {
		t.Fatalf("%+v %v", u, err)
	}
	for _, bad := range []string{"http://h/", "ldap:///c=NZ", "ldap://u:pw@h/", "ldap://h/c=NZ?mail?deep", "ldap://h/c=NZ?mail?sub?(bad", "ldap://h/c=NZ?a?sub?(a=b)?ext", "ldap://h/not a dn"} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", bad, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ldap://h/c=NZ?mail?one?(a=b)", "ldaps://h:1/", "ldap://h/%zz", "ldap://[::1]/c=NZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err == nil && (u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps")) {
			t.Fatalf("accepted %q as %+v", s, u)
		}
	})
}

func FuzzParseListEntries(f *testing.F) {
	f.Add("*@agency-a.govt.nz\n@b.govt.nz\nc.govt.nz\n*.govt.nz")
	f.Fuzz(func(t *testing.T, s string) {
		var vals [][]byte
		for _, v := range strings.Split(s, "\n") {
			vals = append(vals, []byte(v))
		}
		entries, _ := parseListEntries(vals, true)
		for _, e := range entries {
			if strings.ContainsAny(e, "@ \t\n#") || e == "" {
				t.Fatalf("entry %q from %q", e, s)
			}
		}
	})
}

// RunLists signals a change when a file differs from what this process
// saw, also when another gateway sharing lists.dir wrote it (this
// process's refresh then finds it up to date, or fails): its policy must
// reload too.
func TestRunListsSeesAnotherGatewaysCopy(t *testing.T) {
	src := listSource(t, "127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rounds := 0
	refresh := func(s ListSource) ListResult {
		rounds++
		switch rounds {
		case 2: // the other gateway wrote a copy; ours found it current
			if err := writeFileAtomic(s.File, []byte("agency-b.govt.nz\n")); err != nil {
				t.Error(err)
			}
		case 4: // the other gateway wrote a new copy; our directory is down
			if err := writeFileAtomic(s.File, []byte("agency-b.govt.nz\nagency-c.govt.nz\n")); err != nil {
				t.Error(err)
			}
			return ListResult{Name: s.Name, Err: ErrUnavailable}
		}
		return ListResult{Name: s.Name}
	}
	var changes []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		runLists(ctx, []ListSource{src}, refresh, time.Millisecond, nil, func() {
			changes = append(changes, rounds)
			if len(changes) == 2 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runLists did not signal two changes")
	}
	if len(changes) != 2 || changes[0] != 2 || changes[1] != 4 {
		t.Fatalf("changes signalled after rounds %v, want [2 4]", changes)
	}
}
