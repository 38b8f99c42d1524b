package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseListenSpec parses "inet:HOST:PORT" or "unix:PATH" (Postfix's
// smtpd_milters forms) into the network and address net.Listen takes.
// libmilter's forms, as Sendmail and OpenDKIM's Socket write them, are
// taken too: "inet:PORT@HOST", "inet6:PORT@HOST" and "local:PATH".
func ParseListenSpec(spec string) (network, address string, err error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if ok && (kind == "inet" || kind == "inet6") {
		if port, host, at := strings.Cut(rest, "@"); at && port != "" && strings.Trim(port, "0123456789") == "" {
			rest = netJoin(strings.Trim(host, "[]"), port)
		}
	}
	switch {
	case ok && (kind == "unix" || kind == "local"):
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("unix socket path must be absolute, got %q", spec)
		}
		return "unix", rest, nil
	case ok && (kind == "inet" || kind == "inet6"):
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			// libmilter's "inet:PORT" listens on every interface; a
			// filter for classified mail names the one it listens on.
			return "", "", fmt.Errorf("want inet:HOST:PORT (or libmilter's inet:PORT@HOST), got %q", spec)
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
