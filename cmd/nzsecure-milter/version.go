package main

import (
	"fmt"
	"io"
	"runtime"
)

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
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s %s (%s)\n", productName, version, runtime.Version())
	fmt.Fprintf(stdout, "policy environment: %s\n", p.Environment())
	fmt.Fprintf(stdout, "policy: %s (profile %s)\n", p.Source, p.Profile)
	return 0
}
