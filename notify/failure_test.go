package notify

import (
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"
)

// TestSecureDeliveryFailure: Table 2 row 1 with the held code and the
// detail, the R77 fields only, from postmaster (R92), auto-generated; an
// unknown code is refused.
func TestSecureDeliveryFailure(t *testing.T) {
	g := Generator{Domain: "agency.govt.nz", Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }}
	m, err := g.SecureDeliveryFailure(FailureParams{
		Code: "211", To: []string{"alice@agency.govt.nz", "postmaster@agency.govt.nz"},
		Original:   Original{Subject: "budget", From: "alice@agency.govt.nz", To: "bob@peer.govt.nz", Date: "Mon, 30 Nov 2026"},
		Recipients: []string{"bob@peer.govt.nz"}, Held: 90 * time.Minute, Reason: "no valid certificate of our own.",
		Text: TextParams{Detail: "agency.govt.nz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := decodedBody(t, m.Data)
	for _, want := range []string{
		"Subject: SECURE DELIVERY FAILURE [Code: 211]: budget",
		"From: Postmaster <postmaster@agency.govt.nz>",
		"Auto-Submitted: auto-generated",
		"SECURE DELIVERY FAILURE – Your message could not be delivered securely, therefore, it was not sent. [Code: 211, agency.govt.nz]",
		"could not send it securely: no valid certificate of our own.",
		"kept trying for 1 hour and",
		"Not delivered to: bob@peer.govt.nz",
		"Subject: budget",
	} {
		if !strings.Contains(data, want) {
			t.Errorf("lacks %q:\n%s", want, data)
		}
	}
	if m.EnvelopeFrom != "" || len(m.Rcpts) != 2 {
		t.Fatalf("envelope %q %v", m.EnvelopeFrom, m.Rcpts)
	}
	if _, err := g.SecureDeliveryFailure(FailureParams{Code: "999", To: []string{"a@b.example"}}); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("unknown code: %v", err)
	}
	if spell(45*time.Minute) != "45 minutes" || spell(73*time.Hour+5*time.Minute) != "73 hours" || spell(10*time.Second) != "1 minute" {
		t.Fatal("spell")
	}
}

// decodedBody is the message with its quoted-printable body decoded.
func decodedBody(t *testing.T, data []byte) string {
	t.Helper()
	head, body, ok := strings.Cut(string(data), "\r\n\r\n")
	if !ok {
		t.Fatalf("no body: %q", data)
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	return head + "\r\n\r\n" + string(dec)
}
