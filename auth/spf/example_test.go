package spf_test

import (
	"context"
	"fmt"
	"net"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
)

// In production the Resolver is a *dnsresolver.Resolver:
//
//	r, err := dnsresolver.New(dnsresolver.Config{Servers: []string{"127.0.0.1:53"}})
//	ev := &spf.Evaluator{Resolver: r, Receiver: "mx.agency.govt.nz"}
func Example() {
	zone := dnstest.NewZone().
		TXT("securemail.agency.govt.nz", "v=spf1 ip4:192.0.2.0/24 -all").
		TXT("securemail.agency.govt.nz", "spf2.0/pra ip4:192.0.2.0/24 -all")
	ev := &spf.Evaluator{Resolver: zone}
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.10")

	spfOut, _ := ev.CheckMailFrom(ctx, ip, "jo@securemail.agency.govt.nz", "mail.agency.govt.nz")
	fmt.Println("SPF:", spfOut.Result, spfOut.RecordType, spfOut.AllQualifier)

	headers := []spf.Header{{Name: "From", Value: "Jo <jo@securemail.agency.govt.nz>"}}
	sidOut, _ := ev.CheckPRA(ctx, ip, headers, "mail.agency.govt.nz")
	fmt.Println("Sender ID:", sidOut.Result, sidOut.RecordType, sidOut.AllQualifier)

	// M-SEC: both records exist, end in -all and pass.
	ok := spfOut.Result == spf.Pass && spfOut.AllQualifier == spf.QualifierFail &&
		sidOut.Result == spf.Pass && sidOut.AllQualifier == spf.QualifierFail
	fmt.Println("M-SEC holds:", ok)
	// Output:
	// SPF: pass spf1 -
	// Sender ID: pass spf2.0 -
	// M-SEC holds: true
}
