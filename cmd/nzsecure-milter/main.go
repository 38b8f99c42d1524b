// Command nzsecure-milter is a milter for Postfix and Sendmail that enforces
// the New Zealand government secure-email policy. This file only dispatches
// subcommands; each subcommand lives in its own file and registers itself in
// init, so that no policy logic lives here.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
	hidden  bool // not listed in the usage (tools for packaging)
}

var commands = map[string]command{}

// register adds a subcommand; called from init in each subcommand's file.
func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := commands[name]; dup {
		panic("duplicate subcommand " + name)
	}
	commands[name] = command{name: name, summary: summary, run: run}
}

// registerHidden adds a subcommand the usage does not list.
func registerHidden(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	register(name, summary, run)
	c := commands[name]
	c.hidden = true
	commands[name] = c
}

// visibleCommands are the names the usage lists, sorted.
func visibleCommands() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: nzsecure-milter COMMAND [flags]")
	fmt.Fprintln(w, "commands:")
	for _, n := range visibleCommands() {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nzsecure-milter: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}
