// Command noopmilter is the floor for any milter in bench/throughput.sh
// (issue 13 point 7): it negotiates the protocol options, actions and
// macros nzsecure-milter asks for (milter/milter.go), receives every
// header and body chunk, and accepts every message without looking at it.
// What Postfix loses with it attached is the cost of the milter protocol
// itself, which no milter can avoid.
//
//	noopmilter -listen 127.0.0.1:PORT | -listen unix:/PATH
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/internal/quickack"
	"github.com/nzsecure-milter/nzsecure-milter/internal/runtimetune"
)

// The same requests as milter/milter.go's macroRequests, so Postfix sends
// the same macro packets.
var tlsMacros = []string{gomilter.MacroTlsVersion, gomilter.MacroCipher, gomilter.MacroCipherBits, gomilter.MacroCertSubject, gomilter.MacroCertIssuer}

var macroRequests = []struct {
	stage  gomilter.MacroStage
	macros []gomilter.MacroName
}{
	{gomilter.StageConnect, []string{gomilter.MacroMTAFQDN, gomilter.MacroMTAVersion, gomilter.MacroDaemonName, gomilter.MacroDaemonAddr, gomilter.MacroClientAddr, gomilter.MacroClientName, gomilter.MacroClientPTR}},
	{gomilter.StageHelo, tlsMacros},
	{gomilter.StageMail, append([]string{gomilter.MacroQueueId, gomilter.MacroAuthType, gomilter.MacroAuthAuthen, gomilter.MacroAuthAuthor, gomilter.MacroMailAddr}, tlsMacros...)},
	{gomilter.StageRcpt, []string{gomilter.MacroQueueId, gomilter.MacroRcptAddr, gomilter.MacroRcptMailer}},
	{gomilter.StageData, []string{gomilter.MacroQueueId}},
	{gomilter.StageEOH, []string{gomilter.MacroQueueId}},
	{gomilter.StageEOM, []string{gomilter.MacroQueueId}},
}

// Actions and protocol options as milter/milter.go's wantedActions and
// wantedProtocol: no reply for connect, HELO, RCPT, DATA, headers, body
// chunks; headers and body still sent.
var protocol = gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoRcptReply |
	gomilter.OptNoDataReply | gomilter.OptNoHeaderReply | gomilter.OptNoUnknownReply | gomilter.OptNoBodyReply |
	gomilter.OptNoData | gomilter.OptNoUnknown | gomilter.OptHeaderLeadingSpace

const (
	actions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptRemoveRcpt | gomilter.OptChangeBody | gomilter.OptAddRcpt | gomilter.OptChangeFrom
)

// noop receives everything; NoOpMilter answers continue at every stage
// and accept at end of message.
type noop struct{ gomilter.NoOpMilter }

// editing is noop that, at end of message, inserts the two header fields
// nzsecure-milter inserts into an inbound message (Authentication-Results
// at the top, RFC 8601 section 5, and X-NZ-Secure-Gateway, R100) with
// values of the same size: the experiment that shows what Postfix's own
// handling of a milter's header edits costs (bench/throughput.sh
// noop-headers).
type editing struct{ gomilter.NoOpMilter }

func (editing) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	if err := m.InsertHeader(0, "Authentication-Results", " mx.e2e.test;\n\tspf=pass smtp.mailfrom=sender@sender.example;\n\tsender-id=pass header.from=sender@sender.example;\n\tdkim=none;\n\tdmarc=none reason=\"no DMARC record for sender.example\" header.from=sender.example"); err != nil {
		return nil, err
	}
	if err := m.InsertHeader(0, "X-NZ-Secure-Gateway", " received=Tue, 01 Dec 2026 14:00:00 +0000; gateway=mx.e2e.test"); err != nil {
		return nil, err
	}
	return gomilter.RespAccept, nil
}

func negotiate(mtaVersion, milterVersion uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	return min(mtaVersion, milterVersion), actions & mtaActions, protocol & mtaProtocol, offered, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (loopback), or unix:/PATH")
	replies := flag.Bool("replies", false, "experiment: ask for a reply to every event (no No*Reply options)")
	plain := flag.Bool("plain", false, "no TCP_QUICKACK and Go's runtime defaults (go-milter as it comes); by default the same transport and runtime settings as nzsecure-milter serve")
	headers := flag.Bool("headers", false, "experiment: insert the two header fields nzsecure-milter inserts inbound, at end of message")
	flag.Parse()
	var newMilter = func() gomilter.Milter { return &noop{} }
	if *headers {
		newMilter = func() gomilter.Milter { return editing{} }
	}
	if *replies {
		protocol = gomilter.OptNoData | gomilter.OptNoUnknown | gomilter.OptHeaderLeadingSpace
	}
	opts := []gomilter.Option{
		gomilter.WithMilter(newMilter),
		gomilter.WithActions(actions),
		gomilter.WithProtocol(protocol),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithReadTimeout(10 * time.Minute),
		gomilter.WithWriteTimeout(30 * time.Second),
	}
	for _, r := range macroRequests {
		opts = append(opts, gomilter.WithMacroRequest(r.stage, r.macros))
	}
	srv := gomilter.NewServer(opts...)
	network, address := "tcp", *listen
	if path, ok := strings.CutPrefix(*listen, "unix:"); ok {
		network, address = "unix", path
		_ = os.Remove(path)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		log.Fatal(err)
	}
	if !*plain {
		// As nzsecure-milter serve does (internal/quickack,
		// internal/runtimetune): the floor uses the same transport and
		// the same runtime settings.
		ln = quickack.Listener(ln)
		fmt.Fprintf(os.Stderr, "noopmilter runtime: %s\n", runtimetune.Apply())
	}
	fmt.Fprintf(os.Stderr, "noopmilter listening on %s\n", ln.Addr())
	// NZSECURE_CPUPROFILE=FILE, as for nzsecure-milter serve: a CPU
	// profile until SIGTERM, to set beside the milter's (bench/throughput.sh
	// BENCH_PROFILE_DIR writes DIR/noop.prof).
	if path := os.Getenv("NZSECURE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != gomilter.ErrServerClosed {
		log.Print(err)
	}
}
