package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/nzsecure-milter/nzsecure-milter/contrib"
)

// ErrInvalid is wrapped by every error that says a policy is not valid.
var ErrInvalid = errors.New("invalid policy")

// Problem is one thing wrong with a policy file or an override.
type Problem struct {
	File string // path, "embedded default" or "--set"
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key, "" for syntax errors
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one load; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) recognise a failed load.
func (ps Problems) Unwrap() error { return ErrInvalid }

// EmbeddedName is the Source of the built-in default policy.
const EmbeddedName = "embedded default"

// Load reads the policy file at path (or, when path is "", the default
// policy embedded in the binary: contrib/nzsecure-milter.toml) and applies the
// overrides, each "KEY=VALUE" with VALUE a TOML value. On any problem it
// returns a Problems error listing all of them (never only the first).
func Load(path string, overrides []string) (*Policy, error) {
	if path == "" {
		return Parse(EmbeddedName, contrib.DefaultPolicy, overrides)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data, overrides)
}

// Parse is Load on data already read; name is used in problem reports.
func Parse(name string, data []byte, overrides []string) (*Policy, error) {
	var probs Problems
	values, syntax := flattenTOML(data)
	if syntax != nil {
		return nil, Problems{syntaxProblem(name, syntax)}
	}
	lines := keyLines(data)
	type item struct {
		file string
		line int
		key  string
		val  any
	}
	var items []item
	for _, k := range sortedKeys(values) {
		items = append(items, item{name, lines[k], k, values[k]})
	}
	for i, o := range overrides {
		kv, err := parseOverride(o)
		if err != nil {
			probs = append(probs, Problem{File: "--set", Line: i + 1, Msg: err.Error()})
			continue
		}
		for _, k := range sortedKeys(kv) {
			items = append(items, item{"--set", i + 1, k, kv[k]})
		}
	}

	// The profile decides the defaults, so find it first; the last setting wins.
	profile := ProfileSGE
	for _, it := range items {
		if it.key != "profile" {
			continue
		}
		s, ok := it.val.(string)
		if !ok || profileDefaults(s) == nil {
			probs = append(probs, Problem{it.file, it.line, it.key,
				fmt.Sprintf("must be one of %q, %q, %q; got %s", ProfileSGE, ProfileSecureMail, ProfileSEEMail, show(it.val))})
			continue
		}
		profile = s
	}
	p := profileDefaults(profile)
	p.Source = name
	for _, it := range items {
		if it.key == "profile" {
			continue
		}
		spec, ok := keySpecs[it.key]
		if !ok {
			spec, ok = prefixSpec(it.key)
		}
		if !ok {
			probs = append(probs, Problem{it.file, it.line, it.key, "unknown key" + suggest(it.key)})
			continue
		}
		if err := spec.set(p, it.val); err != nil {
			probs = append(probs, Problem{it.file, it.line, it.key, err.Error()})
		}
	}
	for _, pr := range crossCheck(p) {
		pr.File, pr.Line = name, lines[pr.Key]
		probs = append(probs, pr)
	}
	for _, pr := range lintWarnings(p) {
		pr.File, pr.Line = name, lines[pr.Key]
		p.Warnings = append(p.Warnings, pr)
	}
	if p.AuthservID == "" {
		p.AuthservIDDefault = true
		if h, err := os.Hostname(); err == nil {
			p.AuthservID = h
		} else {
			p.AuthservID = "localhost"
		}
	}
	if len(probs) > 0 {
		// File problems first, in line order, then the overrides in order.
		sort.SliceStable(probs, func(i, j int) bool {
			a, b := probs[i], probs[j]
			if (a.File == "--set") != (b.File == "--set") {
				return b.File == "--set"
			}
			return a.Line < b.Line
		})
		return nil, probs
	}
	return p, nil
}

// profileDefaults returns the defaults of a profile, nil for an unknown name.
// REQUIREMENTS.md, "Profiles": sge enforces TLS 1.2 inbound (G-TLS); the
// 2005/2007 profiles accept plaintext from ordinary senders (M-RCV-TLS:
// "accept over TLS", refusal is for SecureMail senders, M-SEC).
func profileDefaults(profile string) *Policy {
	p := &Policy{
		Profile:          profile,
		InternalNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		OutboundDaemons:  []string{"ORIGINATING"},
		RecordTimes:      true,
		Listen:           ListenPolicy{Milter: "inet:127.0.0.1:8891"},
		Limits:           LimitsPolicy{MaxMessageSize: 64 << 20, MemorySpool: 1 << 20},
		Outbound:         OutboundPolicy{TagSecureEmail: true},
		TLSPolicy:        TLSPolicyPolicy{Listen: "inet:127.0.0.1:8461", Level: "encrypt", MinTLS: "1.2", MTASTS: true},
		Log:              LogPolicy{Level: "info"},
	}
	// M-OUT / R110-R112 / R115 / G-DLP: what each classification may reach.
	p.Outbound.ByClass = map[string]Routing{
		Unclassified:    BestEffort,
		"IN-CONFIDENCE": SecureOnly,  // R115; under sge only over enforced TLS
		"SENSITIVE":     SEEMailOnly, // R112
		"RESTRICTED":    SEEMailOnly, // R112
		"CONFIDENTIAL":  Hold,        // R110
		"SECRET":        Hold,        // R110
		"TOP SECRET":    Hold,        // R110, M-OUT
	}
	p.Outbound.Partial = "split"
	p.Classification.Unreadable = UnreadableHold
	p.Classification.Levels = map[string]int{}
	for w, r := range defaultLevels {
		p.Classification.Levels[w] = r
	}
	p.MSEC = MSECPolicy{MinTLS: "1.2", MinCipherBits: 128, ForwardSecrecy: true, AEAD: true}
	p.DNS.Timeout = 5 * time.Second
	p.Inbound.SecureMailSenders = true // M-RCV-SM: every government receiver
	p.Inbound.WarningMode, p.Inbound.Unverified = "wrap", "warn"
	p.Notify = NotifyPolicy{Submit: "sendmail", Sendmail: []string{"/usr/sbin/sendmail"}, RateCount: 10, RateWindow: time.Hour}
	switch profile {
	case ProfileSGE:
		p.Inbound.MinTLS = "1.2"
		// Spec 000: "enforce the mail sending policy specified by a sending
		// domain's SPF record"; spec 004 section 9: "v=spf1 -all" mail is
		// "rejected and dropped". A fail is refused unless DMARC passes
		// through an aligned DKIM signature (forwarding, RFC 7489 10.1).
		// Sender ID is evaluated and recorded (M-RCV-SID).
		p.Inbound.SPF, p.Inbound.SenderID = "enforce", "tag"
		p.Inbound.DKIM, p.Inbound.DMARC = "tag", "enforce"
		// G-DLP: "markings above IN-CONFIDENCE blocked" unless an exception.
		p.Outbound.ByClass["SENSITIVE"] = ExceptionOnly
		p.Outbound.ByClass["RESTRICTED"] = ExceptionOnly
	case ProfileSecureMail:
		p.Inbound.MinTLS = "none"
		// SecMx: "enforce the mail sending policy specified by a sending
		// domain's SPF record ... Sender ID record"; a SecureMail receiver
		// refuses senders failing M-SEC.
		p.Inbound.SPF, p.Inbound.SenderID = "enforce", "enforce"
		p.Inbound.DKIM, p.Inbound.DMARC = "tag", "tag"
		p.Inbound.SecureMailReceiver = true
	case ProfileSEEMail:
		p.Inbound.MinTLS = "none"
		// As sge: SPF enforced (spec 000), Sender ID recorded.
		p.Inbound.SPF, p.Inbound.SenderID = "enforce", "tag"
		p.Inbound.DKIM, p.Inbound.DMARC = "tag", "tag"
	default:
		return nil
	}
	return p
}

// defaultLevels orders the classification words (R109, R114, M-OUT): the
// highest found decides. SENSITIVE and RESTRICTED share a rank.
var defaultLevels = map[string]int{
	Unclassified: 0, "IN-CONFIDENCE": 1, "SENSITIVE": 2, "RESTRICTED": 2,
	"CONFIDENTIAL": 3, "SECRET": 4, "TOP SECRET": 5,
}

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
	return keySpec{func(p *Policy, v any) error {
		r, err := asEnum(v, string(BestEffort), string(SecureOnly), string(SEEMailOnly), string(ExceptionOnly), string(Hold))
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

// crossCheck reports problems between keys: every by_class word must be a
// classification the policy knows. Problems carry the key; Parse adds lines.
func crossCheck(p *Policy) []Problem {
	var out []Problem
	for class := range p.Outbound.ByClass {
		if _, ok := p.Classification.Levels[class]; !ok {
			out = append(out, Problem{Key: "outbound.by_class." + class,
				Msg: fmt.Sprintf("%q is not a classification of [classification.levels]", class)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// keySpec is one key of the policy file: how to check and apply its value.
type keySpec struct {
	set func(p *Policy, v any) error
}

// keySpecs lists every key the policy file may hold. contrib/nzsecure-milter.toml
// documents each one; TestEveryKeyDocumented keeps the two in step.
var keySpecs = map[string]keySpec{
	"domains": {func(p *Policy, v any) (err error) {
		p.Domains, err = domainList(v, false)
		return err
	}},
	"internal_networks": {func(p *Policy, v any) (err error) {
		p.InternalNetworks, err = prefixList(v)
		return err
	}},
	"outbound_daemons": {func(p *Policy, v any) (err error) {
		p.OutboundDaemons, err = stringList(v)
		return err
	}},
	"record_times": {func(p *Policy, v any) (err error) {
		p.RecordTimes, err = asBool(v)
		return err
	}},
	"authserv_id": {func(p *Policy, v any) error {
		s, err := asString(v)
		if err == nil && s != "" {
			_, err = checkDomain(s, false)
		}
		p.AuthservID = s
		return err
	}},
	"listen.milter": {func(p *Policy, v any) (err error) {
		p.Listen.Milter, err = listenSpec(v)
		return err
	}},
	"listen.metrics": {func(p *Policy, v any) error {
		s, err := asString(v)
		if err != nil || s == "" {
			p.Listen.Metrics = ""
			return err
		}
		if network, _, err := ParseListenSpec(s); err != nil {
			return err
		} else if network != "tcp" {
			return fmt.Errorf("metrics are served over HTTP: want inet:HOST:PORT, got %q", s)
		}
		p.Listen.Metrics = s
		return nil
	}},
	"limits.max_message_size": {func(p *Policy, v any) (err error) {
		p.Limits.MaxMessageSize, err = asSize(v)
		return err
	}},
	"limits.memory_spool": {func(p *Policy, v any) (err error) {
		p.Limits.MemorySpool, err = asSize(v)
		return err
	}},
	"limits.spool_dir": {func(p *Policy, v any) error {
		s, err := asString(v)
		if err == nil && s != "" && !strings.HasPrefix(s, "/") {
			err = fmt.Errorf("must be an absolute path, got %q", s)
		}
		p.Limits.SpoolDir = s
		return err
	}},
	"inbound.min_tls": {func(p *Policy, v any) (err error) {
		p.Inbound.MinTLS, err = asEnum(v, "none", "1.0", "1.1", "1.2", "1.3")
		return err
	}},
	"outbound.tag_secure_email": {func(p *Policy, v any) (err error) {
		p.Outbound.TagSecureEmail, err = asBool(v)
		return err
	}},
	"outbound.seemail_version": {func(p *Policy, v any) (err error) {
		p.Outbound.SEEMailVersion, err = asString(v)
		return err
	}},
	"outbound.secure_domains": {func(p *Policy, v any) (err error) {
		p.Outbound.SecureDomains, err = domainSet(v)
		return err
	}},
	"outbound.seemail_domains": {func(p *Policy, v any) (err error) {
		p.Outbound.SEEMailDomains, err = domainSet(v)
		return err
	}},
	"outbound.securemail_domains": {func(p *Policy, v any) (err error) {
		p.Outbound.SecureMailDomains, err = domainSet(v)
		return err
	}},
	"outbound.exceptions": {func(p *Policy, v any) (err error) {
		p.Outbound.Exceptions, err = domainSet(v)
		return err
	}},
	"outbound.partial": {func(p *Policy, v any) (err error) {
		p.Outbound.Partial, err = asEnum(v, "split", "refuse")
		return err
	}},
	"outbound.route_header": {func(p *Policy, v any) (err error) {
		p.Outbound.RouteHeader, err = asBool(v)
		return err
	}},
	"inbound.dkim": {func(p *Policy, v any) (err error) {
		p.Inbound.DKIM, err = asEnum(v, "off", "tag")
		return err
	}},
	"inbound.dmarc": {func(p *Policy, v any) (err error) {
		p.Inbound.DMARC, err = asEnum(v, "off", "tag", "enforce")
		return err
	}},
	"dkim.keys": {func(p *Policy, v any) error {
		list, err := stringList(v)
		if err != nil {
			return err
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
			return fmt.Errorf("bad key: %s", strings.Join(bad, "; "))
		}
		p.DKIM.Keys = keys
		return nil
	}},
	"dkim.headers": {func(p *Policy, v any) (err error) {
		p.DKIM.Headers, err = stringList(v)
		return err
	}},
	"dkim.oversign": {func(p *Policy, v any) (err error) {
		p.DKIM.Oversign, err = stringList(v)
		return err
	}},
	"inbound.warning_mode": {func(p *Policy, v any) (err error) {
		p.Inbound.WarningMode, err = asEnum(v, "wrap", "prepend", "header")
		return err
	}},
	"inbound.warning_link": {func(p *Policy, v any) (err error) {
		p.Inbound.WarningLink, err = asString(v)
		return err
	}},
	"inbound.unverified": {func(p *Policy, v any) (err error) {
		p.Inbound.Unverified, err = asEnum(v, "warn", "delete")
		return err
	}},
	"inbound.trusted_lists": {func(p *Policy, v any) (err error) {
		p.Inbound.TrustedLists, err = domainList(v, true)
		return err
	}},
	"notify.admin": {func(p *Policy, v any) (err error) {
		p.Notify.Admin, err = asAddress(v)
		return err
	}},
	"notify.ping_address": {func(p *Policy, v any) error {
		s, err := asString(v)
		if err == nil && s != "off" && s != "" {
			s, err = asAddress(v)
		}
		p.Notify.PingAddress = s
		return err
	}},
	"notify.submit": {func(p *Policy, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		if s != "sendmail" {
			addr, ok := strings.CutPrefix(s, "smtp:")
			host, _, herr := net.SplitHostPort(addr)
			ip, perr := netip.ParseAddr(host)
			if !ok || herr != nil || (perr != nil && host != "localhost") || (perr == nil && !ip.IsLoopback()) {
				return fmt.Errorf("must be \"sendmail\" or \"smtp:HOST:PORT\" on a loopback address (generated mail never goes straight to the internet), got %q", s)
			}
		}
		p.Notify.Submit = s
		return nil
	}},
	"notify.sendmail": {func(p *Policy, v any) error {
		list, err := stringList(v)
		if err == nil && (len(list) == 0 || !strings.HasPrefix(list[0], "/")) {
			err = fmt.Errorf("must be a command line starting with an absolute path, got %q", list)
		}
		p.Notify.Sendmail = list
		return err
	}},
	"notify.rate_count": {func(p *Policy, v any) error {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 1_000_000 {
			return fmt.Errorf("must be a count from 0 to 1000000, got %s", show(v))
		}
		p.Notify.RateCount = int(n)
		return nil
	}},
	"notify.rate_window": {func(p *Policy, v any) (err error) {
		p.Notify.RateWindow, err = asDuration(v, time.Second, 7*24*time.Hour)
		return err
	}},
	"notify.agencies": {func(p *Policy, v any) (err error) {
		p.Notify.Agencies, err = domainList(v, false)
		return err
	}},
	"classification.scan_attachments": {func(p *Policy, v any) (err error) {
		p.Classification.ScanAttachments, err = asBool(v)
		return err
	}},
	"classification.unreadable": {func(p *Policy, v any) (err error) {
		p.Classification.Unreadable, err = asEnum(v, UnreadableHold, UnreadableRefuse, UnreadableAccept)
		return err
	}},
	"inbound.spf": {func(p *Policy, v any) (err error) {
		p.Inbound.SPF, err = asEnum(v, "off", "tag", "enforce")
		return err
	}},
	"inbound.senderid": {func(p *Policy, v any) (err error) {
		p.Inbound.SenderID, err = asEnum(v, "off", "tag", "enforce")
		return err
	}},
	"inbound.securemail_receiver": {func(p *Policy, v any) (err error) {
		p.Inbound.SecureMailReceiver, err = asBool(v)
		return err
	}},
	"inbound.securemail_senders": {func(p *Policy, v any) (err error) {
		p.Inbound.SecureMailSenders, err = asBool(v)
		return err
	}},
	"msec.min_tls": {func(p *Policy, v any) (err error) {
		p.MSEC.MinTLS, err = asEnum(v, "1.2", "1.3")
		return err
	}},
	"msec.min_cipher_bits": {func(p *Policy, v any) error {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 1024 {
			return fmt.Errorf("must be a number of bits (e.g. 128), got %s", show(v))
		}
		p.MSEC.MinCipherBits = int(n)
		return nil
	}},
	"msec.forward_secrecy": {func(p *Policy, v any) (err error) {
		p.MSEC.ForwardSecrecy, err = asBool(v)
		return err
	}},
	"msec.aead": {func(p *Policy, v any) (err error) {
		p.MSEC.AEAD, err = asBool(v)
		return err
	}},
	"dns.servers": {func(p *Policy, v any) error {
		list, err := stringList(v)
		if err != nil {
			return err
		}
		var bad []string
		for _, s := range list {
			host, port, err := net.SplitHostPort(s)
			if _, perr := netip.ParseAddr(host); err != nil || perr != nil || port == "" {
				bad = append(bad, fmt.Sprintf("%q is not IP:PORT", s))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("bad server: %s", strings.Join(bad, "; "))
		}
		p.DNS.Servers = list
		return nil
	}},
	"dns.timeout": {func(p *Policy, v any) (err error) {
		p.DNS.Timeout, err = asDuration(v, time.Millisecond, time.Minute)
		return err
	}},
	"tlspolicy.listen": {func(p *Policy, v any) (err error) {
		p.TLSPolicy.Listen, err = listenSpec(v)
		return err
	}},
	"tlspolicy.level": {func(p *Policy, v any) (err error) {
		p.TLSPolicy.Level, err = asEnum(v, "encrypt", "secure")
		return err
	}},
	"tlspolicy.min_tls": {func(p *Policy, v any) (err error) {
		p.TLSPolicy.MinTLS, err = asEnum(v, "1.2", "1.3")
		return err
	}},
	"tlspolicy.mta_sts": {func(p *Policy, v any) (err error) {
		p.TLSPolicy.MTASTS, err = asBool(v)
		return err
	}},
	"tlspolicy.exceptions": {func(p *Policy, v any) (err error) {
		p.TLSPolicy.Exceptions, err = asBool(v)
		return err
	}},
	"log.level": {func(p *Policy, v any) (err error) {
		p.Log.Level, err = asEnum(v, "debug", "info", "warn", "error")
		return err
	}},
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

// ParseListenSpec parses "inet:HOST:PORT" or "unix:PATH" into the network
// and address net.Listen takes.
func ParseListenSpec(spec string) (network, address string, err error) {
	kind, rest, ok := strings.Cut(spec, ":")
	switch {
	case ok && kind == "unix":
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("unix socket path must be absolute, got %q", spec)
		}
		return "unix", rest, nil
	case ok && (kind == "inet" || kind == "inet6"):
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return "", "", fmt.Errorf("want inet:HOST:PORT, got %q", spec)
		}
		host, port := strings.Trim(rest[:i], "[]"), rest[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("bad port %q in %q", port, spec)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			if _, err := checkDomain(host, false); err != nil && host != "localhost" {
				return "", "", fmt.Errorf("bad host %q in %q", host, spec)
			}
		}
		return "tcp", netJoin(host, port), nil
	}
	return "", "", fmt.Errorf("want inet:HOST:PORT or unix:/PATH, got %q", spec)
}

func netJoin(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// flattenTOML decodes data and flattens nested tables to dotted keys.
func flattenTOML(data []byte) (map[string]any, error) {
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", raw)
	return out, nil
}

func syntaxProblem(name string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{File: name, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}
	}
	return Problem{File: name, Msg: "syntax error: " + err.Error()}
}

// keyLines maps dotted keys to the line that sets them, for problem reports.
// It reads the simple form policy files take ([table] headers and key = value
// lines); a key it cannot place gets line 0.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	depth := 0 // bracket depth of a multi-line array being skipped
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if depth > 0 {
			depth += strings.Count(line, "[") - strings.Count(line, "]")
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if end := strings.IndexByte(line, ']'); end > 0 {
				table = normKey(line[1:end]) + "."
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key := table + normKey(k)
		if _, seen := lines[key]; !seen {
			lines[key] = n
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "[") {
			depth = strings.Count(v, "[") - strings.Count(v, "]")
		}
	}
	return lines
}

func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// parseOverride parses one --set KEY=VALUE. VALUE is a TOML value; a bare
// word that is not valid TOML is taken as a string, so --set log.level=debug works.
func parseOverride(o string) (map[string]any, error) {
	k, v, ok := strings.Cut(o, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return nil, fmt.Errorf("want KEY=VALUE, got %q", o)
	}
	m, err := flattenTOML([]byte(k + " = " + v))
	if err != nil {
		m, err = flattenTOML([]byte(k + " = " + strconv.Quote(strings.TrimSpace(v))))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse %q: want KEY=VALUE with VALUE a TOML value, e.g. inbound.min_tls=\"1.3\"", o)
	}
	return m, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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

// lintWarnings: what is valid but almost surely a mistake.
//
// internal_networks covering the internet: every client in it counts as
// internal, so its mail is taken as outbound: no SPF, Sender ID, DKIM,
// DMARC or warnings, and the MTA may relay it. A prefix shorter than /8
// (IPv4; /104 as IPv4-mapped IPv6) or /16 (IPv6) covers at least 1/256 of
// the address space; 0.0.0.0/0 and ::/0 are all of it. Private ranges
// (10.0.0.0/8, fc00::/7) are long enough not to warn.
func lintWarnings(p *Policy) Problems {
	var out Problems
	for _, n := range p.InternalNetworks {
		short := 8
		switch {
		case n.Addr().Is4In6():
			short = 96 + 8
		case n.Addr().Is6():
			short = 16
		}
		if n.Bits() < short && !(n.Addr().Is6() && !n.Addr().Is4In6() && privateV6.Overlaps(n) && n.Bits() >= privateV6.Bits()) {
			out = append(out, Problem{Key: "internal_networks", Msg: fmt.Sprintf(
				"warning: %s covers the internet (a prefix shorter than /%d): every client in it counts as internal and its mail as outbound, unchecked (no SPF, DKIM, DMARC or warnings); list only your own networks", n, short)})
		}
	}
	return out
}

// privateV6 is the unique local range (RFC 4193): shorter than /16 but
// not the internet.
var privateV6 = netip.MustParsePrefix("fc00::/7")
