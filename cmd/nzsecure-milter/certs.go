package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

func init() {
	register("certs", "list our S/MIME identities and the peer store with each certificate's state; certs check DOMAIN explains sending there; certs discover|approve|reject|lists|renew (LDAP, certsldap.go)", runCerts)
}

// certEnv is what the certs subcommand judges with: the S/MIME env the
// milter builds (pipeline.SMIMEEnv), read-only.
type certEnv struct {
	p *policy.Policy
	*pipeline.SMIMEEnv
}

// newCertEnv builds the env as serve does, without creating the peer
// store: a listing never creates anything.
func newCertEnv(p *policy.Policy) (*certEnv, error) {
	e, err := pipeline.NewSMIMEEnv(p, false)
	if err != nil {
		return nil, err
	}
	return &certEnv{p: p, SMIMEEnv: e}, nil
}

// certInfo is one certificate in the listing.
type certInfo struct {
	File        string `json:"file,omitempty"`
	Fingerprint string `json:"fingerprint"`
	Subject     string `json:"subject"`
	Issuer      string `json:"issuer"`
	NotBefore   string `json:"not_before"`
	NotAfter    string `json:"not_after"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
}

type identityInfo struct {
	Domain string `json:"domain"`
	certInfo
}

type peerInfo struct {
	Domain       string     `json:"domain"`
	Capabilities []string   `json:"capabilities"` // empty: none known (AES-256-CBC is used, RFC 8551 2.7.1.2)
	Certificates []certInfo `json:"certificates"`
	Problems     []string   `json:"problems,omitempty"`
	Lists        []string   `json:"lists"` // the accredited lists the domain is on (R55)
}

type certsListing struct {
	Mode       string         `json:"mode"`
	CRLCheck   bool           `json:"crl_check"`
	Identities []identityInfo `json:"identities"`
	Problems   []string       `json:"identity_problems,omitempty"`
	PeerStore  string         `json:"peer_store"`
	StoreNote  string         `json:"peer_store_note,omitempty"`
	Peers      []peerInfo     `json:"peers"`
	Discovery  *discoveryInfo `json:"discovery"` // LDAP discovery and pending approvals (certsldap.go)
	// Renewal is, per domain of ours, whether our certificate is due for
	// renewal (R51; judged only: `certs renew` asks the directories).
	Renewal []pipeline.OwnRenewal `json:"renewal"`
}

func describeCert(c *x509.Certificate, vd smime.Verdict) certInfo {
	return certInfo{
		Fingerprint: smime.Fingerprint(c),
		Subject:     c.Subject.String(),
		Issuer:      c.Issuer.String(),
		NotBefore:   c.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:    c.NotAfter.UTC().Format(time.RFC3339),
		State:       string(vd.State),
		Reason:      vd.Reason,
	}
}

func (e *certEnv) listing(ctx context.Context) certsListing {
	l := certsListing{Mode: string(e.p.SMIME.Mode), CRLCheck: e.p.SMIME.CRLCheck, Problems: e.IdentityProblems,
		PeerStore: e.p.SMIME.Peers, StoreNote: e.StoreNote, Identities: []identityInfo{}, Peers: []peerInfo{}}
	for _, id := range e.Identities {
		ci := describeCert(id.Cert, e.Validator.Validate(ctx, id.Cert, id.Domain, id.Chain))
		ci.File = e.IdentityFiles[id]
		l.Identities = append(l.Identities, identityInfo{Domain: id.Domain, certInfo: ci})
	}
	l.Renewal, _ = pipeline.RenewOwn(ctx, e.p, e.SMIMEEnv, nil, time.Now())
	for i := range l.Renewal {
		if l.Renewal[i].Action == pipeline.OwnNoSearch {
			l.Renewal[i].Action, l.Renewal[i].Problems = "due", nil // the listing searches nothing
		}
	}
	if e.Store == nil {
		return l
	}
	entries, err := os.ReadDir(e.Store.Dir)
	if err != nil {
		l.StoreNote = err.Error()
		return l
	}
	for _, de := range entries {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		domain := de.Name()
		pi := peerInfo{Domain: domain, Capabilities: []string{}, Certificates: []certInfo{}, Lists: e.p.AccreditedLists(domain)}
		certs, err := e.Store.Certificates(domain)
		if err != nil {
			pi.Problems = append(pi.Problems, err.Error())
		}
		for _, c := range certs {
			pi.Certificates = append(pi.Certificates, describeCert(c, e.Validator.Validate(ctx, c, domain, nil)))
		}
		if caps, ok := e.Store.Capabilities(domain); ok && len(caps) > 0 {
			pi.Capabilities = strings.Split(caps.String(), ",")
		}
		l.Peers = append(l.Peers, pi)
	}
	sort.Slice(l.Peers, func(i, j int) bool { return l.Peers[i].Domain < l.Peers[j].Domain })
	l.Discovery = e.discoveryListing(ctx)
	return l
}

func writeCertText(w io.Writer, indent string, c certInfo) {
	fmt.Fprintf(w, "%s%s  %s\n", indent, c.Fingerprint, c.State)
	fmt.Fprintf(w, "%s  subject:  %s\n", indent, c.Subject)
	fmt.Fprintf(w, "%s  issuer:   %s\n", indent, c.Issuer)
	fmt.Fprintf(w, "%s  valid:    %s to %s\n", indent, c.NotBefore, c.NotAfter)
	fmt.Fprintf(w, "%s  why:      %s\n", indent, c.Reason)
	if c.File != "" {
		fmt.Fprintf(w, "%s  file:     %s\n", indent, c.File)
	}
}

func (l certsListing) text(w io.Writer) {
	fmt.Fprintf(w, "smime.mode: %s\n", l.Mode)
	if !l.CRLCheck {
		fmt.Fprintln(w, "CRL checks: off (smime.crl_check = false, R59)")
	}
	fmt.Fprintln(w, "\nour identities:")
	if len(l.Identities) == 0 && len(l.Problems) == 0 {
		fmt.Fprintln(w, "  none (smime.identities)")
	}
	for _, id := range l.Identities {
		fmt.Fprintf(w, "  %s\n", id.Domain)
		writeCertText(w, "    ", id.certInfo)
	}
	for _, pr := range l.Problems {
		fmt.Fprintf(w, "  problem: %s\n", pr)
	}
	for _, r := range l.Renewal {
		switch r.Action {
		case pipeline.OwnCurrent:
			fmt.Fprintf(w, "  renewal (R51): %s current, valid until %s\n", r.Domain, r.ValidUntil.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "  renewal (R51): %s due: %s (nzsecure-milter certs renew looks for a renewed certificate now)\n", r.Domain, r.Due)
		}
	}
	fmt.Fprintf(w, "\npeer store %s:\n", l.PeerStore)
	if l.StoreNote != "" {
		fmt.Fprintf(w, "  %s\n", l.StoreNote)
	} else if len(l.Peers) == 0 {
		fmt.Fprintln(w, "  empty")
	}
	for _, p := range l.Peers {
		caps := "none known (aes256-cbc would be used)"
		if len(p.Capabilities) > 0 {
			caps = strings.Join(p.Capabilities, ", ")
		}
		fmt.Fprintf(w, "  %s  capabilities: %s\n", p.Domain, caps)
		for _, c := range p.Certificates {
			writeCertText(w, "    ", c)
		}
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "    problem: %s\n", pr)
		}
		if len(p.Lists) > 0 {
			fmt.Fprintf(w, "    lists: %s (R55)\n", strings.Join(p.Lists, ", "))
		}
	}
	l.Discovery.text(w)
}

// sendCheck is what `certs check DOMAIN` finds.
type sendCheck struct {
	Domain string `json:"domain"`
	From   string `json:"from_domain"`
	// InScope: the domain gets S/MIME (smime.encrypt_to, or by default the
	// SEEMail list, the exceptions, or a peer certificate in the store).
	InScope     bool     `json:"s_mime"`
	ScopeReason string   `json:"scope_reason"`
	SEEMailList bool     `json:"seemail_list"`
	SignWith    string   `json:"sign_with,omitempty"` // fingerprint of the identity that would sign (R37)
	SignProblem string   `json:"sign_problem,omitempty"`
	EncryptTo   string   `json:"encrypt_to,omitempty"` // fingerprint of the peer certificate
	Cipher      string   `json:"cipher,omitempty"`
	PeerState   string   `json:"peer_state"`
	PeerReasons []string `json:"peer_reasons,omitempty"`
	// Outcome: "signed and encrypted", "held" (Table 1) or "not S/MIME".
	Outcome string `json:"outcome"`
	Code    string `json:"code,omitempty"` // Table 3 code of the SECURE DELIVERY DELAYED notice
	Explain string `json:"explanation"`
}

func (e *certEnv) check(ctx context.Context, domain, from string) sendCheck {
	p := e.p
	sc := sendCheck{Domain: domain, From: from, SEEMailList: p.Outbound.SEEMailDomains.Match(domain)}
	peer := e.Peer(ctx, domain)
	sc.PeerState, sc.PeerReasons = string(peer.State), peer.Reasons
	if !peer.HasCerts {
		sc.PeerState = "no certificate"
	}
	// R72, R91: which domains get S/MIME.
	sc.InScope, sc.ScopeReason = p.SMIMEScope(domain, peer.HasCerts)
	if !sc.InScope {
		sc.Outcome = "not S/MIME"
		sc.Explain = "sent without S/MIME, under the TLS and routing rules as any other domain: " + sc.ScopeReason
		return sc
	}
	own := e.Own(ctx, from)
	sc.SignWith, sc.SignProblem = own.Fingerprint, own.Problem
	sc.EncryptTo, sc.Cipher = peer.Fingerprint, peer.Cipher
	code, why := policy.SMIMESendOutcome(peer, own)
	if code != "" {
		sc.Outcome, sc.Code = "held", code
		sc.Explain = fmt.Sprintf("held: SECURE DELIVERY DELAYED (code %s) to the sender and the sender's postmaster: %s; retried until smime.give_up (%s), then SECURE DELIVERY FAILURE",
			code, why, p.SMIME.GiveUp)
		return sc
	}
	sc.Outcome = "signed and encrypted"
	sc.Explain = fmt.Sprintf("signed by %s with %s, then encrypted to %s with %s", from, sc.SignWith, sc.EncryptTo, sc.Cipher)
	return sc
}

func (sc sendCheck) text(w io.Writer) {
	fmt.Fprintf(w, "sending from %s to %s:\n", sc.From, sc.Domain)
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(w, "  SEEMail list:  %s\n", yes[sc.SEEMailList])
	fmt.Fprintf(w, "  S/MIME:        %s (%s)\n", yes[sc.InScope], sc.ScopeReason)
	if sc.InScope {
		if sc.SignWith != "" {
			fmt.Fprintf(w, "  signed with:   %s (R37: our newest valid certificate)\n", sc.SignWith)
		} else {
			fmt.Fprintf(w, "  signed with:   none: %s\n", sc.SignProblem)
		}
		if sc.EncryptTo != "" {
			fmt.Fprintf(w, "  encrypted to:  %s with %s\n", sc.EncryptTo, sc.Cipher)
		} else {
			fmt.Fprintf(w, "  encrypted to:  none: peer certificate %s\n", sc.PeerState)
		}
		for _, r := range sc.PeerReasons {
			fmt.Fprintf(w, "    %s\n", r)
		}
	}
	fmt.Fprintf(w, "  outcome:       %s\n", sc.Explain)
}

// runCerts: exit 0 when listed, or for `check` when the mail would be
// signed and encrypted; 1 when `check` finds it would be held or not sent
// with S/MIME; 2 on usage or policy errors.
func runCerts(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("certs", "[check DOMAIN | discover DOMAIN | approve FINGERPRINT | reject FINGERPRINT | lists | renew]", stderr)
	var pf policyFlags
	pf.add(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	from := fs.String("from", "", "`DOMAIN` of ours that sends, for check (default: the first of domains, else of smime.identities)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	isCheck := len(pos) == 2 && pos[0] == "check"
	if len(pos) != 0 && !isCheck && !isDiscoveryVerb(pos) {
		fs.Usage()
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 2
	}
	if isDiscoveryVerb(pos) {
		return runCertsDiscovery(p, pos, *asJSON, stdout, stderr)
	}
	env, err := newCertEnv(p)
	if err != nil {
		fmt.Fprintln(stderr, "nzsecure-milter certs:", err)
		return 2
	}
	ctx := context.Background()
	out := func(v any, text func(io.Writer)) {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
			return
		}
		text(stdout)
	}
	if !isCheck {
		l := env.listing(ctx)
		out(l, l.text)
		return 0
	}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(pos[1]), "."))
	if domain == "" || strings.ContainsAny(domain, "/\\@ ") {
		fmt.Fprintf(stderr, "nzsecure-milter certs check: %q is not a domain\n", pos[1])
		return 2
	}
	f := strings.ToLower(*from)
	if f == "" {
		switch {
		case len(p.Domains) > 0:
			f = p.Domains[0]
		case len(p.SMIME.Identities) > 0:
			f = p.SMIME.Identities[0].Domain
		default:
			fmt.Fprintln(stderr, "nzsecure-milter certs check: no sending domain: set domains, smime.identities or --from")
			return 2
		}
	}
	sc := env.check(ctx, domain, f)
	out(sc, sc.text)
	if sc.Outcome == "signed and encrypted" {
		return 0
	}
	return 1
}
