package policy

import "time"

// Runtime holds the settings of how the daemons run, kept apart from the
// rule set: they say where `serve` and `tlspolicy` listen, what is logged,
// which resolver answers the sender checks and how notices are handed to
// the MTA, never what happens to a message. The policy file holds them in
// [listen], [log], [dns], tlspolicy.listen, notify.submit and
// notify.sendmail. A SIGHUP applies them all except the listening
// sockets, which are bound once at start.
type Runtime struct {
	Listen ListenPolicy // listen.*
	Log    LogPolicy    // log.*
	DNS    DNSPolicy    // dns.*
	// TLSPolicyListen (tlspolicy.listen) is where `nzsecure-milter
	// tlspolicy` serves Postfix's socketmap: inet:HOST:PORT or unix:/PATH.
	TLSPolicyListen string
	Submit          SubmitPolicy // notify.submit, notify.sendmail
	// Selftest is selftest.* (R19-R21).
	Selftest SelftestPolicy
}

// ListenPolicy says where `serve` listens.
type ListenPolicy struct {
	// Milter is a socket spec: inet:HOST:PORT or unix:PATH.
	Milter string
	// Metrics is where Prometheus metrics are served (inet:HOST:PORT);
	// "" turns them off.
	Metrics string
}

// DNSPolicy configures the resolver used for SPF, Sender ID, DKIM, DMARC.
type DNSPolicy struct {
	// Servers are HOST:PORT; empty means the system's (/etc/resolv.conf).
	Servers []string
	// Timeout for one query.
	Timeout time.Duration
}

// LogPolicy controls the decision log.
type LogPolicy struct {
	// Level is debug, info, warn or error.
	Level string
}

// SubmitPolicy is how generated mail (notices, receipts, ping answers,
// R92-R99) reaches the MTA; never straight to the internet.
type SubmitPolicy struct {
	// Method (notify.submit) is "sendmail" (the Sendmail command) or
	// "smtp:HOST:PORT" (a loopback port).
	Method string
	// Sendmail (notify.sendmail) is the command line for Method "sendmail".
	Sendmail []string
}
