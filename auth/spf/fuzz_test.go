package spf

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// suiteStrings returns every SPF/TXT string of the zone data of both test
// suites, the seeds of the fuzz targets.
func suiteStrings(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, name := range []string{"rfc7208-tests.yml", "rfc4408-tests.yml"} {
		f, err := os.Open(filepath.Join("..", "..", "testdata", "spf", name))
		if err != nil {
			tb.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var doc struct {
				Zonedata map[string][]any `yaml:"zonedata"`
			}
			if err := dec.Decode(&doc); err != nil {
				if !errors.Is(err, io.EOF) {
					tb.Fatal(err)
				}
				break
			}
			for _, entries := range doc.Zonedata {
				for _, e := range entries {
					m, ok := e.(map[string]any)
					if !ok {
						continue
					}
					for typ, v := range m {
						if typ != "SPF" && typ != "TXT" {
							continue
						}
						switch v := v.(type) {
						case string:
							out = append(out, v)
						case []any:
							var b strings.Builder
							for _, p := range v {
								if s, ok := p.(string); ok {
									b.WriteString(s)
								}
							}
							out = append(out, b.String())
						}
					}
				}
			}
		}
		f.Close()
	}
	return out
}

// loopResolver answers every TXT query with the same record, every
// address query with 192.0.2.1, every MX query with one host and every
// PTR query with one name: the fuzzed record then meets itself through
// include and redirect, which must stop at the processing limits.
type loopResolver struct{ txt string }

func (l loopResolver) LookupTXT(context.Context, string) ([]string, error) {
	return []string{l.txt}, nil
}
func (loopResolver) LookupIP(_ context.Context, network, _ string) ([]net.IP, error) {
	if network == "ip6" {
		return nil, ErrNotFound
	}
	return []net.IP{net.IPv4(192, 0, 2, 1)}, nil
}
func (loopResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return []*net.MX{{Host: "mx.example.com.", Pref: 10}}, nil
}
func (loopResolver) LookupAddr(context.Context, string) ([]string, error) {
	return []string{"host.example.com."}, nil
}

// FuzzParseRecord parses arbitrary records and evaluates those that
// parse: no panic, and the evaluation terminates within the limits.
func FuzzParseRecord(f *testing.F) {
	for _, s := range suiteStrings(f) {
		f.Add(s)
	}
	f.Add("v=spf1 include:%{d} redirect=%{d} -all")
	f.Add("spf2.0/mfrom,pra a:%{ir}.%{v}.example.com//64 ~all")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNotRecord) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		_ = r.AllQualifier()
		ev := &Evaluator{Resolver: loopResolver{txt: s}}
		out, _ := ev.CheckSenderID(context.Background(), net.ParseIP("192.0.2.9"), ScopeMFrom, "a@example.com", "helo.example.com")
		if out.Terms > maxDNSTerms+1 {
			t.Fatalf("%d DNS terms", out.Terms)
		}
	})
}

// FuzzExpandMacro parses arbitrary macro-strings in the three grammars
// and expands them: no panic, and a domain name that comes out is valid.
func FuzzExpandMacro(f *testing.F) {
	for _, s := range suiteStrings(f) {
		for _, term := range strings.Split(s, " ") {
			if i := strings.IndexAny(term, ":="); i >= 0 {
				term = term[i+1:]
			}
			f.Add(term)
		}
	}
	f.Add("%{ir}.%{v}._spf.%{d2}")
	f.Add("%{l2r+-}.user.%{D2}%%%_%-")
	f.Fuzz(func(t *testing.T, s string) {
		c := testChecker("2001:db8::1", "a-b+c@example.com")
		for _, flags := range []macroFlags{0, macroAllLetters, macroExplain} {
			ms, err := parseMacroString(s, flags)
			if err != nil {
				continue
			}
			out := expand(ms, c, "example.com")
			if name, ok := domainName(out); ok && (len(name) > 253 || !validLabels(name)) {
				t.Fatalf("bad name %q from %q", name, s)
			}
		}
		if ms, err := parseDomainSpec(s); err == nil && len(ms) == 0 {
			t.Fatalf("empty domain-spec accepted: %q", s)
		}
	})
}
