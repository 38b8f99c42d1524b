package policy

import (
	"bufio"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/contrib"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Every broken policy in testdata/bad gives exactly the problems in its
// .golden file: every one of them, each with its line (lint, issue 3).
func TestLintBrokenPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) == 0 {
		t.Fatal("no broken policies in testdata/bad")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(f), data, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestLintGoodPolicies(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	if len(files) < 2 {
		t.Fatal("no good policies in testdata/good")
	}
	for _, f := range files {
		if _, err := Load(f, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Every key the loader knows appears in the commented example (and default)
// policy, and every key written there is one the loader knows.
func TestEveryKeyDocumented(t *testing.T) {
	documented := map[string]int{}
	table := ""
	keyRe := regexp.MustCompile(`^#?\s*([a-z_]+)\s*=`)
	sc := bufio.NewScanner(strings.NewReader(string(contrib.DefaultPolicy)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[]") + "."
			continue
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			documented[table+m[1]]++
		}
	}
	for _, k := range Keys() {
		if table, ok := strings.CutSuffix(k, ".*"); ok {
			if !strings.Contains(string(contrib.DefaultPolicy), "["+table+"]") {
				t.Errorf("table [%s] is not documented in contrib/nzsecure-milter.toml", table)
			}
			continue
		}
		if documented[k] == 0 {
			t.Errorf("key %s is not documented in contrib/nzsecure-milter.toml", k)
		}
	}
	for k := range documented {
		if _, ok := keySpecs[k]; !ok && k != "profile" {
			t.Errorf("contrib/nzsecure-milter.toml documents %s, which the loader does not know", k)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p, err := Load("", nil)
	if err != nil {
		t.Fatalf("embedded default policy is invalid: %v", err)
	}
	if p.Profile != ProfileSGE || p.Inbound.MinTLS != "1.2" || p.Runtime.Listen.Milter != "inet:127.0.0.1:8891" || p.Source != EmbeddedName {
		t.Errorf("default policy: %+v", p)
	}
	if !p.Outbound.TagSecureEmail || p.Limits.MaxMessageSize != 64<<20 || p.Limits.MemorySpool != 1<<20 {
		t.Errorf("default limits/tagging: %+v", p)
	}
}

func TestProfilesAndOverrides(t *testing.T) {
	p, err := Load("testdata/good/full.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Profile != ProfileSecureMail || p.Inbound.MinTLS != "1.3" || p.Outbound.TagSecureEmail || p.Runtime.Log.Level != "debug" {
		t.Errorf("full.toml: %+v", p)
	}
	if got := strings.Join(p.Domains, ","); got != "agency.govt.nz,other.agency.govt.nz" {
		t.Errorf("domains normalised to %q", got)
	}
	if !p.IsInternal(netip.MustParseAddr("192.0.2.7")) || p.IsInternal(netip.MustParseAddr("192.0.2.8")) {
		t.Error("a bare address must be a single host")
	}
	if p.Limits.MaxMessageSize != 100<<20 || p.Limits.MemorySpool != 262144 {
		t.Errorf("sizes: %+v", p.Limits)
	}

	// --set overrides the file, and a profile set on the command line
	// changes the defaults of keys the file leaves alone.
	p, err = Load("testdata/good/empty.toml", []string{`profile=seemail`, `log.level=warn`, `inbound.min_tls="1.1"`, `domains=["a.example"]`})
	if err != nil {
		t.Fatal(err)
	}
	if p.Profile != ProfileSEEMail || p.Runtime.Log.Level != "warn" || p.Inbound.MinTLS != "1.1" || p.Domains[0] != "a.example" {
		t.Errorf("overrides: %+v", p)
	}
	p, err = Load("", []string{`profile="securemail"`})
	if err != nil || p.Inbound.MinTLS != "none" {
		t.Errorf("securemail default min_tls: %v %+v", err, p)
	}

	_, err = Load("", []string{"nonsense", `inbound.min_tls=1.3`, `bogus.key=1`})
	want := "--set:1: want KEY=VALUE, got \"nonsense\"\n" +
		"--set:2: inbound.min_tls: must be one of [\"none\" \"1.0\" \"1.1\" \"1.2\" \"1.3\"], got 1.3 (float64) (write it as a string: \"1.3\")\n" +
		"--set:3: bogus.key: unknown key"
	if err == nil || err.Error() != want {
		t.Errorf("bad overrides:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml", nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("got %v", err)
	}
}

func TestParseListenSpec(t *testing.T) {
	cases := []struct{ spec, network, addr, err string }{
		{"inet:127.0.0.1:8891", "tcp", "127.0.0.1:8891", ""},
		{"inet:[::1]:8891", "tcp", "[::1]:8891", ""},
		{"inet6:::1:8891", "tcp", "[::1]:8891", ""},
		{"inet:localhost:8891", "tcp", "localhost:8891", ""},
		{"unix:/run/m.sock", "unix", "/run/m.sock", ""},
		// libmilter's forms (Sendmail, OpenDKIM's Socket).
		{"inet:8891@127.0.0.1", "tcp", "127.0.0.1:8891", ""},
		{"inet:8891@localhost", "tcp", "localhost:8891", ""},
		{"inet6:8891@::1", "tcp", "[::1]:8891", ""},
		{"inet6:8891@[::1]", "tcp", "[::1]:8891", ""},
		{"local:/run/m.sock", "unix", "/run/m.sock", ""},
		{"inet:8891", "", "", "want inet:HOST:PORT"},
		{"inet:99999@127.0.0.1", "", "", "bad port"},
		{"inet:x@127.0.0.1", "", "", "want inet:HOST:PORT"},
		{"unix:m.sock", "", "", "must be absolute"},
		{"inet:127.0.0.1", "", "", "want inet:HOST:PORT"},
		{"inet:127.0.0.1:0", "", "", "bad port"},
		{"inet:bad host:25", "", "", "bad host"},
		{"127.0.0.1:8891", "", "", "want inet:HOST:PORT or unix:/PATH"},
	}
	for _, c := range cases {
		n, a, err := ParseListenSpec(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil || n != c.network || a != c.addr {
			t.Errorf("%s: %s %s %v", c.spec, n, a, err)
		}
	}
}

// FuzzParse: no policy text makes the loader panic, and a loaded policy
// always has a known profile.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Add(contrib.DefaultPolicy)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", data, nil)
		if err == nil && profileDefaults(p.Profile) == nil {
			t.Fatalf("loaded unknown profile %q", p.Profile)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
	})
}
