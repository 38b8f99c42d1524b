package checks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
	"github.com/nzsecure-milter/nzsecure-milter/auth/spf"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Addresses of the test zone: goodIP is the one sender.example and its
// friends authorise, badIP is nobody's.
const (
	goodIP = "192.0.2.10"
	badIP  = "198.51.100.7"
)

// testRunner serves the zone on loopback (auth/dnstest) and makes the
// runner exactly as serve does, through NewRunner on the policy's
// dns.servers: the results below went through a real DNS exchange.
func testRunner(t testing.TB, z *dnstest.Zone) *Runner {
	t.Helper()
	addr := dnstest.MustStart(t, z)
	p, err := policy.Parse("checks-test", nil, []string{`dns.servers=["` + addr + `"]`})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := NewRunner(p, "mx.agency.govt.nz")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func baseZone() *dnstest.Zone {
	return dnstest.NewZone().
		// SPF and, for Sender ID, spf2.0 for both scopes.
		TXT("sender.example", "v=spf1 ip4:"+goodIP+" -all").
		TXT("sender.example", "spf2.0/mfrom,pra ip4:"+goodIP+" -all").
		// HELO identity of the null-sender case (RFC 7208 section 2.3).
		TXT("helo.example", "v=spf1 ip4:"+goodIP+" ~all").
		// Only a PRA-scope Sender ID record: at the mfrom scope it is
		// another scope's record (M-SEC, OtherScopeRecord).
		TXT("praonly.example", "spf2.0/pra ip4:"+goodIP+" -all").
		// The Sender: domain of the PRA test: fails for goodIP.
		TXT("other.example", "spf2.0/pra ip4:"+badIP+" -all").
		TXT("_dmarc.sender.example", "v=DMARC1; p=reject")
}

func conn(ip, helo string) policy.Conn {
	c := policy.Conn{HELO: helo}
	if ip != "" {
		c.ClientIP = netip.MustParseAddr(ip)
	}
	return c
}

var allWanted = policy.Wants{SPF: true, SenderIDMF: true, SenderIDPRA: true, DKIM: true, DMARC: true}

// wantCheck compares the fields the engine decides on; nil want means the
// check must not have run.
func wantCheck(t *testing.T, what string, got, want *policy.AuthCheck) {
	t.Helper()
	switch {
	case want == nil && got == nil:
		return
	case want == nil:
		t.Errorf("%s: ran (%+v), want not run", what, *got)
		return
	case got == nil:
		t.Errorf("%s: not run, want %+v", what, *want)
		return
	}
	g := *got
	// Detail texts come from the evaluator; only say whether one is there
	// unless the test names it.
	if want.Detail == "*" {
		if g.Detail == "" {
			t.Errorf("%s: no detail, want one", what)
		}
		g.Detail = "*"
	}
	// Whether the evaluation may stand for Sender ID is TestSenderIDReuse's.
	g.SenderIDSame = want.SenderIDSame
	if g != *want {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, *want)
	}
}

func TestRunnerMail(t *testing.T) {
	r := testRunner(t, baseZone())
	for _, c := range []struct {
		name             string
		wants            policy.Wants
		conn             policy.Conn
		from             string
		spf, helo, sidMF *policy.AuthCheck
	}{
		{
			name: "mail from passes", wants: allWanted, conn: conn(goodIP, "mx.sender.example"), from: "a@sender.example",
			spf:   &policy.AuthCheck{Result: policy.ResultPass, Scope: ScopeMailFrom, Identity: "a@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-"},
			sidMF: &policy.AuthCheck{Result: policy.ResultPass, Scope: ScopeSenderIDMF, Identity: "a@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-"},
		},
		{
			name: "mail from fails", wants: allWanted, conn: conn(badIP, "mx.sender.example"), from: "a@sender.example",
			spf:   &policy.AuthCheck{Result: policy.ResultFail, Scope: ScopeMailFrom, Identity: "a@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-"},
			sidMF: &policy.AuthCheck{Result: policy.ResultFail, Scope: ScopeSenderIDMF, Identity: "a@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-"},
		},
		{
			// RFC 7208 section 2.3: the null sender is checked by HELO,
			// and the result goes to SPFHelo, not SPF; Sender ID's mfrom
			// scope does not run for it.
			name: "null sender: HELO", wants: allWanted, conn: conn(badIP, "helo.example"), from: "",
			helo: &policy.AuthCheck{Result: policy.ResultSoftFail, Scope: ScopeHELO, Identity: "postmaster@helo.example", Domain: "helo.example", RecordFound: true, AllQualifier: "~"},
		},
		{
			name: "unknown client IP", wants: allWanted, conn: conn("", "mx.sender.example"), from: "a@sender.example",
			spf:   &policy.AuthCheck{Result: policy.ResultNone, Scope: ScopeMailFrom, Identity: "a@sender.example", Detail: "the client IP address is unknown"},
			sidMF: &policy.AuthCheck{Result: policy.ResultNone, Scope: ScopeSenderIDMF, Identity: "a@sender.example", Detail: "the client IP address is unknown"},
		},
		{
			// M-SEC: an spf2.0/pra record is still the domain's Sender ID
			// record when the mfrom scope finds none of its own.
			name: "other scope record", wants: policy.Wants{SenderIDMF: true}, conn: conn(goodIP, "mx.praonly.example"), from: "a@praonly.example",
			sidMF: &policy.AuthCheck{Result: policy.ResultNone, Scope: ScopeSenderIDMF, Identity: "a@praonly.example", Domain: "praonly.example", OtherScopeRecord: true},
		},
		{
			name: "no record", wants: policy.Wants{SPF: true}, conn: conn(goodIP, "mx.nowhere.example"), from: "a@nowhere.example",
			spf: &policy.AuthCheck{Result: policy.ResultNone, Scope: ScopeMailFrom, Identity: "a@nowhere.example", Domain: "nowhere.example"},
		},
		{name: "nothing wanted", wants: policy.Wants{DKIM: true, DMARC: true}, conn: conn(goodIP, "x"), from: "a@sender.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mc := r.Mail(context.Background(), c.wants, c.conn, policy.Envelope{From: c.from})
			wantCheck(t, "SPF", mc.SPF, c.spf)
			wantCheck(t, "SPFHelo", mc.SPFHelo, c.helo)
			wantCheck(t, "SenderIDMF", mc.SenderIDMF, c.sidMF)
		})
	}
}

func TestRunnerHeaders(t *testing.T) {
	r := testRunner(t, baseZone())
	for _, c := range []struct {
		name  string
		wants policy.Wants
		conn  policy.Conn
		hs    []policy.Header
		want  *policy.AuthCheck
	}{
		{
			name: "PRA from From", wants: allWanted, conn: conn(goodIP, "x"),
			hs:   []policy.Header{{Name: "From", Value: " A <a@sender.example>"}},
			want: &policy.AuthCheck{Result: policy.ResultPass, Scope: ScopePRA, Identity: "a@sender.example", Domain: "sender.example", RecordFound: true, AllQualifier: "-", Field: "from"},
		},
		{
			// RFC 4407 section 2: Sender comes before From.
			name: "PRA from Sender", wants: policy.Wants{SenderIDPRA: true}, conn: conn(goodIP, "x"),
			hs:   []policy.Header{{Name: "From", Value: " a@sender.example"}, {Name: "SENDER", Value: " s@other.example"}},
			want: &policy.AuthCheck{Result: policy.ResultFail, Scope: ScopePRA, Identity: "s@other.example", Domain: "other.example", RecordFound: true, AllQualifier: "-", Field: "sender"},
		},
		{
			name: "unknown client IP", wants: allWanted, conn: conn("", "x"),
			hs:   []policy.Header{{Name: "From", Value: " a@sender.example"}},
			want: &policy.AuthCheck{Result: policy.ResultNone, Scope: ScopePRA, Detail: "the client IP address is unknown"},
		},
		{
			// No PRA at all: RFC 4407 section 2 makes that a permerror.
			name: "no PRA", wants: allWanted, conn: conn(goodIP, "x"),
			hs:   []policy.Header{{Name: "Subject", Value: " hi"}},
			want: &policy.AuthCheck{Result: policy.ResultPermError, Scope: ScopePRA, Detail: "*"},
		},
		{
			name: "not wanted", wants: policy.Wants{SPF: true, SenderIDMF: true}, conn: conn(goodIP, "x"),
			hs: []policy.Header{{Name: "From", Value: " a@sender.example"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			hc := r.Headers(context.Background(), c.wants, c.conn, policy.Envelope{From: "a@sender.example"}, policy.MailChecks{}, c.hs)
			wantCheck(t, "SenderIDPRA", hc.SenderIDPRA, c.want)
		})
	}
}

// signedMessage returns a message From: a@sender.example signed by
// sender.example (selector s1) with key, CRLF line ends, and its headers.
func signedMessage(t *testing.T, key dkim.Key, body string) ([]byte, []policy.Header) {
	t.Helper()
	head := "From: A <a@sender.example>\r\nTo: b@agency.govt.nz\r\nSubject: checks\r\nDate: Tue, 1 Dec 2026 10:00:00 +1300\r\n"
	msg := head + "\r\n" + body
	sigs, err := dkim.Sign(strings.NewReader(msg), "sender.example", []dkim.Key{key}, dkim.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Fatalf("Sign: %d signatures, want 1", len(sigs))
	}
	signed := "DKIM-Signature: " + sigs[0] + "\r\n" + msg
	hs := []policy.Header{{Name: "DKIM-Signature", Value: " " + sigs[0]}, {Name: "From", Value: " A <a@sender.example>"},
		{Name: "To", Value: " b@agency.govt.nz"}, {Name: "Subject", Value: " checks"}}
	return []byte(signed), hs
}

// errReader fails at its end: the verifier cannot read the message. (An
// unsigned message's body is never read: the header says there is nothing
// to verify, so the failure has to come in the header.)
type errReader struct{ r io.Reader }

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, errors.New("spool read failed")
	}
	return n, err
}

func TestRunnerMessage(t *testing.T) {
	priv, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dkim.KeyRecord(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	r := testRunner(t, baseZone().TXT("s1._domainkey.sender.example", rec))
	key := dkim.Key{Selector: "s1", Signer: priv}
	signed, hs := signedMessage(t, key, "hello\r\n")
	tampered := bytes.Replace(signed, []byte("hello"), []byte("HELLO"), 1)
	unsigned := []byte("From: a@sender.example\r\nSubject: x\r\n\r\nhello\r\n")
	unsignedHs := []policy.Header{{Name: "From", Value: " a@sender.example"}, {Name: "Subject", Value: " x"}}
	spfPass := policy.MailChecks{SPF: &policy.AuthCheck{Result: policy.ResultPass, Scope: ScopeMailFrom, Domain: "sender.example"}}
	heloPass := policy.MailChecks{SPFHelo: &policy.AuthCheck{Result: policy.ResultPass, Scope: ScopeHELO, Domain: "sender.example"}}

	type dkimWant struct {
		result                policy.CheckResult
		domain, selector, alg string
	}
	for _, c := range []struct {
		name  string
		wants policy.Wants
		msg   io.Reader
		hs    []policy.Header
		mc    policy.MailChecks
		dkim  []dkimWant
		dmarc *policy.DMARCCheck // Reason not compared
	}{
		{
			name: "signed, DKIM aligned", wants: allWanted, msg: bytes.NewReader(signed), hs: hs,
			dkim:  []dkimWant{{policy.ResultPass, "sender.example", "s1", "ed25519-sha256"}},
			dmarc: &policy.DMARCCheck{Result: "pass", Disposition: "none", Published: "reject", FromDomain: "sender.example", DKIMAligned: true},
		},
		{
			name: "body changed after signing", wants: allWanted, msg: bytes.NewReader(tampered), hs: hs,
			dkim:  []dkimWant{{policy.ResultFail, "sender.example", "s1", "ed25519-sha256"}},
			dmarc: &policy.DMARCCheck{Result: "fail", Disposition: "reject", Published: "reject", FromDomain: "sender.example"},
		},
		{
			// DMARC takes SPF from MAIL FROM's check (RFC 7489 section 4.2).
			name: "unsigned, SPF aligned", wants: allWanted, msg: bytes.NewReader(unsigned), hs: unsignedHs, mc: spfPass,
			dkim:  []dkimWant{{policy.ResultNone, "", "", ""}},
			dmarc: &policy.DMARCCheck{Result: "pass", Disposition: "none", Published: "reject", FromDomain: "sender.example", SPFAligned: true},
		},
		{
			// ... or HELO's for the null sender.
			name: "unsigned, HELO SPF aligned", wants: allWanted, msg: bytes.NewReader(unsigned), hs: unsignedHs, mc: heloPass,
			dkim:  []dkimWant{{policy.ResultNone, "", "", ""}},
			dmarc: &policy.DMARCCheck{Result: "pass", Disposition: "none", Published: "reject", FromDomain: "sender.example", SPFAligned: true},
		},
		{
			name: "unsigned, SPF not passed", wants: allWanted, msg: bytes.NewReader(unsigned), hs: unsignedHs,
			dkim:  []dkimWant{{policy.ResultNone, "", "", ""}},
			dmarc: &policy.DMARCCheck{Result: "fail", Disposition: "reject", Published: "reject", FromDomain: "sender.example"},
		},
		{
			// No DMARC record: result none, and disposition "none", never "".
			name: "no DMARC record", wants: allWanted, msg: strings.NewReader("From: a@nowhere.example\r\n\r\nx\r\n"),
			hs:    []policy.Header{{Name: "From", Value: " a@nowhere.example"}},
			dkim:  []dkimWant{{policy.ResultNone, "", "", ""}},
			dmarc: &policy.DMARCCheck{Result: "none", Disposition: "none", FromDomain: "nowhere.example"},
		},
		{
			name: "DKIM only", wants: policy.Wants{DKIM: true}, msg: bytes.NewReader(signed), hs: hs,
			dkim: []dkimWant{{policy.ResultPass, "sender.example", "s1", "ed25519-sha256"}},
		},
		{
			// Fail safe: a signed message that cannot be read is a
			// temperror, never "no signature".
			name: "unreadable message", wants: policy.Wants{DKIM: true}, msg: errReader{strings.NewReader("From: a@sender.example\r\nSubj")}, hs: hs,
			dkim: []dkimWant{{policy.ResultTempError, "", "", ""}},
		},
		{
			// The header fields (all of them, from the MTA) carry no
			// DKIM-Signature: there is none to verify, and the message is
			// not read again for one (issue 13 point 7).
			name: "no signature field, message not read", wants: policy.Wants{DKIM: true}, msg: errReader{strings.NewReader("")}, hs: unsignedHs,
			dkim: []dkimWant{{policy.ResultNone, "", "", ""}},
		},
		{name: "nothing wanted", wants: policy.Wants{SPF: true, SenderIDPRA: true}, msg: bytes.NewReader(signed), hs: hs},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out := r.Message(ctx, c.wants, conn(goodIP, "x"), policy.Envelope{From: "a@sender.example"}, c.hs, c.mc, c.msg)
			if len(out.DKIM) != len(c.dkim) {
				t.Fatalf("DKIM: %d results %+v, want %d", len(out.DKIM), out.DKIM, len(c.dkim))
			}
			for i, w := range c.dkim {
				g := out.DKIM[i]
				if g.Result != w.result || g.Domain != w.domain || g.Selector != w.selector || g.Algorithm != w.alg {
					t.Errorf("DKIM[%d] = %+v, want %+v", i, g, w)
				}
				if w.domain != "" && !strings.Contains(string(signed), "b="+g.HeaderB) {
					t.Errorf("DKIM[%d].HeaderB %q is not the start of the signature's b=", i, g.HeaderB)
				}
				if w.result == policy.ResultTempError && !strings.Contains(g.Detail, "spool read failed") {
					t.Errorf("DKIM[%d].Detail = %q, want the read error", i, g.Detail)
				}
			}
			if c.dmarc == nil {
				if out.DMARC != nil {
					t.Errorf("DMARC = %+v, want not evaluated", *out.DMARC)
				}
				return
			}
			if out.DMARC == nil {
				t.Fatalf("DMARC not evaluated, want %+v", *c.dmarc)
			}
			g := *out.DMARC
			g.Reason = ""
			if g != *c.dmarc {
				t.Errorf("DMARC:\n got %+v\nwant %+v", g, *c.dmarc)
			}
		})
	}
}

// hasDKIMSignature finds the field however the sender spelt its name, as
// auth/dkim does: a signature it missed would go unverified.
func TestHasDKIMSignature(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  bool
	}{
		{[]string{"From", "DKIM-Signature"}, true},
		{[]string{"dkim-signature"}, true},
		{[]string{"DKIM-SIGNATURE "}, true},
		{[]string{"From", "X-DKIM-Signature", "DKIM-Signature-X"}, false},
		{nil, false},
	} {
		var hs []policy.Header
		for _, n := range c.names {
			hs = append(hs, policy.Header{Name: n, Value: "v=1"})
		}
		if got := hasDKIMSignature(hs); got != c.want {
			t.Errorf("%q: %v, want %v", c.names, got, c.want)
		}
	}
}

// countingResolver counts the TXT lookups the evaluator makes.
type countingResolver struct {
	spf.Resolver
	txt int
}

func (c *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.txt++
	return c.Resolver.LookupTXT(ctx, name)
}

// TestSenderIDReuse: Sender ID of the MAIL FROM address, and of a PRA that
// is the MAIL FROM address, is SPF's evaluation itself when no record on
// SPF's way was an spf2.0 one (issue 13 point 7), and is evaluated afresh
// whenever one was: at the sender's domain or behind an include, where
// Sender ID selects another record and can reach another result.
func TestSenderIDReuse(t *testing.T) {
	z := dnstest.NewZone().
		TXT("v1only.example", "v=spf1 ip4:"+goodIP+" -all").
		TXT("v1only.example", "unrelated text").
		// SPF passes through the include's +all; Sender ID reads the
		// include's spf2.0/pra record there, which fails: pass for SPF,
		// fail for the PRA and (no mfrom record, so v=spf1 would not be
		// used for it either: the spf2.0 record of another scope leaves
		// the include without a record) permerror for Sender ID mfrom.
		TXT("viainclude.example", "v=spf1 include:inc.example -all").
		TXT("inc.example", "v=spf1 +all").
		TXT("inc.example", "spf2.0/pra -all").
		TXT("both.example", "v=spf1 ip4:"+goodIP+" -all").
		TXT("both.example", "spf2.0/mfrom,pra ip4:"+badIP+" -all")
	r := testRunner(t, z)
	counter := &countingResolver{Resolver: r.SPF.Resolver}
	r.SPF.Resolver = counter
	fresh := &Runner{SPF: r.SPF, LookupTXT: r.LookupTXT}
	c := conn(goodIP, "mail.example")
	ctx := context.Background()
	for _, tc := range []struct {
		domain           string
		reused           bool
		spf, sidMF, sidP policy.CheckResult
	}{
		{"v1only.example", true, policy.ResultPass, policy.ResultPass, policy.ResultPass},
		{"viainclude.example", false, policy.ResultPass, policy.ResultPermError, policy.ResultFail},
		{"both.example", false, policy.ResultPass, policy.ResultFail, policy.ResultFail},
		{"nothing.example", true, policy.ResultNone, policy.ResultNone, policy.ResultNone},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			e := policy.Envelope{From: "a@" + tc.domain}
			hs := []policy.Header{{Name: "From", Value: " A <a@" + tc.domain + ">"}}
			counter.txt = 0
			mc := r.Mail(ctx, allWanted, c, e)
			hc := r.Headers(ctx, allWanted, c, e, mc, hs)
			lookups := counter.txt
			if mc.SPF.Result != tc.spf || mc.SenderIDMF.Result != tc.sidMF || hc.SenderIDPRA.Result != tc.sidP {
				t.Fatalf("spf %s, sender id mfrom %s, pra %s; want %s %s %s", mc.SPF.Result, mc.SenderIDMF.Result, hc.SenderIDPRA.Result, tc.spf, tc.sidMF, tc.sidP)
			}
			if mc.SPF.SenderIDSame != tc.reused {
				t.Errorf("SenderIDSame %v, want %v", mc.SPF.SenderIDSame, tc.reused)
			}
			// Reused or not, the results are those of separate
			// evaluations, field for field.
			alone := fresh.Mail(ctx, policy.Wants{SenderIDMF: true}, c, e)
			wantCheck(t, "SenderIDMF", mc.SenderIDMF, alone.SenderIDMF)
			counter.txt = 0
			pra := fresh.Headers(ctx, allWanted, c, e, policy.MailChecks{}, hs)
			wantCheck(t, "SenderIDPRA", hc.SenderIDPRA, pra.SenderIDPRA)
			if separate := counter.txt; tc.reused && lookups >= 2*separate {
				t.Errorf("%d TXT lookups for the three checks, the PRA alone takes %d: Sender ID was evaluated again", lookups, separate)
			}
		})
	}
	// A PRA other than MAIL FROM is always evaluated.
	e := policy.Envelope{From: "a@v1only.example"}
	mc := r.Mail(ctx, allWanted, c, e)
	hc := r.Headers(ctx, allWanted, c, e, mc, []policy.Header{{Name: "From", Value: " a@both.example"}})
	if hc.SenderIDPRA.Result != policy.ResultFail || hc.SenderIDPRA.Identity != "a@both.example" {
		t.Errorf("PRA of another domain: %+v", *hc.SenderIDPRA)
	}
}
