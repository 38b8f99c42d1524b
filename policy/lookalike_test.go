package policy

import (
	"fmt"
	"strings"
	"testing"
)

// A realistic secure list (issue 17): distinct agencies whose short names
// differ by one or two letters must never be taken for each other.
var lookalikeKnown = []string{
	"agency.govt.nz", "dia.govt.nz", "ird.govt.nz", "mfe.govt.nz", "msd.govt.nz", "moh.govt.nz",
	"health.govt.nz", "justice.govt.nz", "police.govt.nz", "treasury.govt.nz", "dpmc.govt.nz",
	"mbie.govt.nz", "mfat.govt.nz", "gmail.com", "outlook.com", "*.govt.nz", "education.govt.nz",
	"corrections.govt.nz", "conservation.govt.nz",
}

func TestLookalikeNearMisses(t *testing.T) {
	cases := []struct{ rcpt, want, why string }{
		{"agency.gov.nz", "agency.govt.nz", "gov.nz instead of govt.nz"},
		{"AGENCY.GOV.NZ.", "agency.govt.nz", "gov.nz instead of govt.nz"},
		{"agncy.govt.nz", "agency.govt.nz", "a typing error"},          // dropped letter
		{"agnecy.govt.nz", "agency.govt.nz", "a typing error"},         // swapped letters
		{"agenncy.govt.nz", "agency.govt.nz", "a typing error"},        // doubled letter
		{"justise.govt.nz", "justice.govt.nz", "a typing error"},       // changed letter
		{"agen-cy.govt.nz", "agency.govt.nz", "dots or hyphens moved"}, // hyphen added
		{"agency-govt.nz", "agency.govt.nz", "dots or hyphens moved"},
		{"agencygovt.nz", "agency.govt.nz", "dots or hyphens moved"},
		{"\u0430gency.govt.nz", "agency.govt.nz", "confusable characters"},   // Cyrillic а
		{"xn--gency-3ve.govt.nz", "agency.govt.nz", "confusable characters"}, // the same as an A-label
		{"p\u03BFlice.govt.nz", "police.govt.nz", "confusable characters"},   // Greek ο
		{"rnfat.govt.nz", "mfat.govt.nz", "confusable characters"},           // rn/m, short name
		{"g0vt.agency.nz", "agency.govt.nz", "labels in another order"},      // swapped, and 0/o
		{"agency.g0vt.nz", "agency.govt.nz", "confusable characters"},        // 0/o
		{"po1ice.govt.nz", "police.govt.nz", "confusable characters"},        // 1/l
		{"1rd.govt.nz", "ird.govt.nz", "confusable characters"},              // 1/i
		{"gmai1.com", "gmail.com", "confusable characters"},
		{"agency.nz", "agency.govt.nz", "a label dropped"},
		{"agency.govt.co.nz", "agency.govt.nz", "a label added"},
		{"agency.govt.nz.evil.example", "agency.govt.nz", "the domain followed by other labels"},
		{"treasurey.govt.nz", "treasury.govt.nz", "a typing error"},
		{"conservaton.govt.nz", "conservation.govt.nz", "a typing error"},
		{"consrevaton.govt.nz", "conservation.govt.nz", "a typing error"}, // 2 edits, 12 letters
		{"gmial.com", "gmail.com", "a typing error"},
		{"outlok.com", "outlook.com", "a typing error"},
		// Accents and marks, which UTS #46 keeps and a reader skims
		// past, and more letters of other scripts.
		{"ag\u00e9ncy.govt.nz", "agency.govt.nz", "confusable characters"},
		{"\u00edrd.govt.nz", "ird.govt.nz", "confusable characters"},       // short name: only confusables
		{"m\u0304oh.govt.nz", "moh.govt.nz", "confusable characters"},      // a combining macron
		{"\u0585utlook.com", "outlook.com", "confusable characters"},       // Armenian o
		{"\u0251gency.govt.nz", "agency.govt.nz", "confusable characters"}, // Latin alpha
		{"agen\u00e7y.g\u00f6vt.nz", "agency.govt.nz", "confusable characters"},
		// A government name under another top-level domain.
		{"agency.govt.com", "agency.govt.nz", "govt.com instead of govt.nz"},
		{"ird.govt.au", "ird.govt.nz", "govt.au instead of govt.nz"},
		// Swapped labels (issue 17): the known domain's labels in
		// another order.
		{"govt.agency.nz", "agency.govt.nz", "labels in another order"},
		{"nz.govt.agency", "agency.govt.nz", "labels in another order"},
		{"agency.nz.govt", "agency.govt.nz", "labels in another order"},
		// Rule 6: hosts under a lookalike are the lookalike's holder's.
		{"www.agency.gov.nz", "agency.govt.nz", "below agency.gov.nz: gov.nz instead of govt.nz"},
		{"mail.agnecy.govt.nz", "agency.govt.nz", "a typing error"}, // rule 5 reads the registrable label
		{"smtp.mx.agency-govt.nz", "agency.govt.nz", "below agency-govt.nz: dots or hyphens moved"},
		{"a.b.\u0430gency.govt.nz", "agency.govt.nz", "a typing error"},
	}
	for _, c := range cases {
		got, why, ok := Lookalike(c.rcpt, lookalikeKnown)
		if ok != (c.want != "") || got != c.want || why != c.why {
			t.Errorf("Lookalike(%q) = %q, %q, %v; want %q, %q", c.rcpt, got, why, ok, c.want, c.why)
		}
	}
}

// No false positive: the known domains themselves, their subdomains, and
// ordinary correspondents and distinct short-named agencies.
func TestLookalikeDistinct(t *testing.T) {
	var ok []string
	for _, k := range lookalikeKnown {
		if !strings.HasPrefix(k, "*") {
			ok = append(ok, k, "mail."+k, strings.ToUpper(k)+".")
		}
	}
	ok = append(ok,
		"mod.govt.nz", "msc.govt.nz", "ire.govt.nz", "mfa.govt.nz", "doc.govt.nz", "nzta.govt.nz",
		"stats.govt.nz", "mpi.govt.nz", "example.com", "yahoo.com", "hotmail.com", "xtra.co.nz",
		"gmail.co.nz.example", "health.nz.example", "company.co.nz", "govt.nz", "nz", "[192.0.2.1]", "",
		"customs.govt.nz", "linz.govt.nz", "education.com", "police.uk",
		// Hosts under ordinary domains: their parents are compared too
		// (rule 6), and are like nothing.
		"www.company.co.nz", "mail.xtra.co.nz", "a.b.c.example.com", "smtp.mod.govt.nz", "mx1.stats.govt.nz",
		"nz.example", "govt.example", "police.govt.example.com",
		// Real agencies of other countries, and a company name under
		// another country's suffix, are not lookalikes.
		"health.gov.au", "justice.gov.uk", "police.gov.au", "company.co.uk", "gmail.co.uk",
	)
	for _, d := range ok {
		if got, why, hit := Lookalike(d, lookalikeKnown); hit {
			t.Errorf("Lookalike(%q) = %q (%s), want no match", d, got, why)
		}
	}
	// Among the list itself, each compared with all the others.
	for i, d := range lookalikeKnown {
		others := append(append([]string(nil), lookalikeKnown[:i]...), lookalikeKnown[i+1:]...)
		if strings.HasPrefix(d, "*") {
			continue
		}
		if got, why, hit := Lookalike(d, others); hit {
			t.Errorf("known %q looks like known %q (%s)", d, got, why)
		}
	}
}

// A name one edit from two known domains names neither (rule 5).
func TestLookalikeAmbiguous(t *testing.T) {
	if got, _, hit := Lookalike("agenca.govt.nz", []string{"agency.govt.nz", "agenda.govt.nz"}); hit {
		t.Fatalf("ambiguous name matched %q", got)
	}
	if got, _, hit := Lookalike("agenca.govt.nz", []string{"agency.govt.nz"}); !hit || got != "agency.govt.nz" {
		t.Fatalf("got %q %v", got, hit)
	}
	// Our domain and a subdomain of it in the list are one candidate, not
	// a tie (they used to cancel each other out, so that a policy listing
	// mail.agency.govt.nz beside agency.govt.nz caught no typing error).
	for _, known := range [][]string{{"mail.agency.govt.nz", "agency.govt.nz"}, {"agency.govt.nz", "sub.agency.govt.nz", "mfat.govt.nz"}} {
		if got, why, hit := Lookalike("agnecy.govt.nz", known); !hit || got != "agency.govt.nz" || why != "a typing error" {
			t.Errorf("%v: got %q %q %v, want agency.govt.nz, a typing error", known, got, why, hit)
		}
	}
}

func FuzzLookalike(f *testing.F) {
	for _, s := range []string{"agency.gov.nz", "\u0430gency.govt.nz", "agency.govt.nz.evil.example", "", "..", "xn--", "a-.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if len(d) > 300 {
			return
		}
		got, why, ok := Lookalike(d, lookalikeKnown)
		if ok && (got == "" || why == "") {
			t.Fatalf("match without a name or reason: %q %q", got, why)
		}
		if ok {
			if _, _, again := Lookalike(got, lookalikeKnown); again {
				t.Fatalf("intended domain %q is itself a lookalike", got)
			}
		}
	})
}

// Known domains that are themselves public suffixes (govt.nz on a list,
// parliament.nz, health.nz): everything registered under one is not its
// own, so a typing error of an agency below govt.nz is still caught; and
// their own first label is their name (parliment.nz).
func TestLookalikePublicSuffixEntries(t *testing.T) {
	known := []string{"agency.govt.nz", "health.govt.nz", "ird.govt.nz", "govt.nz", "parliament.nz", "health.nz"}
	for _, c := range []struct{ d, want string }{
		{"heath.govt.nz", "health.govt.nz"},
		{"lrd.govt.nz", "ird.govt.nz"},
		{"agnecy.govt.nz", "agency.govt.nz"},
		{"parliment.nz", "parliament.nz"},
		{"heath.nz", "health.nz"},
		// Not lookalikes: the known ones, below a known registrable
		// domain, and registrations under a known suffix of their own.
		{"govt.nz", ""}, {"parliament.nz", ""}, {"sub.agency.govt.nz", ""}, {"x.health.nz", ""}, {"x.parliament.nz", ""}, {"new.govt.nz", ""},
	} {
		got, why, ok := Lookalike(c.d, known)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("Lookalike(%q) = %q (%s) %v, want %q", c.d, got, why, ok, c.want)
		}
	}
}

// Rule 5 on the labels as written too: the skeleton's "rn"->"m" changes a
// label's length, so "parnter" (t and n swapped) was two edits from the
// skeleton "partner" and passed as a distinct domain.
func TestLookalikeTypoNextToConfusable(t *testing.T) {
	known := []string{"partner.govt.nz", "governance.govt.nz"}
	for rcpt, want := range map[string]string{
		"parnter.govt.nz":     "partner.govt.nz",
		"patrner.govt.nz":     "partner.govt.nz",
		"partenr.govt.nz":     "partner.govt.nz",
		"goverannce.govt.nz":  "governance.govt.nz",
		"govrenance.govt.nz":  "governance.govt.nz",
		"governnace.govt.nz":  "governance.govt.nz",
		"p4rtner-x.govt.nz":   "",
		"partnership.govt.nz": "",
	} {
		got, why, ok := Lookalike(rcpt, known)
		if ok != (want != "") || got != want {
			t.Errorf("Lookalike(%q) = %q (%s), %v; want %q", rcpt, got, why, ok, want)
		}
	}
}

// The memo changes no answer: the second Match of a domain gives what the
// first gave, for lookalikes and distinct domains, and a full memo starts
// again.
func TestLookalikeSetMemo(t *testing.T) {
	s := NewLookalikeSet(lookalikeKnown)
	for _, d := range []string{"agency.gov.nz", "parnter.govt.nz", "example.com", "agency.govt.nz", "AGENCY.GOV.NZ."} {
		i1, w1, ok1 := s.Match(d)
		i2, w2, ok2 := s.Match(d)
		i3, w3, ok3 := Lookalike(d, lookalikeKnown)
		if i1 != i2 || w1 != w2 || ok1 != ok2 || i1 != i3 || w1 != w3 || ok1 != ok3 {
			t.Errorf("%s: %q %q %v, then %q %q %v, fresh %q %q %v", d, i1, w1, ok1, i2, w2, ok2, i3, w3, ok3)
		}
	}
	for i := 0; i < maxLookalikeMemo+10; i++ {
		s.Match(fmt.Sprintf("d%d.example", i))
	}
	if len(s.memo) > maxLookalikeMemo {
		t.Errorf("memo holds %d answers, bound %d", len(s.memo), maxLookalikeMemo)
	}
	if got, _, ok := s.Match("agency.gov.nz"); !ok || got != "agency.govt.nz" {
		t.Errorf("after the memo restarted: %q %v", got, ok)
	}
}

// A recipient of the same organisation as a known domain (the same
// registrable domain) is not a lookalike of it: with only
// nzism.gcsb.govt.nz on a list, gcsb.govt.nz and mail.gcsb.govt.nz are
// GCSB's own (a short label at distance 0 read as a typing error before).
// A confusable of the organisation's name is still one.
func TestLookalikeSameOrganisation(t *testing.T) {
	known := []string{"nzism.gcsb.govt.nz", "ombudsman.parliament.nz", "agency.govt.nz"}
	for _, d := range []string{"gcsb.govt.nz", "mail.gcsb.govt.nz", "other.gcsb.govt.nz", "mail.ombudsman.parliament.nz"} {
		if got, why, hit := Lookalike(d, known); hit {
			t.Errorf("Lookalike(%q) = %q (%s), want no match", d, got, why)
		}
	}
	for _, d := range []string{"nzism.g\u0441sb.govt.nz", "gcsb.gov.nz", "agency.gov.nz"} {
		if _, _, hit := Lookalike(d, known); !hit {
			t.Errorf("Lookalike(%q): no match, want one", d)
		}
	}
}

// TestLookalikeRealSecureList: the domains of real New Zealand agencies,
// councils and health boards, each compared with all the others, are never
// taken for each other (issue 17: no false positive among the secure list
// itself), short names, shared parents and organisations included.
func TestLookalikeRealSecureList(t *testing.T) {
	list := []string{"ird.govt.nz", "dia.govt.nz", "msd.govt.nz", "mpi.govt.nz", "doc.govt.nz", "moh.govt.nz", "health.govt.nz", "justice.govt.nz",
		"police.govt.nz", "treasury.govt.nz", "dpmc.govt.nz", "mbie.govt.nz", "mfat.govt.nz", "education.govt.nz", "corrections.govt.nz",
		"nzta.govt.nz", "linz.govt.nz", "stats.govt.nz", "mfe.govt.nz", "mod.govt.nz", "nzdf.mil.nz", "parliament.nz", "ombudsman.parliament.nz",
		"oag.parliament.nz", "customs.govt.nz", "immigration.govt.nz", "acc.co.nz", "eqc.govt.nz", "gcsb.govt.nz", "nzsis.govt.nz", "tpk.govt.nz",
		"mch.govt.nz", "msd.govt.nz", "minedu.govt.nz", "tec.govt.nz", "nzqa.govt.nz", "ero.govt.nz", "pharmac.govt.nz", "hqsc.govt.nz",
		"tewhatuora.govt.nz", "teaka.govt.nz", "mhaids.health.nz", "cdhb.health.nz", "ccdhb.org.nz", "wcc.govt.nz", "aucklandcouncil.govt.nz",
		"ccc.govt.nz", "hcc.govt.nz", "dcc.govt.nz", "nzism.gcsb.govt.nz", "digital.govt.nz", "govt.nz", "nzta.govt.nz", "nz.govt.nz",
		"mpp.govt.nz", "msc.govt.nz", "sfo.govt.nz", "crownlaw.govt.nz", "ssc.govt.nz", "publicservice.govt.nz", "hud.govt.nz", "kaingaora.govt.nz",
		"transport.govt.nz", "mot.govt.nz", "fenz.org.nz", "cert.govt.nz", "ncsc.govt.nz", "mbie.govt.nz", "worksafe.govt.nz", "employment.govt.nz"}
	for i, d := range list {
		others := append(append([]string(nil), list[:i]...), list[i+1:]...)
		if got, why, hit := Lookalike(d, others); hit {
			t.Errorf("known %q looks like known %q (%s)", d, got, why)
		}
	}
}
