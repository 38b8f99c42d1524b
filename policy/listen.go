package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

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
