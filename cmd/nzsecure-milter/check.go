package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/message"

	"github.com/nzsecure-milter/nzsecure-milter/checks"
	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
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
		outPath    = fs.String("output", "", "write the message as the gateway passes it on to `FILE` (\"-\": stdout, instead of the report)")
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

	// The message goes through the one transaction driver `serve` uses
	// (issue 13 point 3), fed as the milter's callbacks feed it: MAIL FROM,
	// RCPT TO, each header, end of headers, the body in chunks, end of
	// message. It streams: the body is spooled (in memory up to
	// limits.memory_spool, then in an unlinked temporary file) and
	// classified as it comes, and one larger than limits.max_message_size
	// is refused as serve refuses it. Line ends become CRLF, as the MTA
	// hands the message over.
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
	// The header block is read first: the envelope defaults come from it.
	msg, headers, tooBig, err := readMessage(in, p.Limits.MaxMessageSize)
	if err != nil {
		fmt.Fprintf(stderr, "check: %s: %v\n", pos[0], err)
		return 1
	}
	conn := policy.Conn{
		ClientIP: ip, ClientName: *clientName, HELO: *helo, Daemon: *daemon,
		TLS: policy.TLSInfo{Version: *tlsVersion, Cipher: *cipher, CipherBits: *cipherBits},
	}
	env := policy.Envelope{QueueID: *queueID, From: *from, AuthUser: *auth}
	if env.From == "" {
		env.From = firstAddress(headers, "From")
	}
	if len(rcpts) == 0 {
		rcpts = addresses(headers, "To", "Cc")
	}
	signers, err := pipeline.NewSigners(p)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	st := pipeline.State{Policy: p, Checker: runner, Signers: signers, Known: checkKnown(p, stderr)}
	if p.SMIME.Mode == policy.SMIMEOn {
		// As serve (issue 14), but looking never creates a directory.
		if st.SMIME, err = pipeline.NewSMIMEEnv(p, false); err != nil {
			fmt.Fprintf(stderr, "check: %v\n", err)
			return 1
		}
		// Nor learns a signer into the peer store: check changes no state.
		st.SMIME.ReadOnly = true
	}
	tx, v, err := pipeline.Begin(st, conn, env, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	defer tx.Close()
	// The body is read also after an earlier verdict: `check` reports what
	// the message carries (classification, markings) though the gateway
	// decided before reading it; what is past the size limit is not read,
	// as serve refuses it unread.
	v, early, err := feedMessage(tx, v, rcpts, headers, tooBig, msg, p.Limits.MaxMessageSize)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	class, cerr := tx.Classified()
	if early && v.Classification == "" {
		if cerr == nil {
			v.Classification, v.Unreadable = class.Classification, class.Unreadable
		}
		if v.Classification == "" {
			v.Classification = policy.Unclassified
		}
	}
	// The verdict carried out as the milter carries it: the transform
	// chain runs for a kept message; a failure is the milter's tempfail.
	var forms []pipeline.Form
	if v.Action == policy.Accept || v.Action == policy.Quarantine || v.Action == policy.Discard && len(v.Copies) > 0 {
		if forms, err = tx.Forms(v); err != nil {
			forms = nil
			v = policy.Verdict{Stage: v.Stage, Direction: v.Direction, Action: policy.Tempfail, Classification: v.Classification,
				Reply:   &policy.Reply{Code: 451, Status: "4.3.0", Text: "Temporary failure in the secure-email filter; please try again later"},
				Reasons: append(v.Reasons, "carrying out the verdict failed: "+err.Error())}
		}
	}
	if *outPath != "" {
		if err := writeOutput(*outPath, forms, stdout); err != nil {
			fmt.Fprintf(stderr, "check: --output: %v\n", err)
			return 1
		}
		if *outPath == "-" {
			return 0
		}
	}
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	out.SetEscapeHTML(false)
	report := struct {
		policy.Report
		RSVPDR   bool               `json:"rsvpdr"`
		Markings []classify.Marking `json:"markings"`
		Forms    []formReport       `json:"forms"`
	}{v.Report(), class.RSVPDR, class.Markings, []formReport{}}
	for _, f := range forms {
		fr := formReport{Form: f.Kind, Recipients: f.Rcpts, Main: f.Main}
		if f.Held != nil {
			fr.Code, fr.Domain, fr.AdminHold = f.Held.Code, f.Held.Domain, f.Held.AdminHold
		}
		report.Forms = append(report.Forms, fr)
	}
	if report.Markings == nil {
		report.Markings = []classify.Marking{}
	}
	if err := out.Encode(report); err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 1
	}
	return 0
}

// readMessage reads a message file as the MTA hands it over (line ends
// become CRLF) up to the end of its header block: the rest stays in body.
// tooBig: the header block alone is past limit (refused at end of headers,
// as serve refuses it).
func readMessage(r io.Reader, limit int64) (body *bufio.Reader, headers []policy.Header, tooBig bool, err error) {
	body = bufio.NewReaderSize(&crlfReader{r: bufio.NewReaderSize(r, 32<<10)}, 64<<10)
	headers, err = pipeline.ReadRawHeaders(body, limit+1)
	if err != nil && !errors.Is(err, pipeline.ErrHeaderBlockTooLarge) {
		return nil, nil, false, err
	}
	return body, headers, err != nil, nil
}

// feedMessage drives tx, begun with verdict v, as the milter's callbacks
// drive it (issue 13 point 3): RCPT TO for each of rcpts, each header, end
// of headers, the body in chunks, end of message. `check` and the held-mail
// retry feed a message this way. The body is read also after a verdict
// final before it (early); with limit > 0 reading stops once the message
// is past limit bytes, else it goes to the end (the held store checks its
// digest there). It returns the final verdict; an error is a read error.
func feedMessage(tx *pipeline.Transaction, v policy.Verdict, rcpts []string, headers []policy.Header, tooBig bool, body io.Reader, limit int64) (_ policy.Verdict, early bool, _ error) {
	for _, r := range rcpts {
		tx.Rcpt(r)
	}
	for _, h := range headers {
		tx.Header(h.Name, h.Value)
	}
	if tooBig {
		// Past the limit within the header block: what serve refuses at
		// end of headers.
		tx.OverLimit()
	}
	if !v.Final() {
		v = tx.EndOfHeaders()
	}
	early = v.Final()
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			tx.BodyChunk(buf[:n])
		}
		if rerr == io.EOF || limit > 0 && tx.Size() > limit {
			break
		}
		if rerr != nil {
			return v, early, rerr
		}
	}
	if !early {
		v = tx.EndOfMessage()
	}
	return v, early, nil
}

// formReport is one form of the message in the report (issue 14): which
// recipients get it; main is the MTA's own transaction, the others are
// copies the milter submits, held ones are kept by the gateway.
type formReport struct {
	Form       policy.FormKind `json:"form"`
	Recipients []string        `json:"recipients"`
	Main       bool            `json:"main"`
	Code       string          `json:"code,omitempty"`
	Domain     string          `json:"domain,omitempty"`
	// AdminHold: held for the administrator (`held release`, R62).
	AdminHold string `json:"admin_hold,omitempty"`
}

// FormSeparator starts each form in `check --output` when more than one
// form of the message leaves the gateway (issue 14: a peer agency gets
// the S/MIME form, an internet address the plain one): the line
// "FormSeparator N KIND: RCPT, RCPT" and CRLF, then that form; N counts
// from 1 in the report's "forms" order, held forms (which do not leave)
// skipped. With one form leaving, the output is that message alone.
const FormSeparator = "=== nzsecure-milter check form"

// writeOutput writes the message as the gateway passes it on (`--output`):
// nothing when it does not pass it on (refused, discarded, tempfailed).
// "-" is stdout, and then the JSON report is not printed. Several forms
// are written one after another, each after a FormSeparator line.
func writeOutput(path string, forms []pipeline.Form, stdout io.Writer) error {
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	var leaving []pipeline.Form
	for _, f := range forms {
		if f.Output != nil && (len(f.Rcpts) > 0 || len(forms) == 1) {
			leaving = append(leaving, f)
		}
	}
	for i, f := range leaving {
		if len(leaving) > 1 {
			if _, err := fmt.Fprintf(w, "%s %d %s: %s\r\n", FormSeparator, i+1, f.Kind, strings.Join(f.Rcpts, ", ")); err != nil {
				return err
			}
		}
		if _, err := f.Output.WriteTo(w); err != nil {
			return err
		}
	}
	if f, ok := w.(*os.File); ok && path != "-" {
		return f.Close()
	}
	return nil
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
