package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// The certs verbs of issue 15: LDAP discovery (R43, R53, R58), manual
// approval (R54) and the accredited lists from LDAP (R55, R108).
//
//	certs discover DOMAIN      look DOMAIN's DCA certificate up now
//	certs approve FINGERPRINT  move a pending certificate into the peer store
//	certs reject FINGERPRINT   never use (nor queue again) a pending one
//	certs lists                refresh the lists.*_ldap lists now
//	certs renew                look our own due certificates up now (R51)
func isDiscoveryVerb(pos []string) bool {
	switch {
	case len(pos) == 2 && (pos[0] == "discover" || pos[0] == "approve" || pos[0] == "reject"):
		return true
	case len(pos) == 1 && (pos[0] == "lists" || pos[0] == "renew"):
		return true
	}
	return false
}

// discoveryInfo is the discovery part of the `certs` listing.
type discoveryInfo struct {
	Directories []string      `json:"directories"`
	Mode        string        `json:"mode"`
	PendingDir  string        `json:"pending_dir"`
	Pending     []pendingInfo `json:"pending"`
	Problems    []string      `json:"problems,omitempty"`
	Lists       []listInfo    `json:"lists_ldap"`
}

type pendingInfo struct {
	Domain   string   `json:"domain"`
	Rejected bool     `json:"rejected"`
	Lists    []string `json:"lists"`
	certInfo
}

type listInfo struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	File    string `json:"file"`
	Entries int    `json:"entries"` // in the last good copy; -1 when there is none yet
	Changed bool   `json:"changed,omitempty"`
	Error   string `json:"error,omitempty"`
}

func discoveryDirs(p *policy.Policy) []string {
	out := append([]string{}, p.SMIME.Discovery.LDAP...)
	for _, ca := range p.SMIME.Discovery.CALDAP {
		out = append(out, ca.URL+" (CA "+ca.Anchor+", R58)")
	}
	return out
}

func (e *certEnv) discoveryListing(ctx context.Context) *discoveryInfo {
	dp := e.p.SMIME.Discovery
	di := &discoveryInfo{Directories: discoveryDirs(e.p), Mode: string(dp.Mode), PendingDir: dp.Pending, Pending: []pendingInfo{}, Lists: []listInfo{}}
	pend := &discovery.Pending{Dir: dp.Pending}
	list, err := pend.List()
	if err != nil {
		di.Problems = append(di.Problems, err.Error())
	}
	for _, pc := range list {
		di.Pending = append(di.Pending, pendingInfo{Domain: pc.Domain, Rejected: pc.Rejected, Lists: e.p.AccreditedLists(pc.Domain),
			certInfo: describeCert(pc.Cert, e.Validator.Validate(ctx, pc.Cert, pc.Domain, nil))})
	}
	for _, src := range e.p.ListSources() {
		di.Lists = append(di.Lists, listFileInfo(src))
	}
	return di
}

func listFileInfo(src discovery.ListSource) listInfo {
	li := listInfo{Name: src.Name, URL: src.URL.Raw, File: src.File, Entries: -1}
	if data, err := os.ReadFile(src.File); err == nil {
		li.Entries = 0
		for _, line := range strings.Split(string(data), "\n") {
			if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
				li.Entries++
			}
		}
	}
	return li
}

func (di *discoveryInfo) text(w io.Writer) {
	if di == nil {
		return
	}
	if len(di.Directories) == 0 {
		fmt.Fprintln(w, "\ncertificate discovery (LDAP): off (smime.ldap and smime.ca_ldap are empty)")
	} else {
		fmt.Fprintf(w, "\ncertificate discovery (LDAP), smime.discovery = %s:\n", di.Mode)
		for _, d := range di.Directories {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	if len(di.Pending) > 0 || di.Mode == string(discovery.ModeApprove) {
		fmt.Fprintf(w, "\npending approval (%s):\n", di.PendingDir)
		if len(di.Pending) == 0 {
			fmt.Fprintln(w, "  none")
		}
		for _, pc := range di.Pending {
			lists := "on no accredited list"
			if len(pc.Lists) > 0 {
				lists = "lists: " + strings.Join(pc.Lists, ", ")
			}
			status := "waiting: nzsecure-milter certs approve " + pc.Fingerprint
			if pc.Rejected {
				status = "rejected"
			}
			fmt.Fprintf(w, "  %s  %s (R55)  %s\n", pc.Domain, lists, status)
			writeCertText(w, "    ", pc.certInfo)
		}
	}
	for _, pr := range di.Problems {
		fmt.Fprintf(w, "  problem: %s\n", pr)
	}
	if len(di.Lists) > 0 {
		fmt.Fprintln(w, "\naccredited lists from LDAP (R55, R108):")
		for _, l := range di.Lists {
			n := fmt.Sprintf("%d entries", l.Entries)
			if l.Entries < 0 {
				n = "no copy yet"
			}
			fmt.Fprintf(w, "  %-10s %s -> %s (%s)\n", l.Name, l.URL, l.File, n)
		}
	}
}

// discoverOutput is what `certs discover` prints.
type discoverOutput struct {
	discovery.Result
	Using   string `json:"using,omitempty"` // fingerprint of the certificate now usable
	Outcome string `json:"outcome"`
}

func runCertsDiscovery(p *policy.Policy, pos []string, asJSON bool, stdout, stderr io.Writer) int {
	ctx := context.Background()
	show := func(v any, text func(io.Writer)) {
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
			return
		}
		text(stdout)
	}
	if pos[0] == "lists" {
		srcs := p.ListSources()
		if len(srcs) == 0 {
			fmt.Fprintln(stderr, "nzsecure-milter certs lists: no list is read from LDAP (lists.seemail_ldap, lists.securemail_ldap, lists.workspace_ldap)")
			return 2
		}
		var out []listInfo
		code := 0
		tlsConf, err := p.LDAPTLS()
		if err != nil {
			fmt.Fprintln(stderr, "nzsecure-milter certs lists:", err, "(no ldaps:// server is trusted)")
		}
		for _, src := range srcs {
			r := discovery.RefreshList(ctx, src, tlsConf, listTimeout)
			li := listFileInfo(src)
			li.Changed = r.Changed
			if r.Err != nil {
				li.Error, code = r.Err.Error(), 1
			}
			out = append(out, li)
		}
		show(out, func(w io.Writer) {
			for _, l := range out {
				state := "unchanged"
				switch {
				case l.Error != "":
					state = "not refreshed: " + l.Error
				case l.Changed:
					state = "rewritten (a running milter reloads at its next refresh, or at once on SIGHUP)"
				}
				fmt.Fprintf(w, "%s: %s -> %s: %d entries, %s\n", l.Name, l.URL, l.File, max(l.Entries, 0), state)
			}
		})
		return code
	}
	env, err := pipeline.NewSMIMEEnv(p, true)
	if err != nil {
		fmt.Fprintln(stderr, "nzsecure-milter certs:", err)
		return 2
	}
	pend := &discovery.Pending{Dir: p.SMIME.Discovery.Pending}
	switch pos[0] {
	case "approve":
		pc, err := pend.Approve(ctx, env.Validator, env.Store, pos[1])
		if err != nil {
			fmt.Fprintln(stderr, "nzsecure-milter certs approve:", err)
			return 1
		}
		fmt.Fprintf(stdout, "approved %s for %s: now in the peer store %s and used for mail to %s\n", pc.Fingerprint, pc.Domain, env.Store.Dir, pc.Domain)
		return 0
	case "renew":
		return certsRenew(ctx, p, env, show)
	case "reject":
		pc, err := pend.Reject(pos[1])
		if err != nil {
			fmt.Fprintln(stderr, "nzsecure-milter certs reject:", err)
			return 1
		}
		fmt.Fprintf(stdout, "rejected %s for %s: not used, and not queued again by discovery\n", pc.Fingerprint, pc.Domain)
		return 0
	}
	// discover
	if !p.SMIME.Discovery.Enabled() {
		fmt.Fprintln(stderr, "nzsecure-milter certs discover: no directory configured (smime.ldap, smime.ca_ldap)")
		return 2
	}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(pos[1]), "."))
	d, err := pipeline.NewDiscoverer(p, env)
	if err != nil {
		fmt.Fprintln(stderr, "nzsecure-milter certs discover:", err)
		return 2
	}
	res, err := d.Lookup(ctx, domain)
	out := discoverOutput{Result: res}
	if err == nil {
		out.Using = smime.Fingerprint(res.Cert)
		out.Outcome = "a valid certificate is in the peer store: mail to " + domain + " can be signed and encrypted"
	} else {
		out.Outcome = err.Error()
	}
	show(out, out.text)
	if err != nil {
		return 1
	}
	return 0
}

// listTimeout bounds one list refresh (a list is larger than a
// certificate entry; smime.ldap_timeout is for the mail path).
const listTimeout = 30 * time.Second

func (o discoverOutput) text(w io.Writer) {
	fmt.Fprintf(w, "discovering %s (smime.discovery = %s):\n", o.Address, o.Mode)
	if len(o.Lists) > 0 {
		fmt.Fprintf(w, "  lists:     %s (R55)\n", strings.Join(o.Lists, ", "))
	} else {
		fmt.Fprintln(w, "  lists:     on no accredited list (R55)")
	}
	for _, e := range o.Errors {
		fmt.Fprintf(w, "  directory problem: %s\n", e)
	}
	if len(o.Candidates) == 0 {
		fmt.Fprintln(w, "  found:     nothing")
	}
	for _, c := range o.Candidates {
		fmt.Fprintf(w, "  found:     %s  %s\n", c.Fingerprint, c.State)
		fmt.Fprintf(w, "    from:    %s\n", c.Directory)
		fmt.Fprintf(w, "    subject: %s\n", c.Subject)
		fmt.Fprintf(w, "    valid:   %s to %s\n", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		fmt.Fprintf(w, "    why:     %s\n", c.Reason)
		fmt.Fprintf(w, "    done:    %s\n", strings.Replace(c.Action, "FINGERPRINT", c.Fingerprint, 1))
	}
	if o.Using != "" {
		fmt.Fprintf(w, "  using:     %s\n", o.Using)
	}
	fmt.Fprintf(w, "  outcome:   %s\n", o.Outcome)
}

// certsRenew is `certs renew`: serve's renewal check of our own
// certificates (R51, ownrenew.go), now. Exit 0 when every domain of ours
// has a certificate that is not due (or one was fetched), 1 otherwise.
func certsRenew(ctx context.Context, p *policy.Policy, env *pipeline.SMIMEEnv, show func(any, func(io.Writer))) int {
	out, changed, err := pipeline.OwnRenewalCheck(ctx, p, env, time.Now())
	if err != nil {
		show(map[string]string{"error": err.Error()}, func(w io.Writer) { fmt.Fprintln(w, "nzsecure-milter certs renew:", err) })
		return 2
	}
	code := 0
	for _, r := range out {
		if r.Action != pipeline.OwnCurrent && r.Action != pipeline.OwnRenewed && r.Action != pipeline.OwnHave {
			code = 1
		}
	}
	if len(out) == 0 {
		code = 1
	}
	show(out, func(w io.Writer) {
		if len(out) == 0 {
			fmt.Fprintln(w, "no domain of ours: smime.identities and smime.renewal_keys are empty")
		}
		for _, r := range out {
			fmt.Fprintf(w, "%s: %s", r.Domain, r.Action)
			if !r.ValidUntil.IsZero() {
				fmt.Fprintf(w, " (valid until %s)", r.ValidUntil.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(w)
			if r.Due != "" {
				fmt.Fprintf(w, "  due:      %s\n", r.Due)
			}
			if r.File != "" {
				fmt.Fprintf(w, "  fetched:  %s, valid until %s\n  written:  %s\n", r.Fingerprint, r.NotAfter.UTC().Format(time.RFC3339), r.File)
			}
			for _, pr := range r.Problems {
				fmt.Fprintf(w, "  problem:  %s\n", pr)
			}
		}
		if changed {
			fmt.Fprintln(w, "a running milter signs with the fetched certificate after a reload (SIGHUP, systemctl reload nzsecure-milter), or at its next renewal check (smime.renew_check)")
		}
	})
	return code
}
