package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// show renders a decoded TOML value for an error message.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, got %s", show(v))
	}
	return s, nil
}

func asBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("must be true or false, got %s", show(v))
	}
	return b, nil
}

func asEnum(v any, allowed ...string) (string, error) {
	s, ok := v.(string)
	if ok {
		for _, a := range allowed {
			if s == a {
				return s, nil
			}
		}
	}
	hint := ""
	switch v.(type) {
	case float64, int64:
		hint = fmt.Sprintf(` (write it as a string: "%v")`, v)
	}
	return "", fmt.Errorf("must be one of %q, got %s%s", allowed, show(v), hint)
}

// asSize takes a byte count as an integer or a string with a binary suffix:
// "64M", "512KiB", "1G".
func asSize(v any) (int64, error) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case string:
		s := strings.TrimSpace(strings.ToUpper(v))
		mult := int64(1)
		for _, suf := range []struct {
			s string
			m int64
		}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
			if strings.HasSuffix(s, suf.s) {
				s, mult = strings.TrimSpace(strings.TrimSuffix(s, suf.s)), suf.m
				break
			}
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i > (1<<62)/mult {
			return 0, fmt.Errorf("must be a size like 64M or 1048576, got %q", v)
		}
		n = i * mult
	default:
		return 0, fmt.Errorf("must be a size like \"64M\" or 1048576, got %s", show(v))
	}
	if n <= 0 {
		return 0, fmt.Errorf("must be more than 0, got %d", n)
	}
	return n, nil
}

func stringList(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings, got %s", show(v))
	}
	out := make([]string, 0, len(arr))
	var bad []string
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			bad = append(bad, show(e))
			continue
		}
		out = append(out, s)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("must be a list of strings; not strings: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// domainList checks every entry and reports all bad ones in one message.
func domainList(v any, wildcards bool) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	var bad []string
	for _, s := range list {
		d, err := checkDomain(s, wildcards)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		out = append(out, d)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad domain: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// checkDomain validates a DNS domain name (LDH labels, A-label form for IDNs)
// and returns it lower-cased without a trailing dot. With wildcards, a leading
// "*." is allowed.
func checkDomain(s string, wildcards bool) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	name := d
	if wildcards && strings.HasPrefix(name, "*.") {
		name = name[2:]
	}
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%q is not a domain name", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q is not a domain name (use the A-label form for IDNs)", s)
			}
		}
	}
	return d, nil
}

func prefixList(v any) ([]netip.Prefix, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(list))
	var bad []string
	for _, s := range list {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			// A bare address means a single host.
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				bad = append(bad, fmt.Sprintf("%q is not a CIDR network or address", s))
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Masked() != p {
			bad = append(bad, fmt.Sprintf("%q has host bits set (did you mean %s?)", s, p.Masked()))
			continue
		}
		out = append(out, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad network: %s", strings.Join(bad, "; "))
	}
	return out, nil
}

// asDuration takes a Go duration string ("5s", "1h") within [lo, hi].
func asDuration(v any, lo, hi time.Duration) (time.Duration, error) {
	s, err := asString(v)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("must be a duration between %s and %s, like \"5s\", got %q", lo, hi, s)
	}
	return d, nil
}

// asAddress takes a mail address local@domain with a valid domain.
func asAddress(v any) (string, error) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.ContainsAny(local, " <>\t") {
		return "", fmt.Errorf("must be an address like postmaster@agency.govt.nz, got %q", s)
	}
	d, err := checkDomain(domain, false)
	if err != nil {
		return "", err
	}
	return local + "@" + d, nil
}
