package main

import (
	"bufio"
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

	// Like serve: the message is spooled (in memory up to
	// limits.memory_spool, then in an unlinked temporary file), so memory
	// does not grow with the message, and one larger than
	// limits.max_message_size is refused as serve refuses it. Line ends
	// become CRLF, as the MTA hands the message over.
	in := io.Reader(os.Stdin)
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "check: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	spool := milter.NewSpool(p.Limits.MemorySpool, p.Limits.SpoolDir)
	defer spool.Close()
	if _, err := io.CopyN(spool, &crlfReader{r: bufio.NewReaderSize(in, 32<<10)}, p.Limits.MaxMessageSize+1); err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	out.SetEscapeHTML(false)
	conn := policy.Conn{
		ClientIP: ip, ClientName: *clientName, HELO: *helo, Daemon: *daemon,
		TLS: policy.TLSInfo{Version: *tlsVersion, Cipher: *cipher, CipherBits: *cipherBits},
	}
	if limit := p.Limits.MaxMessageSize; spool.Size() > limit {
		env := policy.Envelope{QueueID: *queueID, From: *from, AuthUser: *auth}
		v := policy.Verdict{Stage: "size", Direction: p.Direction(conn, env), Action: policy.Reject, Classification: policy.Unclassified,
			Reply:   &policy.Reply{Code: 552, Status: "5.3.4", Text: fmt.Sprintf("Message too big: this gateway accepts at most %d bytes", limit)},
			Reasons: []string{fmt.Sprintf("message passed limits.max_message_size (%d bytes)", limit)}}
		if err := out.Encode(v.Report()); err != nil {
			fmt.Fprintf(stderr, "check: %v\n", err)
			return 1
		}
		return 0
	}
	class, err := classify.Classify(spool.Reader(), milter.ClassifyOptions(p))
	if err != nil {
		fmt.Fprintf(stderr, "check: classification: %v\n", err)
		return 1
	}
	headers, err := policy.ReadHeaders(bufio.NewReader(spool.Reader()))
	if err != nil {
		fmt.Fprintf(stderr, "check: %s: %v\n", pos[0], err)
		return 1
	}
	message := spool.Reader

	env := policy.Envelope{QueueID: *queueID, From: *from, Rcpts: rcpts, AuthUser: *auth}
	if env.From == "" {
		env.From = firstAddress(headers, "From")
	}
	if len(env.Rcpts) == 0 {
		env.Rcpts = addresses(headers, "To", "Cc")
	}
	t := policy.Transaction{
		Conn:           conn,
		Envelope:       env,
		Headers:        headers,
		Classification: class.Classification,
		RSVPDR:         class.RSVPDR,
		Unreadable:     class.Unreadable,
		Received:       time.Now(),
	}
	report := struct {
		policy.Report
		RSVPDR   bool               `json:"rsvpdr"`
		Markings []classify.Marking `json:"markings"`
	}{p.Evaluate(context.Background(), t, runner, message).Report(), class.RSVPDR, class.Markings}
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

// crlfReader gives a message CRLF line ends, as the MTA hands it over:
// a LF without CR before it gets one. It streams.
type crlfReader struct {
	r      *bufio.Reader
	lastCR bool
	lf     bool // a LF is owed after an inserted CR
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.lf {
			p[n] = '\n'
			n++
			c.lf, c.lastCR = false, false
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == '\n' && !c.lastCR {
			p[n] = '\r'
			n++
			c.lf = true
			continue
		}
		p[n] = b
		n++
		c.lastCR = b == '\r'
	}
	return n, nil
}
