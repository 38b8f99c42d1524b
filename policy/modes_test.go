package policy

import (
	"errors"
	"strings"
	"testing"
)

// Each enumerated policy type accepts exactly its values and rejects any
// other, naming every allowed value (issue 13 point 5).
func TestUnmarshalTextEnums(t *testing.T) {
	type enum interface{ UnmarshalText([]byte) error }
	for _, c := range []struct {
		name    string
		dst     func() (enum, func() string)
		allowed []string
	}{
		{"Mode", func() (enum, func() string) { var m Mode; return &m, func() string { return string(m) } }, []string{"off", "tag", "enforce"}},
		{"WarningMode", func() (enum, func() string) { var m WarningMode; return &m, func() string { return string(m) } }, []string{"wrap", "prepend", "header"}},
		{"UnverifiedAction", func() (enum, func() string) { var m UnverifiedAction; return &m, func() string { return string(m) } }, []string{"warn", "delete"}},
		{"PartialAction", func() (enum, func() string) { var m PartialAction; return &m, func() string { return string(m) } }, []string{"split", "refuse"}},
		{"UnreadableAction", func() (enum, func() string) { var m UnreadableAction; return &m, func() string { return string(m) } }, []string{"hold", "refuse", "accept"}},
		{"Routing", func() (enum, func() string) { var m Routing; return &m, func() string { return string(m) } }, []string{"best-effort", "secure-only", "seemail-only", "exception-only", "hold"}},
		{"TLSLevel", func() (enum, func() string) { var m TLSLevel; return &m, func() string { return string(m) } }, []string{"encrypt", "secure"}},
		{"CheckResult", func() (enum, func() string) { var m CheckResult; return &m, func() string { return string(m) } }, []string{"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, a := range c.allowed {
				dst, get := c.dst()
				if err := dst.UnmarshalText([]byte(a)); err != nil || get() != a {
					t.Errorf("%q: got %q, %v", a, get(), err)
				}
			}
			for _, bad := range []string{"", "bogus", strings.ToUpper(c.allowed[0]), c.allowed[0] + " "} {
				dst, get := c.dst()
				err := dst.UnmarshalText([]byte(bad))
				if !errors.Is(err, ErrUnknownValue) {
					t.Fatalf("%q: want ErrUnknownValue, got %v (value %q)", bad, err, get())
				}
				if get() != "" {
					t.Errorf("%q: value set to %q on error", bad, get())
				}
				for _, a := range c.allowed {
					if !strings.Contains(err.Error(), `"`+a+`"`) {
						t.Errorf("%q: error %q does not name %q", bad, err, a)
					}
				}
			}
		})
	}
}
