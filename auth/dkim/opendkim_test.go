package dkim

// Interoperability with OpenDKIM (Debian packages opendkim and
// opendkim-tools), both ways:
//
//   - our signatures are verified by libopendkim through `opendkim -t`
//     (the filter's test mode), the public keys given by TestPublicKeys
//     (a file of selector._domainkey.domain records: no DNS needed), and
//     by `opendkim-testmsg` against keys published in DNS (a dnstest
//     server; opendkim-testmsg has no key-file option and asks the
//     system resolver, so that test runs it in a private mount namespace
//     whose /etc/resolv.conf points at the test server);
//   - OpenDKIM's signatures (opendkim -t in signing mode with a KeyTable
//     and SigningTable: RSA-SHA256 and Ed25519-SHA256, relaxed and simple)
//     verify with ours. opendkim-testmsg's own signing mode only makes
//     rsa-sha1 signatures, which RFC 8301 section 3.1 forbids verifiers
//     to accept: we check that ours says permerror.
//
// The tests skip when the binaries are missing, unless CI is set (then
// they fail: the CI installs opendkim and opendkim-tools).

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

// opendkimBinary finds an OpenDKIM program (they live in /usr/sbin, which
// a non-root PATH may lack).
func opendkimBinary(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s not found and CI is set: install the Debian packages opendkim and opendkim-tools", name)
	}
	tb.Skipf("%s not found (install the Debian packages opendkim and opendkim-tools)", name)
	return ""
}

// opendkimConf writes an opendkim.conf for test mode; RequireSafeKeys is
// off because test directories live under the world-writable /tmp.
func opendkimConf(tb testing.TB, dir string, lines ...string) string {
	tb.Helper()
	p := filepath.Join(dir, "opendkim.conf")
	text := "Syslog no\nRequireSafeKeys no\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// testPublicKeys writes a TestPublicKeys file for keys under domain.
func testPublicKeys(tb testing.TB, dir, domain string, keys ...Key) string {
	tb.Helper()
	var b strings.Builder
	for _, k := range keys {
		rec, err := KeyRecord(k.Signer.Public())
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "%s._domainkey.%s %s\n", k.Selector, domain, rec)
	}
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// runOpenDKIMTest runs `opendkim -vv -x conf -t msgfile` and returns its
// output (the Authentication-Results it would add, or the signature).
func runOpenDKIMTest(tb testing.TB, bin, conf, dir, msg string) string {
	tb.Helper()
	p := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
		tb.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-vv", "-x", conf, "-t", p)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("opendkim -t: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// OpenDKIM verifies the signatures our signer makes (RSA-SHA256 and
// Ed25519-SHA256 on the same message; relaxed and simple).
func TestOpenDKIMVerifiesOurSignatures(t *testing.T) {
	bin := opendkimBinary(t, "opendkim")
	rsaKey, edKey := testKeys(t)
	dir := t.TempDir()
	conf := opendkimConf(t, dir, "Mode v", "TestPublicKeys "+testPublicKeys(t, dir, "agency.govt.nz", rsaKey, edKey))
	for _, canon := range []string{Relaxed, Simple} {
		for _, size := range []int{0, 10 << 10} {
			msg := testMessage("agency.govt.nz", size)
			values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{rsaKey, edKey},
				SignOptions{HeaderCanonicalization: canon, BodyCanonicalization: canon})
			if err != nil {
				t.Fatal(err)
			}
			out := runOpenDKIMTest(t, bin, conf, dir, prepend(msg, values...))
			for _, k := range []Key{rsaKey, edKey} {
				re := regexp.MustCompile(`dkim=pass [^;]*header\.d=agency\.govt\.nz[^;]*header\.a=` + k.Algorithm() + ` header\.s=` + k.Selector + `\b`)
				if !re.MatchString(out) {
					t.Errorf("%s/%s, %d bytes, %s: OpenDKIM did not pass it:\n%s", canon, canon, size, k.Algorithm(), out)
				}
			}
			// And a tampered copy fails there too.
			out = runOpenDKIMTest(t, bin, conf, dir, strings.Replace(prepend(msg, values...), "quarterly", "annual", 1))
			if strings.Contains(out, "dkim=pass") || !strings.Contains(out, "dkim=fail") {
				t.Errorf("tampered message:\n%s", out)
			}
		}
	}
}

// OpenDKIM's signatures (RSA-SHA256 and Ed25519-SHA256, made with keys
// written by our MarshalPrivateKey, as dkim-keygen writes them) verify
// with ours, and ours agrees with OpenDKIM's own verdict on each.
//
// OpenDKIM 2.11.0~beta2 (Debian bookworm) cannot verify its own
// Ed25519 signatures with simple header canonicalization: the
// DKIM-Signature field it hashes is folded differently from the one it
// adds. There ours agrees with it (fail); everywhere else both pass.
func TestOpenDKIMSignaturesVerify(t *testing.T) {
	bin := opendkimBinary(t, "opendkim")
	rsaKey, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	verifyDir := t.TempDir()
	verifyConf := opendkimConf(t, verifyDir, "Mode v", "TestPublicKeys "+testPublicKeys(t, verifyDir, "agency.govt.nz", rsaKey, edKey))
	for _, canon := range []string{"relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"} {
		msg := testMessage("agency.govt.nz", 4<<10)
		for _, k := range []Key{rsaKey, edKey} {
			dir := t.TempDir()
			keyFile := writeKeyFile(t, dir, k.Selector+".key", k.Signer)
			os.WriteFile(filepath.Join(dir, "keytable"), []byte(fmt.Sprintf("key1 agency.govt.nz:%s:%s\n", k.Selector, keyFile)), 0o600)
			os.WriteFile(filepath.Join(dir, "signingtable"), []byte("*@agency.govt.nz key1\n"), 0o600)
			conf := opendkimConf(t, dir, "Mode s",
				"SignatureAlgorithm "+k.Algorithm(),
				"Canonicalization "+canon,
				"KeyTable "+filepath.Join(dir, "keytable"),
				"SigningTable refile:"+filepath.Join(dir, "signingtable"),
				"OversignHeaders From")
			out := runOpenDKIMTest(t, bin, conf, dir, msg)
			v := extractSignature(out)
			if v == "" {
				t.Fatalf("%s %s: no signature in OpenDKIM's output:\n%s", canon, k.Algorithm(), out)
			}
			signed := prepend(msg, v)
			sigs, err := Verify(context.Background(), strings.NewReader(signed), VerifyOptions{LookupTXT: zone.LookupTXT})
			if err != nil {
				t.Fatal(err)
			}
			if len(sigs) != 1 || sigs[0].Algorithm != k.Algorithm() || sigs[0].Canonicalization != canon {
				t.Fatalf("%s: %+v", canon, sigs)
			}
			s := sigs[0]
			theirs := runOpenDKIMTest(t, bin, verifyConf, verifyDir, signed)
			theyPass := strings.Contains(theirs, "dkim=pass")
			if (s.Result == Pass) != theyPass {
				t.Errorf("%s %s: ours %s (%v), OpenDKIM:\n%s", canon, k.Algorithm(), s.Result, s.Err, theirs)
			}
			knownOpenDKIMBug := k.Algorithm() == "ed25519-sha256" && strings.HasPrefix(canon, "simple/")
			switch {
			case s.Result == Pass:
			case knownOpenDKIMBug && !theyPass:
				t.Logf("%s %s: OpenDKIM fails its own signature too (known OpenDKIM 2.11 issue): ours %s", canon, k.Algorithm(), s.Result)
			default:
				t.Errorf("%s %s: %s %v", canon, k.Algorithm(), s.Result, s.Err)
			}
			if s.Result != Pass {
				continue
			}
			// RFC 6376 section 8.15: OpenDKIM oversigned From as asked.
			if h := strings.Join(s.SignedHeaders, ":"); strings.Count(strings.ToLower(h), "from") != 2 {
				t.Errorf("h=%s", h)
			}
			sigs, _ = Verify(context.Background(), strings.NewReader(strings.Replace(signed, "lazy dog", "lazy cat", 1)), VerifyOptions{LookupTXT: zone.LookupTXT})
			if len(sigs) != 1 || sigs[0].Result != Fail {
				t.Errorf("tampered: %+v", sigs)
			}
		}
	}
}

// extractSignature finds the DKIM-Signature field that `opendkim -vv -t`
// in signing mode prints (### INSHEADER: ... hname='DKIM-Signature'
// hvalue='...') and returns its value, folded with CRLF.
func extractSignature(out string) string {
	const marker = "hname='DKIM-Signature' hvalue='"
	i := strings.Index(out, marker)
	if i < 0 {
		return ""
	}
	v, _, ok := strings.Cut(out[i+len(marker):], "'")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(v, "\n", "\r\n")
}

// opendkim-testmsg signs with rsa-sha1 only; RFC 8301 section 3.1 says
// verifiers must not accept that: ours reports permerror.
func TestOpenDKIMTestmsgSHA1Refused(t *testing.T) {
	bin := opendkimBinary(t, "opendkim-testmsg")
	rsaKey, _ := testKeys(t)
	dir := t.TempDir()
	keyFile := writeKeyFile(t, dir, "k.key", rsaKey.Signer)
	msg := testMessage("agency.govt.nz", 100)
	cmd := exec.Command(bin, "-C", "-d", "agency.govt.nz", "-s", rsaKey.Selector, "-k", keyFile)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("opendkim-testmsg: %v", err)
	}
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey)
	sigs, err := Verify(context.Background(), bytes.NewReader(out), VerifyOptions{LookupTXT: zone.LookupTXT})
	if err != nil || len(sigs) != 1 {
		t.Fatalf("%+v %v\n%s", sigs, err, out)
	}
	if sigs[0].Algorithm != "rsa-sha1" || sigs[0].Result != PermError || !strings.Contains(sigs[0].Reason(), "sha1") {
		t.Fatalf("%+v", sigs[0])
	}
}

// opendkim-testmsg verifies our signatures against keys published in DNS.
// It only asks the system resolver (port 53 of the servers in
// /etc/resolv.conf), so the test serves the zone on 127.0.83.53:53 and
// runs opendkim-testmsg under `unshare -m` with a private /etc/resolv.conf
// bind-mounted over the real one. That needs root (CAP_SYS_ADMIN and port
// 53); without it the test skips: TestOpenDKIMVerifiesOurSignatures covers
// the same library without DNS.
func TestOpenDKIMTestmsgVerifiesThroughDNS(t *testing.T) {
	bin := opendkimBinary(t, "opendkim-testmsg")
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) to give opendkim-testmsg a private resolv.conf")
	}
	rsaKey, edKey := testKeys(t)
	zone := publish(t, dnstest.NewZone(), "agency.govt.nz", rsaKey, edKey)
	const addr = "127.0.83.53:53"
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("cannot serve DNS on %s: %v", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		t.Skipf("cannot serve DNS on %s: %v", addr, err)
	}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: zone}, &dns.Server{Listener: l, Handler: zone}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })

	dir := t.TempDir()
	resolvConf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolvConf, []byte("nameserver 127.0.83.53\noptions timeout:2 attempts:1\n"), 0o644)
	probe := exec.Command(unshare, "-m", "sh", "-c", `mount --bind "$1" /etc/resolv.conf`, "sh", resolvConf)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("no private mount namespace here (%v: %s)", err, out)
	}
	run := func(msg string) (string, error) {
		cmd := exec.Command(unshare, "-m", "sh", "-c", `mount --bind "$1" /etc/resolv.conf && exec "$2"`, "sh", resolvConf, bin)
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, k := range []Key{rsaKey, edKey} {
		msg := testMessage("agency.govt.nz", 2<<10)
		values, err := Sign(strings.NewReader(msg), "agency.govt.nz", []Key{k}, SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if out, err := run(prepend(msg, values...)); err != nil {
			t.Errorf("%s: opendkim-testmsg: %v\n%s", k.Algorithm(), err, out)
		}
		if out, err := run(strings.Replace(prepend(msg, values...), "lazy dog", "lazy cat", 1)); err == nil {
			t.Errorf("%s: opendkim-testmsg accepted a tampered message\n%s", k.Algorithm(), out)
		}
		t.Logf("%s: %v", k.Algorithm(), time.Since(start))
	}
}
