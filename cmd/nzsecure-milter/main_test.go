package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dnstest"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// testDNS serves the zones the check tests need on a loopback port.
func testDNS(t *testing.T) string {
	z := dnstest.NewZone().
		TXT("example.com", "v=spf1 ip4:203.0.113.9 -all").
		TXT("spoofed.example", "v=spf1 ip4:192.0.2.1 -all").
		TXT("securemail.sender.example", "v=spf1 ip4:203.0.113.9 ~all").
		TXT("securemail.good.example", "v=spf1 ip4:203.0.113.9 -all", "spf2.0/mfrom,pra ip4:203.0.113.9 -all").
		SetFault("broken.example", dnstest.ServFail)
	return dnstest.MustStart(t, z)
}

func TestCheckJSON(t *testing.T) {
	dns := testDNS(t)
	cases := []struct {
		name string
		args []string
		want map[string]any // keys compared; others must still exist
	}{
		{"G-TLS plaintext inbound refused",
			[]string{"check", "--client-ip", "203.0.113.9", "testdata/inbound-forged.eml"},
			map[string]any{"direction": "inbound", "stage": "mail", "action": "reject",
				"reply": "530 5.7.10 Must issue a STARTTLS command first: this gateway accepts mail only over TLS 1.2 or later (NZ SGE policy, G-TLS)"}},
		{"R60 forged tag removed over TLS",
			[]string{"check", "--client-ip", "203.0.113.9", "--tls-version", "TLSv1.3", "--cipher", "TLS_AES_256_GCM_SHA384", "--cipher-bits", "256", "testdata/inbound-forged.eml"},
			map[string]any{"direction": "inbound", "action": "accept", "reply": "", "spf": "pass", "senderid": "pass", // recorded by default (issue 12)
				"headers_removed": []any{"X-NZ-Secure-email: compliant; forged by the sender"},
				"warning_code":    "002", "warning_mode": "wrap", // R76: claims X-NZ-Secure-email, unverified
				"headers_added": []any{"Authentication-Results: mx.agency.govt.nz;\n\tspf=pass smtp.mailfrom=sender@example.com;\n\tsender-id=pass header.from=sender@example.com;\n\tdkim=none;\n\tdmarc=none reason=\"no DMARC record for example.com\" header.from=example.com"}}},
		{"R60 outbound tagged (flags after the file)",
			[]string{"check", "testdata/outbound.eml", "--auth", "alice", "--set", `domains=["agency.govt.nz"]`, "--set", `authserv_id="mx.agency.govt.nz"`},
			map[string]any{"direction": "outbound", "action": "accept", "classification": "UNCLASSIFIED", "warning_code": "",
				"headers_added": []any{`X-NZ-Secure-email: compliant; classification="UNCLASSIFIED"; profile=sge; gateway=mx.agency.govt.nz`}}},
		{"R66 outbound other user refused",
			[]string{"check", "--auth", "bob", "--set", `domains=["agency.govt.nz"]`, "testdata/outbound.eml"},
			map[string]any{"direction": "outbound", "action": "reject",
				"reply": `550 5.7.1 Message refused: From: address <alice@agency.govt.nz> does not match the authenticated sender "bob" (R66)`}},
		{"submission daemon makes it outbound",
			[]string{"check", "--daemon", "ORIGINATING", "--client-ip", "203.0.113.9", "testdata/outbound.eml"},
			map[string]any{"direction": "outbound", "action": "reject"}},
		{"seemail profile accepts plaintext",
			[]string{"check", "--set", "profile=seemail", "--client-ip", "203.0.113.9", "testdata/inbound-forged.eml"},
			map[string]any{"direction": "inbound", "action": "accept", "spf": "pass"}},
		// The default since issue 12; decided at end of message, where an
		// aligned DKIM signature could have passed DMARC.
		{"M-RCV-SPF enforce: spoofed sender refused with 5.7.23",
			[]string{"check", "--client-ip", "203.0.113.9", "--tls-version", "TLSv1.3", "--from", "ceo@spoofed.example", "testdata/inbound-forged.eml"},
			map[string]any{"action": "reject", "spf": "fail", "stage": "eom",
				"reply": "550 5.7.23 SPF check failed for ceo@spoofed.example: the sending host is not authorised to send mail for spoofed.example (M-RCV-SPF)"}},
		{"M-RCV-SPF enforce: SERVFAIL tempfails",
			[]string{"check", "--set", "inbound.spf=enforce", "--client-ip", "203.0.113.9", "--tls-version", "TLSv1.3", "--from", "a@broken.example", "testdata/inbound-forged.eml"},
			map[string]any{"action": "tempfail", "spf": "temperror", "reply": "451 4.4.3 Temporary DNS failure checking SPF for broken.example; please try again later"}},
		{"M-RCV-SM: securemail sender with ~all refused under sge",
			[]string{"check", "--client-ip", "203.0.113.9", "--tls-version", "TLSv1.3", "--cipher", "TLS_AES_256_GCM_SHA384", "--cipher-bits", "256", "--from", "a@securemail.sender.example", "testdata/inbound-forged.eml"},
			map[string]any{"action": "reject", "spf": "pass",
				"reply": `550 5.7.1 Refused by the SecureMail rules (M-SEC): the SPF record of securemail.sender.example does not end in "-all"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCmd(t, append(c.args, "--dns", dns, "--set", `authserv_id="mx.agency.govt.nz"`, "--set", "record_times=false")...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errs)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, out)
			}
			for _, k := range []string{"direction", "action", "reply", "warning_code", "classification", "reasons", "headers_added", "headers_removed"} {
				if _, ok := got[k]; !ok {
					t.Errorf("JSON has no %q", k)
				}
			}
			for k, v := range c.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.eml")
	os.WriteFile(bad, []byte(" continuation first\n"), 0o644)
	badPolicy := filepath.Join(dir, "p.toml")
	os.WriteFile(badPolicy, []byte("profile = \"x\"\n"), 0o644)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"check"}, 2, "usage: nzsecure-milter check"},
		{[]string{"check", "a", "b"}, 2, "usage"},
		{[]string{"check", "--client-ip", "nope", "testdata/outbound.eml"}, 2, `"nope" is not an IP address`},
		{[]string{"check", "--cipher", "X", "testdata/outbound.eml"}, 2, "need --tls-version"},
		{[]string{"check", "--bogus", "testdata/outbound.eml"}, 2, "flag provided but not defined"},
		{[]string{"check", filepath.Join(dir, "missing.eml")}, 1, "no such file"},
		{[]string{"check", bad}, 1, "malformed header"},
		{[]string{"check", "--policy", badPolicy, "testdata/outbound.eml"}, 1, `p.toml:1: profile: must be one of`},
		{[]string{"check", "--set", "nokey", "testdata/outbound.eml"}, 1, "want KEY=VALUE"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{nil, 2, "usage: nzsecure-milter COMMAND"},
	}
	for _, c := range cases {
		code, _, errs := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%q: exit %d stderr %q; want exit %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
}

func TestLintCommand(t *testing.T) {
	code, out, _ := runCmd(t, "lint", "../../policy/testdata/bad/bad-values.toml")
	if code != 1 {
		t.Errorf("exit %d for a broken policy", code)
	}
	if n := strings.Count(out, "\n"); n != 12 || !strings.Contains(out, "bad-values.toml:17: log.level:") || !strings.Contains(out, "11 problem(s)") {
		t.Errorf("want 11 problems and a summary, got %d lines:\n%s", n, out)
	}
	code, out, _ = runCmd(t, "lint", "../../contrib/nzsecure-milter.toml")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "valid: profile sge") || !strings.Contains(out, "domains: warning: no domains configured") {
		t.Errorf("default policy: exit %d\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "lint"); code != 2 {
		t.Errorf("lint without a file: exit %d", code)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := runCmd(t, "version", "--set", "profile=seemail")
	if code != 0 || !strings.HasPrefix(out, "nzsecure-milter "+version) || !strings.Contains(out, "SEEMail") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestServeRefusesBadPolicy(t *testing.T) {
	code, _, errs := runCmd(t, "serve", "--set", "inbound.min_tls=2", "--listen", "inet:127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "inbound.min_tls") || !strings.Contains(errs, "not starting") {
		t.Errorf("exit %d stderr %s", code, errs)
	}
	code, _, errs = runCmd(t, "serve", "--listen", "tcp:nowhere")
	if code != 1 || !strings.Contains(errs, "cannot listen") {
		t.Errorf("bad listen spec: exit %d stderr %s", code, errs)
	}
}

// classify: the words come from the policy ([classification.levels]); the
// JSON names the classification, RSVPDR and each marking with its place.
func TestClassifyCommand(t *testing.T) {
	code, out, errs := runCmd(t, "classify", "testdata/personal.eml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct {
		Classification string `json:"classification"`
		RSVPDR         bool   `json:"rsvpdr"`
		Markings       []struct{ Word, Endorsement, Where string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Classification != "IN-CONFIDENCE" || !res.RSVPDR || len(res.Markings) != 2 || res.Markings[0].Endorsement != "STAFF" || res.Markings[0].Where != "subject" {
		t.Errorf("default words: %+v", res)
	}
	code, out, _ = runCmd(t, "classify", "--set", "classification.levels.PERSONAL=3", "--set", `outbound.by_class.PERSONAL="hold"`, "testdata/personal.eml")
	if code != 0 || !strings.Contains(out, `"classification": "PERSONAL"`) {
		t.Errorf("policy word PERSONAL not used: exit %d\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "classify"); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code, _, _ := runCmd(t, "classify", "testdata/missing.eml"); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}

// version reports the installed policy when it exists and no --policy is
// given (issue 16), else the built-in default.
func TestVersionReadsInstalledPolicy(t *testing.T) {
	saved := installedPolicy
	defer func() { installedPolicy = saved }()
	dir := t.TempDir()
	installedPolicy = filepath.Join(dir, "policy.toml")
	code, out, errs := runCmd(t, "version")
	if code != 0 || !strings.Contains(out, "policy: embedded default") {
		t.Fatalf("without an installed policy: code %d, out %q, err %q", code, out, errs)
	}
	if err := os.WriteFile(installedPolicy, []byte("profile = \"securemail\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, "version")
	if code != 0 || !strings.Contains(out, "policy: "+installedPolicy+" (profile securemail)") {
		t.Fatalf("with an installed policy: code %d, out %q, err %q", code, out, errs)
	}
	code, out, _ = runCmd(t, "version", "--policy", "")
	if code != 0 || !strings.Contains(out, installedPolicy) {
		t.Fatalf("--policy \"\" is the default lookup too: code %d, out %q", code, out)
	}
}

// The manual pages come from the -h text and the default policy's comments
// (issue 16): every command and every flag it prints, every [table] and
// key of contrib/nzsecure-milter.toml appear; man is not in the usage.
func TestManPages(t *testing.T) {
	code, man8, errs := runCmd(t, "man", "8")
	if code != 0 || !strings.HasPrefix(man8, ".TH NZSECURE\\-MILTER 8 ") {
		t.Fatalf("man 8: code %d, err %q, start %.60q", code, errs, man8)
	}
	for _, name := range visibleCommands() {
		if !strings.Contains(man8, "\n.SS "+roff(name)+"\n") {
			t.Errorf("man 8 has no section for %s", name)
		}
	}
	for _, flag := range []string{`.B \-listen SPEC`, `.B \-policy FILE`, `.B \-format socketmap`, "SIGHUP", "LISTEN_FDS"} {
		if !strings.Contains(man8, flag) {
			t.Errorf("man 8 lacks %q", flag)
		}
	}
	_, _, usage := runCmd(t, "help")
	if strings.Contains(usage, " man ") {
		t.Errorf("the hidden man command is listed in the usage:\n%s", usage)
	}
	code, man5, errs := runCmd(t, "man", "5")
	if code != 0 || !strings.HasPrefix(man5, ".TH NZSECURE\\-MILTER.TOML 5 ") {
		t.Fatalf("man 5: code %d, err %q", code, errs)
	}
	for _, want := range []string{`.SS [notify]`, `.SS [tlspolicy]`, `\fBsubmit = "sendmail"\fR`, `\fB# authserv_id = "mx.agency.govt.nz"\fR`, "(R100)."} {
		if !strings.Contains(man5, want) {
			t.Errorf("man 5 lacks %q", want)
		}
	}
	if code, _, _ := runCmd(t, "man", "7"); code != 2 {
		t.Errorf("man 7: code %d, want 2", code)
	}
}
