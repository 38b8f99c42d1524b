package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "0.1.0-dev"

const productName = "nzsecure-milter"

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// policyFlags adds --policy and --set to fs; every subcommand that reads a
// policy takes both.
type policyFlags struct {
	path string
	sets multiFlag
}

func (pf *policyFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&pf.path, "policy", "", "policy `FILE` (default: the built-in policy, contrib/nzsecure-milter.toml)")
	fs.Var(&pf.sets, "set", "override one policy key: `KEY=VALUE`, VALUE a TOML value (repeatable)")
}

// load loads the policy, printing every problem to stderr when it is invalid.
func (pf *policyFlags) load(stderr io.Writer) (*policy.Policy, bool) {
	p, err := policy.Load(pf.path, pf.sets)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return p, true
}

// newFlagSet makes a flag set whose errors and usage go to stderr.
func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: nzsecure-milter %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments too
// (nzsecure-milter check msg.eml --auth alice), and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
