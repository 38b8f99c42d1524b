package dnstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/internal/dnsname"
)

// Start serves z as an authoritative server on 127.0.0.1, UDP and TCP on
// the same random port. It returns the address ("127.0.0.1:port") and a
// function that stops the server and waits for it.
func Start(z *Zone) (addr string, stop func(), err error) {
	var pc net.PacketConn
	var l net.Listener
	for try := 0; ; try++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		addr = pc.LocalAddr().String()
		l, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			return "", nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", err)
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: z}
	tcp := &dns.Server{Listener: l, Handler: z}
	started := make(chan struct{}, 2)
	done := make(chan error, 2)
	for _, srv := range []*dns.Server{udp, tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { done <- srv.ActivateAndServe() }()
	}
	for i := 0; i < 2; i++ {
		select {
		case <-started:
		case err := <-done:
			udp.Shutdown()
			tcp.Shutdown()
			return "", nil, fmt.Errorf("dnstest: server did not start: %w", err)
		case <-time.After(5 * time.Second):
			return "", nil, errors.New("dnstest: server did not start")
		}
	}
	stop = func() {
		udp.Shutdown()
		tcp.Shutdown()
	}
	return addr, stop, nil
}

// MustStart is Start for tests: it fails tb on error and stops the server
// when the test ends.
func MustStart(tb testing.TB, z *Zone) string {
	tb.Helper()
	addr, stop, err := Start(z)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return addr
}

// ServeDNS answers one query from the zone (dns.Handler).
func (z *Zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = false
	q := req.Question[0]
	raw := dnsname.Unescape(q.Name)
	udp := w.LocalAddr().Network() == "udp"

	res := z.resolve(raw, q.Qtype)
	switch res.status {
	case stTimeout:
		return // no answer at all
	case stServFail:
		m.Rcode = dns.RcodeServerFailure
	case stNXDomain, stNoData:
		if res.status == stNXDomain {
			m.Rcode = dns.RcodeNameError
		}
		for _, r := range res.chain {
			m.Answer = append(m.Answer, z.toRR(r))
		}
		m.Ns = append(m.Ns, z.soaFor(res.last))
	default:
		for _, r := range res.chain {
			m.Answer = append(m.Answer, z.toRR(r))
		}
		for _, r := range res.answers {
			m.Answer = append(m.Answer, z.toRR(r))
		}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if udp {
		if z.truncates(raw) {
			m.Answer, m.Ns, m.Extra = nil, nil, nil
			m.Truncated = true
		} else {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
	}
	_ = w.WriteMsg(m)
}

func (z *Zone) truncates(raw string) bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	n := z.nodes[dnsname.Key(raw)]
	return n != nil && n.fault == TruncateUDP
}

func hdr(owner string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(dnsname.Escape(owner)), Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// toRR converts a stored record into its miekg/dns form.
func (z *Zone) toRR(r record) dns.RR {
	if r.other != nil {
		return dns.Copy(r.other)
	}
	h := hdr(r.owner, r.typ, r.ttl)
	target := dns.Fqdn(dnsname.Escape(r.target))
	switch r.typ {
	case dns.TypeA:
		return &dns.A{Hdr: h, A: net.IP(r.addr.AsSlice())}
	case dns.TypeAAAA:
		return &dns.AAAA{Hdr: h, AAAA: net.IP(r.addr.AsSlice())}
	case dns.TypeMX:
		return &dns.MX{Hdr: h, Preference: r.pref, Mx: target}
	case dns.TypeTXT:
		txt := make([]string, len(r.txt))
		for i, s := range r.txt {
			txt[i] = dnsname.EscapeTXT(s)
		}
		return &dns.TXT{Hdr: h, Txt: txt}
	case dns.TypePTR:
		return &dns.PTR{Hdr: h, Ptr: target}
	case dns.TypeCNAME:
		return &dns.CNAME{Hdr: h, Target: target}
	case dns.TypeNS:
		return &dns.NS{Hdr: h, Ns: target}
	}
	return &dns.ANY{Hdr: h}
}

// soaFor returns the SOA record of the closest enclosing name that has
// one, or a synthesized one whose minimum is the negative TTL (RFC 2308
// section 5).
func (z *Zone) soaFor(raw string) dns.RR {
	z.mu.RLock()
	defer z.mu.RUnlock()
	k := dnsname.Key(raw)
	for {
		if n := z.nodes[k]; n != nil {
			for _, r := range n.records {
				if soa, ok := r.other.(*dns.SOA); ok {
					return dns.Copy(soa)
				}
			}
		}
		i := strings.IndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[i+1:]
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.negativeTTL},
		Ns:      "ns.dnstest.invalid.",
		Mbox:    "hostmaster.dnstest.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  z.negativeTTL,
	}
}
