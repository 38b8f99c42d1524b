// Command heldput puts one message into a held-mail store (package
// heldmail), as the outbound S/MIME step does when it holds a message for
// a certificate problem; the end-to-end test smime-held.sh uses it to give
// a running milter held mail to retry without needing a broken peer
// certificate.
//
//	heldput -dir DIR -from alice@agency.govt.nz -rcpt bob@peer.govt.nz -auth alice -age 73h msg.eml
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func main() {
	dir := flag.String("dir", "", "the store (smime.held_dir)")
	from := flag.String("from", "", "envelope sender")
	rcpts := flag.String("rcpt", "", "held recipients, comma-separated")
	auth := flag.String("auth", "", "SASL user (outbound)")
	ip := flag.String("client-ip", "127.0.0.1", "client IP")
	name := flag.String("client-name", "localhost", "client name")
	tlsv := flag.String("tls-version", "", "TLS version (Postfix's form)")
	daemon := flag.String("daemon", "", "Postfix daemon_name")
	domain := flag.String("domain", "", "the domain whose certificate is the problem")
	code := flag.String("code", "201", "Table 3 code")
	reason := flag.String("reason", "peer certificate revoked", "why")
	age := flag.Duration("age", 0, "received this long ago")
	flag.Parse()
	if flag.NArg() != 1 || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: heldput -dir DIR [flags] FILE")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "heldput:", err)
		os.Exit(1)
	}
	defer f.Close()
	s, err := heldmail.Open(*dir, heldmail.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "heldput:", err)
		os.Exit(1)
	}
	addr, err := netip.ParseAddr(*ip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heldput:", err)
		os.Exit(2)
	}
	h := pipeline.HeldMessage{
		Conn:     policy.Conn{ClientIP: addr, ClientName: *name, Daemon: *daemon, TLS: policy.TLSInfo{Version: *tlsv}},
		Envelope: policy.Envelope{QueueID: "HELDPUT", From: *from, Rcpts: strings.Split(*rcpts, ","), AuthUser: *auth},
		Domain:   *domain, Code: *code, Reason: *reason, Received: time.Now().Add(-*age),
	}
	id, err := s.Put(context.Background(), h, f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heldput:", err)
		os.Exit(1)
	}
	fmt.Println(id)
}
