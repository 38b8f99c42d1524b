package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// Issue 12 point 9: check applies limits.max_message_size as serve does
// (over TLS: a plaintext session is refused at MAIL FROM first, as serve
// refuses it, issue 13 point 3).
func TestCheckMaxMessageSize(t *testing.T) {
	dir := t.TempDir()
	msg := "From: a@example.com\nTo: bob@agency.govt.nz\nSubject: big\n\n" + strings.Repeat("0123456789abcdef\n", 400)
	path := filepath.Join(dir, "big.eml")
	if err := os.WriteFile(path, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		limit string
		stage string
		reply string
	}{
		{"4096", "size", "552 5.3.4 Message too big: this gateway accepts at most 4096 bytes"},
		{"1048576", "mail", ""},
	} {
		code, out, errs := runCmd(t, "check", "--set", "limits.max_message_size="+c.limit, "--set", `authserv_id="mx.agency.govt.nz"`,
			"--set", "inbound.spf=off", "--set", "inbound.dkim=off", "--set", "inbound.dmarc=off", "--set", "inbound.senderid=off",
			"--set", "limits.memory_spool=1024", "--client-ip", "203.0.113.9", "--tls-version", "TLSv1.3", path)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if c.reply != "" && (got["stage"] != c.stage || got["reply"] != c.reply || got["action"] != "reject") {
			t.Errorf("limit %s: %v %v %v", c.limit, got["stage"], got["action"], got["reply"])
		}
		if c.reply == "" && got["stage"] == "size" {
			t.Errorf("limit %s: refused as too big", c.limit)
		}
	}
}

// crlfReader turns lone LFs into CRLF across any read boundary.
func TestCRLFReader(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\r\nc\n\n": "a\r\nb\r\nc\r\n\r\n",
		"\r\n\n":        "\r\n\r\n",
		"":              "",
		"no end":        "no end",
	} {
		r := &crlfReader{r: bufioReader(iotest.OneByteReader(strings.NewReader(in)))}
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 16) }
