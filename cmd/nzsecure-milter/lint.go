package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func init() {
	register("lint", "check a policy file; print every error with its line", runLint)
}

// runLint prints every problem of the policy file (never only the first)
// and exits 1, or a one-line summary and 0 when it is valid.
func runLint(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lint", "FILE", stderr)
	var sets multiFlag
	fs.Var(&sets, "set", "override one policy key: `KEY=VALUE` (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	p, err := policy.Load(pos[0], sets)
	var probs policy.Problems
	if errors.As(err, &probs) {
		for _, pr := range probs {
			fmt.Fprintln(stdout, pr.String())
		}
		fmt.Fprintf(stdout, "%s: %d problem(s); the policy is not valid\n", pos[0], len(probs))
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range p.Warnings {
		fmt.Fprintln(stdout, w.String())
	}
	for _, w := range postfixMappingWarnings(p) {
		fmt.Fprintln(stdout, "warning: postfix: "+w)
	}
	fmt.Fprintf(stdout, "%s: valid: %s\n", pos[0], p.Summary())
	return 0
}
