package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/contrib"
)

func init() {
	registerHidden("man", "write a manual page in roff: man 8 (the commands) or man 5 (the policy file)", runMan)
}

// The manual pages are generated, never written by hand, so they cannot
// drift from what the binary does (issue 16): nzsecure-milter(8) from the
// very text each subcommand prints for -h, nzsecure-milter.toml(5) from the
// comments of contrib/nzsecure-milter.toml, the built-in default policy.
func runMan(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "8" && args[0] != "5") {
		fmt.Fprintln(stderr, "usage: nzsecure-milter man 8|5")
		return 2
	}
	w := bufio.NewWriter(stdout)
	if args[0] == "8" {
		writeMan8(w)
	} else {
		writeMan5(w, contrib.DefaultPolicy)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// manDate is SOURCE_DATE_EPOCH (reproducible builds) or today.
func manDate() string {
	t := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			t = time.Unix(n, 0).UTC()
		}
	}
	return t.Format("2006-01-02")
}

// roff escapes text for a roff line: backslashes, minus signs (so that
// man renders options as typed), and a leading control character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func writeMan8(w io.Writer) {
	fmt.Fprintf(w, ".TH NZSECURE\\-MILTER 8 %q %q \"System Administration\"\n", manDate(), productName+" "+version)
	fmt.Fprintln(w, ".SH NAME")
	fmt.Fprintln(w, `nzsecure\-milter \- New Zealand government secure\-email policy milter for Postfix and Sendmail`)
	fmt.Fprintln(w, ".SH SYNOPSIS")
	fmt.Fprintln(w, `.B nzsecure\-milter`)
	fmt.Fprintln(w, `.I COMMAND`)
	fmt.Fprintln(w, `.RI [ flags ]`)
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, roff("nzsecure-milter enforces the New Zealand government secure-email policy (TLS, SPF, Sender ID, DKIM, DMARC, the bracketed classification words, per-recipient routing, warnings and notices) as a milter attached to Postfix or Sendmail. The policy is a TOML file, described in nzsecure-milter.toml(5)."))
	fmt.Fprintln(w, ".SH COMMANDS")
	for _, name := range visibleCommands() {
		c := commands[name]
		fmt.Fprintf(w, ".SS %s\n", roff(name))
		fmt.Fprintln(w, roff(c.summary)+".")
		var help bytes.Buffer
		c.run([]string{"-h"}, io.Discard, &help)
		writeFlagHelp(w, help.String())
	}
	fmt.Fprint(w, `.SH SIGNALS
.TP
.B SIGHUP
re\-reads the policy (serve, tlspolicy); an invalid policy is logged, problem by problem, and the running one stays in force. Every key but listen.* takes effect at once, notify.* included; transactions in flight finish on the policy they began with.
.TP
.B SIGTERM
stops accepting connections and lets the transactions in flight finish (up to 2 minutes).
.SH ENVIRONMENT
.TP
.BR LISTEN_PID ", " LISTEN_FDS
socket activation (sd_listen_fds(3)): a listening socket passed as descriptor 3 by systemd (nzsecure\-milter.socket) or systemd\-socket\-activate(1) is used instead of the policy's listen address, so connections arriving during a restart wait in its backlog.
.TP
.B NZSECURE_CPUPROFILE
serve writes a Go CPU profile to this file until it stops.
.TP
.BR GOGC ", " GOMEMLIMIT ", " GOMAXPROCS
when unset, serve runs the collector at GOGC=400 with a 1 GiB soft memory limit and uses half the CPUs (at least one), leaving the others to the MTA; the "serving" log line says which settings it runs with.
.SH FILES
.TP
.I /etc/nzsecure\-milter/policy.toml
the policy the systemd units serve; version reports it when present.
.TP
.I /var/spool/postfix/nzsecure
a directory inside Postfix's chroot for a unix milter socket (group postfix).
.TP
.I /var/lib/nzsecure\-milter
state of the service.
.SH SEE ALSO
.BR nzsecure\-milter.toml (5),
.BR postconf (5),
.BR systemd.socket (5),
.IR /usr/share/doc/nzsecure\-milter/README.md
`)
}

// writeFlagHelp turns the flag package's PrintDefaults text (after the
// "usage:" line) into roff: a tagged paragraph per flag.
func writeFlagHelp(w io.Writer, help string) {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "usage: "):
			fmt.Fprintf(w, ".PP\n.B %s\n", roff(strings.TrimPrefix(l, "usage: ")))
		case strings.HasPrefix(l, "  -"):
			flagPart, desc, hasDesc := strings.Cut(strings.TrimPrefix(l, "  "), "\t")
			fmt.Fprintf(w, ".TP\n.B %s\n", roff(strings.TrimSpace(flagPart)))
			if hasDesc {
				fmt.Fprintln(w, roff(strings.TrimSpace(desc)))
			}
		case strings.HasPrefix(l, "    "):
			// The flag package's continuation of a flag's description.
			fmt.Fprintln(w, roff(strings.TrimSpace(l)))
		case strings.TrimSpace(l) != "":
			fmt.Fprintf(w, ".PP\n%s\n", roff(strings.TrimSpace(l)))
		}
	}
}

var (
	manSection = regexp.MustCompile(`^\[([A-Za-z0-9_.]+)\]\s*$`)
	manKey     = regexp.MustCompile(`^#? ?("[^"]+"|[A-Za-z0-9_.]+) = `)
)

// writeMan5 renders the default policy file: its comments become the text,
// its [tables] subsections and each key line (commented-out ones are the
// keys whose default comes from the profile) is shown as written.
func writeMan5(w io.Writer, policyText []byte) {
	fmt.Fprintf(w, ".TH NZSECURE\\-MILTER.TOML 5 %q %q \"File Formats\"\n", manDate(), productName+" "+version)
	fmt.Fprintln(w, ".SH NAME")
	fmt.Fprintln(w, `nzsecure\-milter.toml \- policy file of nzsecure\-milter`)
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, roff("The policy is a TOML file, by default /etc/nzsecure-milter/policy.toml. Check it with `nzsecure-milter lint FILE`. What follows is the built-in default policy, key by key, with its comments; every key is optional."))
	inLiteral := false
	para := false
	endLiteral := func() {
		if inLiteral {
			fmt.Fprintln(w, ".fi")
			inLiteral = false
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(policyText))
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), " \t")
		switch {
		case l == "" || l == "#":
			endLiteral()
			para = false
		case manSection.MatchString(l):
			endLiteral()
			fmt.Fprintf(w, ".SS %s\n", roff(l))
			para = false
		case manKey.MatchString(l):
			endLiteral()
			fmt.Fprintf(w, ".PP\n\\fB%s\\fR\n", roff(l))
			para = false
		case strings.HasPrefix(l, "#   ") || strings.HasPrefix(l, "#\t"):
			// An indented comment line is an example: keep it as typed.
			if !inLiteral {
				fmt.Fprintln(w, ".PP\n.nf")
				inLiteral = true
			}
			fmt.Fprintln(w, roff(strings.TrimPrefix(l, "#")))
			para = false
		case strings.HasPrefix(l, "#"):
			endLiteral()
			if !para {
				fmt.Fprintln(w, ".PP")
				para = true
			}
			fmt.Fprintln(w, roff(strings.TrimSpace(strings.TrimPrefix(l, "#"))))
		default:
			// A continuation of a multi-line value.
			endLiteral()
			fmt.Fprintf(w, ".br\n\\fB%s\\fR\n", roff(l))
		}
	}
	endLiteral()
	fmt.Fprint(w, `.SH SEE ALSO
.BR nzsecure\-milter (8)
`)
}
