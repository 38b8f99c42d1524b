package policy

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"
)

// prefixSpec handles the keys of tables whose keys are data:
// [outbound.by_class] and [classification.levels].
func prefixSpec(key string) (keySpec, bool) {
	if word, ok := strings.CutPrefix(key, "classification.levels."); ok {
		return keySpec{func(p *Policy, v any) error {
			n, isInt := v.(int64)
			switch {
			case !isInt || n < 0 || n > 100:
				return fmt.Errorf("must be a rank from 0 to 100, got %s", show(v))
			case !validWord(word):
				return fmt.Errorf("%q is not a trigger word: upper case letters, digits, spaces and dashes only", word)
			case word == "RSVPDR":
				return fmt.Errorf("RSVPDR is the delivery-receipt word (R35), not a classification")
			}
			p.Classification.Levels[word] = int(n)
			return nil
		}}, true
	}
	class, ok := strings.CutPrefix(key, "outbound.by_class.")
	if !ok {
		return keySpec{}, false
	}
	names := make([]string, len(Routings))
	for i, r := range Routings {
		names[i] = string(r)
	}
	return keySpec{func(p *Policy, v any) error {
		// Set even when wrong, so that crossCheck still reports a class
		// the policy does not know.
		r, err := asEnum(v, names...)
		p.Outbound.ByClass[class] = Routing(r)
		return err
	}}, true
}

func validWord(w string) bool {
	if w == "" || len(w) > 64 {
		return false
	}
	for _, c := range w {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

// keySpec is one key of the policy file: how to check and apply its value.
type keySpec struct {
	set func(p *Policy, v any) error
}

// valueKey is a key whose value parse checks and converts; the result goes
// to the field field returns. Most keys are one of the typed helpers below,
// which name the parser once instead of one closure per key.
func valueKey[T any](field func(*Policy) *T, parse func(any) (T, error)) keySpec {
	return keySpec{func(p *Policy, v any) (err error) {
		*field(p), err = parse(v)
		return err
	}}
}

func boolKey(field func(*Policy) *bool) keySpec           { return valueKey(field, asBool) }
func stringKey(field func(*Policy) *string) keySpec       { return valueKey(field, asString) }
func stringListKey(field func(*Policy) *[]string) keySpec { return valueKey(field, stringList) }
func sizeKey(field func(*Policy) *int64) keySpec          { return valueKey(field, asSize) }
func domainSetKey(field func(*Policy) *DomainSet) keySpec { return valueKey(field, domainSet) }
func listenKey(field func(*Policy) *string) keySpec       { return valueKey(field, listenSpec) }
func addressKey(field func(*Policy) *string) keySpec      { return valueKey(field, asAddress) }

// domainListKey: a list of domain names, "*.suffix" entries allowed with
// wildcards.
func domainListKey(field func(*Policy) *[]string, wildcards bool) keySpec {
	return valueKey(field, func(v any) ([]string, error) { return domainList(v, wildcards) })
}

// durationKey: a Go duration string within [lo, hi].
func durationKey(field func(*Policy) *time.Duration, lo, hi time.Duration) keySpec {
	return valueKey(field, func(v any) (time.Duration, error) { return asDuration(v, lo, hi) })
}

// intKey: an integer within [lo, hi]; want describes it for the error.
func intKey(field func(*Policy) *int, lo, hi int64, want string) keySpec {
	return keySpec{func(p *Policy, v any) error {
		n, ok := v.(int64)
		if !ok || n < lo || n > hi {
			return fmt.Errorf("must be %s, got %s", want, show(v))
		}
		*field(p) = int(n)
		return nil
	}}
}

// enumKey: one of allowed (a key may allow a subset of its type's values:
// inbound.dkim has no enforce).
func enumKey[T ~string](field func(*Policy) *T, allowed ...T) keySpec {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return valueKey(field, func(v any) (T, error) {
		s, err := asEnum(v, names...)
		return T(s), err
	})
}

// keySpecs lists every key the policy file may hold. contrib/nzsecure-milter.toml
// documents each one; TestEveryKeyDocumented keeps the two in step.
var keySpecs = map[string]keySpec{
	"domains":           domainListKey(func(p *Policy) *[]string { return &p.Domains }, false),
	"internal_networks": valueKey(func(p *Policy) *[]netip.Prefix { return &p.InternalNetworks }, prefixList),
	"outbound_daemons":  stringListKey(func(p *Policy) *[]string { return &p.OutboundDaemons }),
	"record_times":      boolKey(func(p *Policy) *bool { return &p.RecordTimes }),
	"authserv_id": stringKey(func(p *Policy) *string { return &p.AuthservID }).check(func(s string) error {
		if s == "" {
			return nil
		}
		_, err := checkDomain(s, false)
		return err
	}),

	"listen.milter": listenKey(func(p *Policy) *string { return &p.Runtime.Listen.Milter }),
	"listen.metrics": valueKey(func(p *Policy) *string { return &p.Runtime.Listen.Metrics }, func(v any) (string, error) {
		s, err := asString(v)
		if err != nil || s == "" {
			return "", err
		}
		if network, _, err := ParseListenSpec(s); err != nil {
			return "", err
		} else if network != "tcp" {
			return "", fmt.Errorf("metrics are served over HTTP: want inet:HOST:PORT, got %q", s)
		}
		return s, nil
	}),

	"limits.max_message_size": sizeKey(func(p *Policy) *int64 { return &p.Limits.MaxMessageSize }),
	"limits.memory_spool":     sizeKey(func(p *Policy) *int64 { return &p.Limits.MemorySpool }),
	"limits.spool_dir": stringKey(func(p *Policy) *string { return &p.Limits.SpoolDir }).check(func(s string) error {
		if s != "" && !strings.HasPrefix(s, "/") {
			return fmt.Errorf("must be an absolute path, got %q", s)
		}
		return nil
	}),

	"inbound.min_tls":             enumKey(func(p *Policy) *string { return &p.Inbound.MinTLS }, "none", "1.0", "1.1", "1.2", "1.3"),
	"inbound.spf":                 enumKey(func(p *Policy) *Mode { return &p.Inbound.SPF }, Modes...),
	"inbound.senderid":            enumKey(func(p *Policy) *Mode { return &p.Inbound.SenderID }, Modes...),
	"inbound.dkim":                enumKey(func(p *Policy) *Mode { return &p.Inbound.DKIM }, ModeOff, ModeTag),
	"inbound.dmarc":               enumKey(func(p *Policy) *Mode { return &p.Inbound.DMARC }, Modes...),
	"inbound.warning_mode":        enumKey(func(p *Policy) *WarningMode { return &p.Inbound.WarningMode }, WarningModes...),
	"inbound.warning_link":        stringKey(func(p *Policy) *string { return &p.Inbound.WarningLink }),
	"inbound.unverified":          enumKey(func(p *Policy) *UnverifiedAction { return &p.Inbound.Unverified }, UnverifiedActions...),
	"inbound.lookalike":           enumKey(func(p *Policy) *InboundLookalikeAction { return &p.Inbound.Lookalike }, InboundLookalikeActions...),
	"inbound.trusted_lists":       domainListKey(func(p *Policy) *[]string { return &p.Inbound.TrustedLists }, true),
	"inbound.securemail_receiver": boolKey(func(p *Policy) *bool { return &p.Inbound.SecureMailReceiver }),
	"inbound.securemail_senders":  boolKey(func(p *Policy) *bool { return &p.Inbound.SecureMailSenders }),

	"outbound.tag_secure_email":   boolKey(func(p *Policy) *bool { return &p.Outbound.TagSecureEmail }),
	"outbound.seemail_version":    stringKey(func(p *Policy) *string { return &p.Outbound.SEEMailVersion }),
	"outbound.secure_domains":     domainSetKey(func(p *Policy) *DomainSet { return &p.Outbound.SecureDomains }),
	"outbound.seemail_domains":    domainSetKey(func(p *Policy) *DomainSet { return &p.Outbound.SEEMailDomains }),
	"outbound.securemail_domains": domainSetKey(func(p *Policy) *DomainSet { return &p.Outbound.SecureMailDomains }),
	"outbound.exceptions":         domainSetKey(func(p *Policy) *DomainSet { return &p.Outbound.Exceptions }),
	"outbound.partial":            enumKey(func(p *Policy) *PartialAction { return &p.Outbound.Partial }, PartialActions...),
	"outbound.route_header":       boolKey(func(p *Policy) *bool { return &p.Outbound.RouteHeader }),
	"outbound.lookalike":          enumKey(func(p *Policy) *LookalikeAction { return &p.Outbound.Lookalike }, LookalikeActions...),
	"outbound.lookalike_allow":    domainSetKey(func(p *Policy) *DomainSet { return &p.Outbound.LookalikeAllow }),

	"dkim.keys":     valueKey(func(p *Policy) *[]DKIMKey { return &p.DKIM.Keys }, dkimKeys),
	"dkim.headers":  stringListKey(func(p *Policy) *[]string { return &p.DKIM.Headers }),
	"dkim.oversign": stringListKey(func(p *Policy) *[]string { return &p.DKIM.Oversign }),

	"notify.admin": addressKey(func(p *Policy) *string { return &p.Notify.Admin }),
	"notify.ping_address": valueKey(func(p *Policy) *string { return &p.Notify.PingAddress }, func(v any) (string, error) {
		s, err := asString(v)
		if err == nil && s != PingOff && s != "" {
			s, err = asAddress(v)
		}
		return s, err
	}),
	"notify.submit":      valueKey(func(p *Policy) *string { return &p.Runtime.Submit.Method }, submitSpec),
	"notify.sendmail":    stringListKey(func(p *Policy) *[]string { return &p.Runtime.Submit.Sendmail }).checkList(commandLine),
	"notify.rate_count":  intKey(func(p *Policy) *int { return &p.Notify.RateCount }, 0, 1_000_000, "a count from 0 to 1000000"),
	"notify.rate_window": durationKey(func(p *Policy) *time.Duration { return &p.Notify.RateWindow }, time.Second, 7*24*time.Hour),
	"notify.agencies":    domainListKey(func(p *Policy) *[]string { return &p.Notify.Agencies }, false),

	"classification.scan_attachments": boolKey(func(p *Policy) *bool { return &p.Classification.ScanAttachments }),
	"classification.unreadable":       enumKey(func(p *Policy) *UnreadableAction { return &p.Classification.Unreadable }, UnreadableActions...),

	"msec.min_tls":         enumKey(func(p *Policy) *string { return &p.MSEC.MinTLS }, "1.2", "1.3"),
	"msec.min_cipher_bits": intKey(func(p *Policy) *int { return &p.MSEC.MinCipherBits }, 0, 1024, "a number of bits (e.g. 128)"),
	"msec.forward_secrecy": boolKey(func(p *Policy) *bool { return &p.MSEC.ForwardSecrecy }),
	"msec.aead":            boolKey(func(p *Policy) *bool { return &p.MSEC.AEAD }),

	"dns.servers": valueKey(func(p *Policy) *[]string { return &p.Runtime.DNS.Servers }, dnsServers),
	"dns.timeout": durationKey(func(p *Policy) *time.Duration { return &p.Runtime.DNS.Timeout }, time.Millisecond, time.Minute),

	"tlspolicy.listen":     listenKey(func(p *Policy) *string { return &p.Runtime.TLSPolicyListen }),
	"tlspolicy.level":      enumKey(func(p *Policy) *TLSLevel { return &p.TLSPolicy.Level }, TLSLevels...),
	"tlspolicy.min_tls":    enumKey(func(p *Policy) *string { return &p.TLSPolicy.MinTLS }, "1.2", "1.3"),
	"tlspolicy.mta_sts":    boolKey(func(p *Policy) *bool { return &p.TLSPolicy.MTASTS }),
	"tlspolicy.exceptions": boolKey(func(p *Policy) *bool { return &p.TLSPolicy.Exceptions }),

	"log.level": enumKey(func(p *Policy) *string { return &p.Runtime.Log.Level }, "debug", "info", "warn", "error"),
}

// check adds a test of a string key's decoded value.
func (k keySpec) check(test func(string) error) keySpec {
	return keySpec{func(p *Policy, v any) error {
		if err := k.set(p, v); err != nil {
			return err
		}
		s, _ := v.(string)
		return test(s)
	}}
}

// checkList adds a test of a string-list key's decoded value.
func (k keySpec) checkList(test func([]string) error) keySpec {
	return keySpec{func(p *Policy, v any) error {
		if err := k.set(p, v); err != nil {
			return err
		}
		list, _ := stringList(v)
		return test(list)
	}}
}

// commandLine: notify.sendmail is run directly, never through a shell, so
// it needs an absolute path.
func commandLine(list []string) error {
	if len(list) == 0 || !strings.HasPrefix(list[0], "/") {
		return fmt.Errorf("must be a command line starting with an absolute path, got %q", list)
	}
	return nil
}

// submitSpec checks notify.submit: generated mail never goes straight to
// the internet, only to the local MTA (R92).
func submitSpec(v any) (string, error) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	if s != "sendmail" {
		addr, ok := strings.CutPrefix(s, "smtp:")
		host, _, herr := net.SplitHostPort(addr)
		ip, perr := netip.ParseAddr(host)
		if !ok || herr != nil || (perr != nil && host != "localhost") || (perr == nil && !ip.IsLoopback()) {
			return "", fmt.Errorf("must be \"sendmail\" or \"smtp:HOST:PORT\" on a loopback address (generated mail never goes straight to the internet), got %q", s)
		}
	}
	return s, nil
}

// dnsServers checks dns.servers: IP:PORT each, every bad one reported.
func dnsServers(v any) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, s := range list {
		host, port, err := net.SplitHostPort(s)
		if _, perr := netip.ParseAddr(host); err != nil || perr != nil || port == "" {
			bad = append(bad, fmt.Sprintf("%q is not IP:PORT", s))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad server: %s", strings.Join(bad, "; "))
	}
	return list, nil
}

// dkimKeys checks dkim.keys: domain:selector:/absolute/key.pem, the file
// present; every bad entry reported.
func dkimKeys(v any) ([]DKIMKey, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var keys []DKIMKey
	var bad []string
	for _, e := range list {
		parts := strings.SplitN(e, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") || parts[1] == "" {
			bad = append(bad, fmt.Sprintf("%q is not domain:selector:/absolute/key.pem", e))
			continue
		}
		d, err := checkDomain(parts[0], false)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if _, err := os.Stat(parts[2]); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		keys = append(keys, DKIMKey{Domain: d, Selector: parts[1], File: parts[2]})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("bad key: %s", strings.Join(bad, "; "))
	}
	return keys, nil
}

// Keys lists every valid dotted key (profile included), sorted; a table
// whose keys are data is listed as "table.*".
func Keys() []string {
	keys := []string{"profile", "outbound.by_class.*", "classification.levels.*"}
	for k := range keySpecs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// listenSpec checks a socket spec value.
func listenSpec(v any) (string, error) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	if _, _, err := ParseListenSpec(s); err != nil {
		return "", err
	}
	return s, nil
}

// suggest names a valid key that differs only a little from an unknown one.
func suggest(key string) string {
	best, bestD := "", 3
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
