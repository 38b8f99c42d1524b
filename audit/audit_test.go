package audit

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/internal/testpki"
)

// testKey reads a DKIM key record from testdata (generated once: RSA 2048
// and 1024 bits, Ed25519).
func testKey(name string) string {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

// stsServer serves MTA-STS policies by Host over HTTPS on 127.0.0.1; its
// client sends every mta-sts.* name there and trusts the test CA.
type stsServer struct {
	mu       sync.Mutex
	policies map[string]string // "mta-sts.DOMAIN" -> policy text
	addr     string
	client   *http.Client
}

func newSTSServer(t testing.TB, domains ...string) *stsServer {
	s := &stsServer{policies: map[string]string{}}
	var names []string
	for _, d := range domains {
		names = append(names, "mta-sts."+d)
	}
	pool, cert := testpki.New(t, names...)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, ok := s.policies[r.Host]
		s.mu.Unlock()
		if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		rw.Write([]byte(body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.addr = srv.Listener.Addr().String()
	s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.addr)
		},
	}}
	return s
}

func (s *stsServer) set(domain, policy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies["mta-sts."+domain] = policy
}

// emailSetup is what an email domain publishes; compliant by default.
type emailSetup struct {
	spf    []string // TXT at the domain
	dmarc  []string
	sts    []string // TXT at _mta-sts
	policy string   // served at mta-sts.DOMAIN; "" serves nothing
	tlsrpt []string
	mx     []string // hosts, preference 10, 20, ...
	dkim   map[string]string
	extra  func(z *dnstest.Zone, d string)
}

const enforcePolicy = "version: STSv1\nmode: enforce\nmx: mx1.%s\nmx: *.mail.%s\nmax_age: 604800\n"

func compliant(d string) emailSetup {
	return emailSetup{
		spf:    []string{"v=spf1 ip4:192.0.2.0/24 include:_spf." + d + " mx -all"},
		dmarc:  []string{"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@" + d},
		sts:    []string{"v=STSv1; id=20240101T000000"},
		policy: strings.ReplaceAll(enforcePolicy, "%s", d),
		tlsrpt: []string{"v=TLSRPTv1; rua=mailto:tlsrpt@" + d + ",https://reports.example/tlsrpt"},
		mx:     []string{"mx1." + d, "in.mail." + d},
		dkim:   map[string]string{"sel": testKey("dkim-rsa2048.txt")},
		extra: func(z *dnstest.Zone, d string) {
			z.TXT("_spf."+d, "v=spf1 ip4:198.51.100.0/24 -all")
		},
	}
}

func (e emailSetup) publish(z *dnstest.Zone, sts *stsServer, d string) {
	for _, t := range e.spf {
		z.TXT(d, t)
	}
	for _, t := range e.dmarc {
		z.TXT("_dmarc."+d, t)
	}
	for _, t := range e.sts {
		z.TXT("_mta-sts."+d, t)
	}
	if e.policy != "" {
		sts.set(d, e.policy)
	}
	for _, t := range e.tlsrpt {
		z.TXT("_smtp._tls."+d, t)
	}
	for i, h := range e.mx {
		z.MX(d, uint16(10*(i+1)), h)
	}
	for sel, t := range e.dkim {
		z.TXT(sel+"._domainkey."+d, t)
	}
	z.A("mta-sts."+d, "127.0.0.1")
	if e.extra != nil {
		e.extra(z, d)
	}
}

// nonEmailSetup publishes what spec 004 section 9 asks of a domain.
func publishNonEmail(z *dnstest.Zone, d string) {
	z.TXT(d, "v=spf1 -all")
	z.TXT("*._domainkey."+d, "v=DKIM1; p=")
	z.TXT("_dmarc."+d, "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@"+d)
}

type emailCase struct {
	domain string
	setup  func(e *emailSetup)
	want   map[string]Status // checks not passing; all others must pass
	reason map[string]string // substrings expected in reasons
	absent []string          // checks that must not be reported
}

var emailCases = []emailCase{
	{domain: "good.example"},
	{domain: "softfail.example", setup: func(e *emailSetup) { e.spf = []string{"v=spf1 mx ~all"} },
		want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: "~all"}},
	{domain: "twospf.example", setup: func(e *emailSetup) { e.spf = append(e.spf, "v=spf1 -all") },
		want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: "2 v=spf1 records"}, absent: []string{CheckSPFLookups}},
	{domain: "nospf.example", setup: func(e *emailSetup) { e.spf = []string{"google-site-verification=abc"} },
		want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: "no v=spf1"}},
	{domain: "badspf.example", setup: func(e *emailSetup) { e.spf = []string{"v=spf1 ip4:300.1.1.1 -all"} },
		want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: "does not parse"}},
	{domain: "noall.example", setup: func(e *emailSetup) { e.spf = []string{"v=spf1 mx"} },
		want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: "no all mechanism"}},
	{domain: "redirect.example", setup: func(e *emailSetup) {
		e.spf = []string{"v=spf1 redirect=_spf.redirect.example"}
	}, reason: map[string]string{CheckSPF: "through redirect=_spf.redirect.example", CheckSPFLookups: "1 of at most 10"}},
	{domain: "lookups.example", setup: func(e *emailSetup) {
		e.spf = []string{"v=spf1 a mx ptr exists:x.lookups.example include:_spf.lookups.example a:b.lookups.example a:c.lookups.example mx:d.lookups.example -all"}
		e.extra = func(z *dnstest.Zone, d string) {
			z.TXT("_spf."+d, "v=spf1 a:e."+d+" a:f."+d+" a:g."+d+" -all")
		}
	}, want: map[string]Status{CheckSPFLookups: Fail}, reason: map[string]string{CheckSPFLookups: "more than 10"}},
	{domain: "brokeninclude.example", setup: func(e *emailSetup) { e.extra = nil },
		want: map[string]Status{CheckSPFLookups: Fail}, reason: map[string]string{CheckSPFLookups: "include:_spf.brokeninclude.example"}},
	{domain: "dmarcnone.example", setup: func(e *emailSetup) { e.dmarc = []string{"v=DMARC1; p=none; adkim=s"} },
		want: map[string]Status{CheckDMARC: Fail}, reason: map[string]string{CheckDMARC: "p=none"}},
	{domain: "quarantine.example", setup: func(e *emailSetup) { e.dmarc = []string{"v=DMARC1; p=quarantine"} },
		want: map[string]Status{CheckDMARC: Warn, CheckDMARCAlignment: Warn}, reason: map[string]string{CheckDMARCAlignment: "adkim=r"}},
	{domain: "pct.example", setup: func(e *emailSetup) { e.dmarc = []string{"v=DMARC1; p=reject; pct=50; adkim=s"} },
		want: map[string]Status{CheckDMARC: Warn}, reason: map[string]string{CheckDMARC: "pct=50"}},
	{domain: "nodmarc.example", setup: func(e *emailSetup) { e.dmarc = nil },
		want: map[string]Status{CheckDMARC: Fail}, absent: []string{CheckDMARCAlignment}},
	{domain: "ststesting.example", setup: func(e *emailSetup) { e.policy = strings.Replace(e.policy, "enforce", "testing", 1) },
		want: map[string]Status{CheckMTASTSPolicy: Warn}, reason: map[string]string{CheckMTASTSPolicy: "testing"}},
	{domain: "stsnone.example", setup: func(e *emailSetup) { e.policy = "version: STSv1\nmode: none\nmax_age: 86400\n" },
		want: map[string]Status{CheckMTASTSPolicy: Fail}, absent: []string{CheckMTASTSMX}},
	{domain: "nosts.example", setup: func(e *emailSetup) { e.sts = nil },
		want: map[string]Status{CheckMTASTSRecord: Fail}, absent: []string{CheckMTASTSPolicy, CheckMTASTSMX}},
	{domain: "nopolicy.example", setup: func(e *emailSetup) { e.policy = "" },
		want: map[string]Status{CheckMTASTSPolicy: Fail}, reason: map[string]string{CheckMTASTSPolicy: "HTTP 404"}},
	{domain: "uncovered.example", setup: func(e *emailSetup) { e.mx = append(e.mx, "mx9.elsewhere.example") },
		want: map[string]Status{CheckMTASTSMX: Fail}, reason: map[string]string{CheckMTASTSMX: "mx9.elsewhere.example"}},
	{domain: "notlsrpt.example", setup: func(e *emailSetup) { e.tlsrpt = nil },
		want: map[string]Status{CheckTLSRPT: Fail}, reason: map[string]string{CheckTLSRPT: "no v=TLSRPTv1"}},
	{domain: "badtlsrpt.example", setup: func(e *emailSetup) { e.tlsrpt = []string{"v=TLSRPTv1; rua=ftp://x.example"} },
		want: map[string]Status{CheckTLSRPT: Fail}, reason: map[string]string{CheckTLSRPT: "mailto: or https:"}},
	{domain: "weakdkim.example", setup: func(e *emailSetup) { e.dkim["sel"] = testKey("dkim-rsa1024.txt") },
		want: map[string]Status{CheckDKIM: Fail}, reason: map[string]string{CheckDKIM: "1024 bits"}},
	{domain: "nodkim.example", setup: func(e *emailSetup) { e.dkim = nil },
		want: map[string]Status{CheckDKIM: Fail}, reason: map[string]string{CheckDKIM: "no key record at sel._domainkey.nodkim.example"}},
	{domain: "revoked.example", setup: func(e *emailSetup) { e.dkim["sel"] = "v=DKIM1; p=" },
		want: map[string]Status{CheckDKIM: Fail}, reason: map[string]string{CheckDKIM: "revoked"}},
	{domain: "servfail.example", setup: func(e *emailSetup) {
		e.spf = nil
		e.extra = func(z *dnstest.Zone, d string) { z.SetFault(d, dnstest.ServFail) }
	}, want: map[string]Status{CheckSPF: Error}, reason: map[string]string{CheckSPF: "SERVFAIL"}},
	{domain: "dmarcservfail.example", setup: func(e *emailSetup) {
		e.dmarc = nil
		e.extra = func(z *dnstest.Zone, d string) {
			z.TXT("_spf."+d, "v=spf1 -all")
			z.SetFault("_dmarc."+d, dnstest.ServFail)
		}
	}, want: map[string]Status{CheckDMARC: Error}},
}

type nonEmailCase struct {
	domain string
	extra  func(z *dnstest.Zone, d string)
	plain  bool // publish nothing by default
	want   map[string]Status
	reason map[string]string
}

var nonEmailCases = []nonEmailCase{
	{domain: "parked.example"},
	{domain: "nullmx.example", extra: func(z *dnstest.Zone, d string) { z.MX(d, 0, ".") },
		reason: map[string]string{CheckMX: "null MX"}},
	{domain: "parkedmx.example", extra: func(z *dnstest.Zone, d string) { z.MX(d, 10, "mx."+d) },
		want: map[string]Status{CheckMX: Fail}, reason: map[string]string{CheckMX: "mx.parkedmx.example"}},
	{domain: "mixednullmx.example", extra: func(z *dnstest.Zone, d string) { z.MX(d, 0, ".").MX(d, 10, "mx."+d) },
		want: map[string]Status{CheckMX: Fail}, reason: map[string]string{CheckMX: "RFC 7505"}},
	{domain: "parkedspf.example", plain: true, extra: func(z *dnstest.Zone, d string) {
		z.TXT(d, "v=spf1 ip4:192.0.2.1 -all")
		z.TXT("*._domainkey."+d, "v=DKIM1; p=")
		z.TXT("_dmarc."+d, "v=DMARC1; p=reject; adkim=s; aspf=s")
	}, want: map[string]Status{CheckSPF: Fail}, reason: map[string]string{CheckSPF: `exactly "v=spf1 -all"`}},
	{domain: "parkedkey.example", plain: true, extra: func(z *dnstest.Zone, d string) {
		z.TXT(d, "v=spf1 -all")
		z.TXT("*._domainkey."+d, testKey("dkim-ed25519.txt"))
		z.TXT("_dmarc."+d, "v=DMARC1; p=reject; adkim=s; aspf=s")
	}, want: map[string]Status{CheckDKIM: Fail}, reason: map[string]string{CheckDKIM: "publishes a key"}},
	{domain: "nothing.example", plain: true,
		want: map[string]Status{CheckSPF: Fail, CheckDKIM: Fail, CheckDMARC: Fail}},
	{domain: "relaxed.example", plain: true, extra: func(z *dnstest.Zone, d string) {
		z.TXT(d, "v=spf1 -all")
		z.TXT("*._domainkey."+d, "v=DKIM1; p=")
		z.TXT("_dmarc."+d, "v=DMARC1; p=quarantine")
	}, want: map[string]Status{CheckDMARC: Fail, CheckDMARCAlignment: Warn}, reason: map[string]string{CheckDMARCAlignment: "adkim=r, aspf=r"}},
	// No record of its own: the organisational domain's sp=reject
	// applies, but section 9 wants one per domain.
	{domain: "sub.good.example", plain: true, extra: func(z *dnstest.Zone, d string) {
		z.TXT(d, "v=spf1 -all")
		z.TXT("*._domainkey."+d, "v=DKIM1; p=")
	}, want: map[string]Status{CheckDMARC: Warn}, reason: map[string]string{CheckDMARC: "organisational domain"}},
	{domain: "servfailmx.example", extra: func(z *dnstest.Zone, d string) { z.SetFault(d, dnstest.ServFail) },
		want: map[string]Status{CheckMX: Error}},
}

// buildWorld publishes every case in one zone and one HTTPS server.
func buildWorld(t *testing.T) (*dnstest.Zone, *stsServer) {
	var domains []string
	for _, c := range emailCases {
		domains = append(domains, c.domain)
	}
	sts := newSTSServer(t, domains...)
	z := dnstest.NewZone()
	for _, c := range emailCases {
		e := compliant(c.domain)
		if c.setup != nil {
			c.setup(&e)
		}
		e.publish(z, sts, c.domain)
	}
	z.TXT("ed._domainkey.good.example", testKey("dkim-ed25519.txt"))
	for _, c := range nonEmailCases {
		if !c.plain {
			publishNonEmail(z, c.domain)
		}
		if c.extra != nil {
			c.extra(z, c.domain)
		}
	}
	return z, sts
}

func checkDomain(t *testing.T, r DomainReport, want map[string]Status, reason map[string]string, absent []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range r.Checks {
		seen[c.Check] = true
		w, ok := want[c.Check]
		if !ok {
			w = Pass
		}
		if c.Status != w {
			t.Errorf("%s: %s = %s (%s), want %s", r.Domain, c.Check, c.Status, c.Reason, w)
		}
		if sub, ok := reason[c.Check]; ok && !strings.Contains(c.Reason, sub) {
			t.Errorf("%s: %s reason %q, want it to contain %q", r.Domain, c.Check, c.Reason, sub)
		}
		if c.Section == "" || c.Reason == "" {
			t.Errorf("%s: %s has an empty section or reason: %+v", r.Domain, c.Check, c)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: no %s check reported: %+v", r.Domain, name, r.Checks)
		}
	}
	for name := range reason {
		if !seen[name] {
			t.Errorf("%s: no %s check reported: %+v", r.Domain, name, r.Checks)
		}
	}
	for _, name := range absent {
		if seen[name] {
			t.Errorf("%s: %s reported though its prerequisite failed", r.Domain, name)
		}
	}
}

func TestEmailDomains(t *testing.T) {
	z, sts := buildWorld(t)
	a := &Auditor{Resolver: z, HTTP: sts.client, Selectors: []string{"sel"},
		DomainSelectors: map[string][]string{"good.example": {"ed", "SEL"}}}
	for _, c := range emailCases {
		t.Run(c.domain, func(t *testing.T) {
			r := a.Email(context.Background(), c.domain)
			if r.Domain != c.domain || r.Kind != KindEmail {
				t.Errorf("report of %s/%s", r.Domain, r.Kind)
			}
			checkDomain(t, r, c.want, c.reason, c.absent)
		})
	}
	// The compliant domain reports every check, in order; "SEL" and
	// "sel" are one selector.
	r := a.Email(context.Background(), "good.example")
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Check)
	}
	wantNames := []string{CheckSPF, CheckSPFLookups, CheckDMARC, CheckDMARCAlignment, CheckMTASTSRecord, CheckMTASTSPolicy, CheckMTASTSMX, CheckTLSRPT, CheckDKIM, CheckDKIM}
	if !slices.Equal(names, wantNames) {
		t.Errorf("good.example checks %v, want %v", names, wantNames)
	}
	if last := r.Checks[len(r.Checks)-1].Reason; !strings.Contains(last, "ed._domainkey.good.example: Ed25519") {
		t.Errorf("Ed25519 selector: %q", last)
	}
	if dk := r.Checks[len(r.Checks)-2].Reason; !strings.Contains(dk, "sel._domainkey.good.example: RSA key, 2048 bits") {
		t.Errorf("RSA selector: %q", dk)
	}
}

func TestNonEmailDomains(t *testing.T) {
	z, sts := buildWorld(t)
	a := &Auditor{Resolver: z, HTTP: sts.client}
	for _, c := range nonEmailCases {
		t.Run(c.domain, func(t *testing.T) {
			r := a.NonEmail(context.Background(), c.domain)
			if r.Domain != c.domain || r.Kind != KindNonEmail {
				t.Errorf("report of %s/%s", r.Domain, r.Kind)
			}
			checkDomain(t, r, c.want, c.reason, nil)
		})
	}
}

func TestNoSelector(t *testing.T) {
	z, sts := buildWorld(t)
	a := &Auditor{Resolver: z, HTTP: sts.client}
	r := a.Email(context.Background(), "good.example")
	checkDomain(t, r, map[string]Status{CheckDKIM: Warn}, map[string]string{CheckDKIM: "no selector given"}, nil)
}

func TestAuditSummary(t *testing.T) {
	z, sts := buildWorld(t)
	a := &Auditor{Resolver: z, HTTP: sts.client, Selectors: []string{"sel"}, Parallel: 3}
	rep := a.Audit(context.Background(), []string{"good.example", "quarantine.example"}, []string{"parked.example"})
	if len(rep.Domains) != 3 || rep.Domains[0].Domain != "good.example" || rep.Domains[1].Domain != "quarantine.example" ||
		rep.Domains[2].Domain != "parked.example" || rep.Domains[2].Kind != KindNonEmail {
		t.Fatalf("domains out of order: %+v", rep.Domains)
	}
	if rep.Summary != (Summary{Pass: 21, Warn: 2}) || !rep.OK() || rep.ExitCode() != 0 {
		t.Errorf("summary %+v ok=%v", rep.Summary, rep.OK())
	}
	rep = a.Audit(context.Background(), []string{"good.example", "servfail.example", "softfail.example"}, nil)
	if rep.Summary.Error != 1 || rep.Summary.Fail != 1 || rep.OK() || rep.ExitCode() != 1 {
		t.Errorf("summary %+v", rep.Summary)
	}
}

func TestParseDKIMKey(t *testing.T) {
	for _, c := range []struct {
		txt     string
		syntax  bool   // parse error expected
		unusual string // substring of dkimKey.err, "" for none
		revoked bool
		testing bool
		bits    int
	}{
		{txt: testKey("dkim-rsa2048.txt"), bits: 2048},
		{txt: testKey("dkim-rsa1024.txt"), bits: 1024, unusual: "1024 bits"},
		{txt: "v=DKIM1; p=", revoked: true},
		{txt: "v=DKIM1; t=y:s; p=", revoked: true, testing: true},
		{txt: "k=rsa; v=DKIM1; p=", syntax: true},
		{txt: "v=DKIM2; p=", syntax: true},
		{txt: "v=DKIM1; k=rsa", syntax: true},
		{txt: "v=DKIM1; p=; p=", syntax: true},
		{txt: "v=DKIM1; garbage", syntax: true},
		{txt: "v=DKIM1; k=dsa; p=AAAA", unusual: "unknown key type"},
		{txt: "v=DKIM1; p=!!!", unusual: "not base64"},
		{txt: "v=DKIM1; p=AAAA", unusual: "not an RSA public key"},
		{txt: "v=DKIM1; k=ed25519; p=AAAA", unusual: "3 bytes"},
		{txt: "v=DKIM1; s=other; p=AAAA", unusual: "not for email"},
		{txt: "v=DKIM1; h=sha1; p=AAAA", unusual: "sha1"},
		{txt: strings.Replace(testKey("dkim-rsa2048.txt"), "p=MII", "p= MII", 1), bits: 2048},
	} {
		k, err := parseDKIMKey(c.txt)
		if c.syntax {
			if err == nil {
				t.Errorf("%q: no syntax error", c.txt)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.txt, err)
			continue
		}
		if k.revoked != c.revoked || k.testing != c.testing || k.bits != c.bits {
			t.Errorf("%q: %+v", c.txt, k)
		}
		if (k.err == nil) != (c.unusual == "") || k.err != nil && !strings.Contains(k.err.Error(), c.unusual) {
			t.Errorf("%q: err %v, want %q", c.txt, k.err, c.unusual)
		}
	}
}

func TestParseTLSRPT(t *testing.T) {
	for txt, want := range map[string]string{
		"v=TLSRPTv1; rua=mailto:a@example.com":                      "mailto:a@example.com",
		"v=TLSRPTv1;rua=mailto:a@example.com, https://r.example/x;": "mailto:a@example.com,https://r.example/x",
		"v=TLSRPTv1; rua=mailto:a@example.com; ext=1":               "mailto:a@example.com",
		"v=TLSRPTv1":                           "error",
		"v=TLSRPTv1; rua=":                     "error",
		"rua=mailto:a@example.com; v=TLSRPTv1": "error",
		"v=TLSRPTv1; rua=http://r.example/":    "error",
		"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com": "error",
	} {
		rua, err := parseTLSRPT(txt)
		got := strings.Join(rua, ",")
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%q: %q (%v), want %q", txt, got, err, want)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	for in, want := range map[string]string{"Agency.GOVT.nz.": "agency.govt.nz", " x.example ": "x.example",
		"": "", "a..b": "", ".a": "", "a b.example": "", "bücher.example": "", strings.Repeat("a", 64) + ".nz": ""} {
		got, err := NormalizeDomain(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
