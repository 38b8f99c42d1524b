package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// installedPolicy is where the packages (and contrib/install.sh) put the
// policy, the path the systemd unit serves.
var installedPolicy = "/etc/nzsecure-milter/policy.toml"

func init() {
	register("version", "print the product name, version and policy environment", runVersion)
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	var pf policyFlags
	pf.add(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return 2
	}
	// The installed policy, when there is one and no --policy was given:
	// the administrator asks what this host runs, not what the binary
	// would run on its built-in default.
	if pf.path == "" {
		if _, err := os.Stat(installedPolicy); err == nil {
			pf.path = installedPolicy
		}
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s %s (%s)\n", productName, version, runtime.Version())
	fmt.Fprintf(stdout, "policy environment: %s\n", p.Environment())
	fmt.Fprintf(stdout, "policy: %s (profile %s)\n", p.Source, p.Profile)
	return 0
}
