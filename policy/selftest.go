package policy

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// SelftestPolicy configures the self-test (R19-R21, issue 17 point 2):
// `nzsecure-milter selftest` and serve's scheduled run.
type SelftestPolicy struct {
	// SMTP is the MTA the scenarios are sent through (HOST:PORT).
	SMTP string
	// Interval between serve's runs; the first is shortly after start
	// (R21: "at system start time, and then once a month from that
	// date/time"). 0 turns the schedule off.
	Interval time.Duration
	// KeyFile is the HMAC key of the scenario tokens, created at first
	// use (mode 0600).
	KeyFile string
	// InboundSource and OutboundSource are the local addresses the
	// scenarios connect from ("": chosen automatically for an MTA on
	// loopback, selftest.Sources).
	InboundSource, OutboundSource string
	// Peers are the ping addresses of the peer gateways `selftest
	// --peers` pings (R19, R96-R99); empty: ping@ each notify.agencies
	// domain.
	Peers []string
}

// SelftestPeers are the ping addresses `selftest --peers` pings.
func (p *Policy) SelftestPeers() []string {
	if len(p.Runtime.Selftest.Peers) > 0 {
		return p.Runtime.Selftest.Peers
	}
	var out []string
	for _, d := range p.Notify.Agencies {
		out = append(out, "ping@"+d)
	}
	return out
}

// PeerAnswersDir is where the milter records the peer gateways' ping
// answers for `selftest --peers`: beside the selftest key.
func (p *Policy) PeerAnswersDir() string {
	return filepath.Join(filepath.Dir(p.Runtime.Selftest.KeyFile), "peer-answers")
}

// DefaultSelftestKeyFile is selftest.key_file's default.
const DefaultSelftestKeyFile = "/var/lib/nzsecure-milter/selftest.key"

func defaultSelftest() SelftestPolicy {
	return SelftestPolicy{SMTP: "127.0.0.1:25", Interval: 720 * time.Hour, KeyFile: DefaultSelftestKeyFile}
}

func init() {
	keySpecs["selftest.smtp"] = valueKey(func(p *Policy) *string { return &p.Runtime.Selftest.SMTP }, hostPort)
	keySpecs["selftest.interval"] = durationKey(func(p *Policy) *time.Duration { return &p.Runtime.Selftest.Interval }, 0, 8760*time.Hour)
	keySpecs["selftest.key_file"] = valueKey(func(p *Policy) *string { return &p.Runtime.Selftest.KeyFile }, absPath)
	keySpecs["selftest.inbound_source"] = valueKey(func(p *Policy) *string { return &p.Runtime.Selftest.InboundSource }, optionalIP)
	keySpecs["selftest.outbound_source"] = valueKey(func(p *Policy) *string { return &p.Runtime.Selftest.OutboundSource }, optionalIP)
	keySpecs["selftest.peers"] = valueKey(func(p *Policy) *[]string { return &p.Runtime.Selftest.Peers }, addressList)
}

// addressList: mail addresses, every bad one reported.
func addressList(v any) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, s := range list {
		if _, err := asAddress(s); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return list, nil
}

func hostPort(v any) (string, error) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	if h, port, err := net.SplitHostPort(s); err != nil || h == "" || port == "" {
		return "", fmt.Errorf("must be HOST:PORT, got %q", s)
	}
	return s, nil
}

func optionalIP(v any) (string, error) {
	s, err := asString(v)
	if err != nil || s == "" {
		return s, err
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return "", fmt.Errorf("must be an IP address or \"\", got %q", s)
	}
	return s, nil
}
