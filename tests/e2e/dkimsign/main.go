// Command dkimsign signs a message for the end-to-end tests (spoofing.sh):
// it reads the message on stdin, signs it with auth/dkim (the signer the
// milter uses outbound) and writes it with the DKIM-Signature on top, line
// ends LF as swaks wants its --data file.
//
//	dkimsign -domain fwd.example -selector s1 -key s1.key <msg >signed
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
)

func main() {
	domain := flag.String("domain", "", "signing domain (d=)")
	selector := flag.String("selector", "", "selector (s=)")
	keyFile := flag.String("key", "", "PEM private key file")
	flag.Parse()
	if err := run(*domain, *selector, *keyFile, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dkimsign:", err)
		os.Exit(1)
	}
}

func run(domain, selector, keyFile string, in io.Reader, out io.Writer) error {
	k, err := dkim.LoadKey(selector, keyFile)
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	crlf := bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	values, err := dkim.Sign(bytes.NewReader(crlf), domain, []dkim.Key{k}, dkim.SignOptions{})
	if err != nil {
		return err
	}
	for _, v := range values {
		if _, err := fmt.Fprintf(out, "DKIM-Signature: %s\n", strings.ReplaceAll(v, "\r\n", "\n")); err != nil {
			return err
		}
	}
	_, err = out.Write(bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n")))
	return err
}
