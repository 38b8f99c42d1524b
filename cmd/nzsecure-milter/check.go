package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func init() {
	register("check", "run the milter's pipeline offline on a message file; print the verdict as JSON", runCheck)
}

// runCheck runs the same engine functions as `serve` on one message file.
// Exit 0 for any verdict; 2 for usage errors, 1 for input errors.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "FILE|-", stderr)
	var pf policyFlags
	pf.add(fs)
	var (
		clientIP   = fs.String("client-ip", "", "client `IP` address (default: none, an unknown internet client)")
		clientName = fs.String("client-name", "unknown", "client host `NAME` as the MTA verified it")
		helo       = fs.String("helo", "", "HELO/EHLO `NAME`")
		tlsVersion = fs.String("tls-version", "", "TLS version in Postfix's form, e.g. `TLSv1.3` (absent: plaintext)")
		cipher     = fs.String("cipher", "", "TLS cipher `NAME`")
		cipherBits = fs.Int("cipher-bits", 0, "TLS cipher strength in `BITS`")
		auth       = fs.String("auth", "", "SASL `USER` (makes the message outbound)")
		from       = fs.String("from", "", "envelope sender `ADDRESS` (default: the From: header's address)")
		daemon     = fs.String("daemon", "", "Postfix {daemon_name} of the smtpd, e.g. `ORIGINATING`")
		queueID    = fs.String("queue-id", "", "queue `ID` for the report")
		dnsServer  = fs.String("dns", "", "DNS server `HOST:PORT` for SPF and Sender ID (default: the policy's dns.servers)")
		rcpts      multiFlag
	)
	fs.Var(&rcpts, "rcpt", "envelope recipient `ADDRESS` (repeatable; default: the To: and Cc: addresses)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	if *tlsVersion == "" && (*cipher != "" || *cipherBits != 0) {
		fmt.Fprintln(stderr, "check: --cipher and --cipher-bits need --tls-version")
		return 2
	}
	var ip netip.Addr
	if *clientIP != "" {
		if ip, err = netip.ParseAddr(*clientIP); err != nil {
			fmt.Fprintf(stderr, "check: --client-ip: %q is not an IP address\n", *clientIP)
			return 2
		}
		ip = ip.Unmap()
	}
	if *dnsServer != "" {
		pf.sets = append(pf.sets, fmt.Sprintf("dns.servers=[%q]", *dnsServer))
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	runner, _, err := checks.NewRunner(p, p.AuthservID)
	if err != nil {
		fmt.Fprintf(stderr, "check: DNS resolver: %v\n", err)
		return 1
	}

	// check is an offline tool: the message is read into memory once, and
	// read again from there for DKIM and DMARC.
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	class, err := classify.Classify(bytes.NewReader(data), milter.ClassifyOptions(p))
	if err != nil {
		fmt.Fprintf(stderr, "check: classification: %v\n", err)
		return 1
	}
	headers, err := policy.ReadHeaders(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		fmt.Fprintf(stderr, "check: %s: %v\n", pos[0], err)
		return 1
	}
	message := func() io.Reader { return bytes.NewReader(crlf(data)) }

	env := policy.Envelope{QueueID: *queueID, From: *from, Rcpts: rcpts, AuthUser: *auth}
	if env.From == "" {
		env.From = firstAddress(headers, "From")
	}
	if len(env.Rcpts) == 0 {
		env.Rcpts = addresses(headers, "To", "Cc")
	}
	t := policy.Transaction{
		Conn: policy.Conn{
			ClientIP: ip, ClientName: *clientName, HELO: *helo, Daemon: *daemon,
			TLS: policy.TLSInfo{Version: *tlsVersion, Cipher: *cipher, CipherBits: *cipherBits},
		},
		Envelope:       env,
		Headers:        headers,
		Classification: class.Classification,
		RSVPDR:         class.RSVPDR,
		Unreadable:     class.Unreadable,
		Received:       time.Now(),
	}
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	out.SetEscapeHTML(false)
	report := struct {
		policy.Report
		RSVPDR   bool               `json:"rsvpdr"`
		Markings []classify.Marking `json:"markings"`
	}{p.Evaluate(context.Background(), t, runner, message).Report(), class.RSVPDR, class.Markings}
	if report.WarningCode != "" {
		// R199/R108 grading, as the milter does it.
		v := policy.Verdict{WarningCode: report.WarningCode, WarningMode: report.WarningMode}
		report.WarningMode = string(milter.GradeWarning(p, v, headers).Mode)
	}
	if err := out.Encode(report); err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	return 0
}

// addresses lists the addresses of the named headers; unparsable ones are skipped.
func addresses(hs []policy.Header, names ...string) []string {
	var out []string
	for _, name := range names {
		for _, v := range policy.HeaderValues(hs, name) {
			for _, a := range message.Mailboxes(v).Authors {
				out = append(out, a.Address())
			}
		}
	}
	return out
}

func firstAddress(hs []policy.Header, name string) string {
	if a := addresses(hs, name); len(a) > 0 {
		return a[0]
	}
	return ""
}

// crlf gives a message CRLF line ends, as the MTA hands it over.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}
