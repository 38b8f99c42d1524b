package milter

import (
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// R62 with R110 through the milter: [SECRET] to a peer agency in S/MIME
// scope is not quarantined (Postfix would release it unencrypted): the
// whole message is Put in the gateway's hold store, marked as held for
// the administrator, and discarded from the MTA; the held-mail notice
// names `nzsecure-milter held release QUEUEID`.
func TestAdminHoldThroughMilterGoesToStore(t *testing.T) {
	addr, sub, hold := smimeServer(t, nil)
	m := dial(t, addr)
	m.connect("198.51.100.7", "ORIGINATING", "TLSv1.3")
	msg := smimeMessage("bob@agency-b.govt.nz", "colleague@agency-a.govt.nz")
	msg.headers[1] = [2]string{"Subject", " [SECRET] lunch"}
	r := m.send(msg)
	if r.act.Type != gomilter.ActionDiscard {
		t.Fatalf("got %v, want discard (held by the gateway)", r.act)
	}
	for _, md := range r.mods {
		if md.Type == gomilter.ActionQuarantine {
			t.Fatalf("quarantined in the MTA's hold queue")
		}
	}
	hold.mu.Lock()
	held := append([]heldCopy(nil), heldCopies(hold)...)
	hold.mu.Unlock()
	if len(held) != 1 || held[0].admin != policy.HoldClassified || !slices.Equal(held[0].rcpts, []string{"bob@agency-b.govt.nz", "colleague@agency-a.govt.nz"}) {
		t.Fatalf("held %+v", held)
	}
	msgs := sub.wait(t, 1)
	var notice string
	for _, s := range msgs {
		head, body, _ := strings.Cut(s, "\r\n\r\n")
		dec, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
		if strings.Contains(head, "[SECRET] lunch") {
			notice = strings.Join(strings.Fields(string(dec)), " ")
		}
	}
	if !strings.Contains(notice, "nzsecure-milter held release ") || strings.Contains(notice, "postsuper") {
		t.Fatalf("held-mail notice:\n%s", notice)
	}
}

type heldCopy struct {
	admin string
	rcpts []string
}

func heldCopies(h *memHold) []heldCopy {
	var out []heldCopy
	for _, m := range h.held {
		out = append(out, heldCopy{m.AdminHold, m.Envelope.Rcpts})
	}
	return out
}
