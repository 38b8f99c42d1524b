package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Address mappings that Postfix applies after the milter has judged the
// recipients (README, "Addresses the MTA rewrites after the milter"): a
// virtual alias or a bcc address that leads to a peer agency would be
// delivered in clear, outside S/MIME (R62-R72). The milter cannot see
// them, so lint and serve look at the Postfix configuration instead and
// warn: in general when a mapping is configured on an S/MIME gateway
// whose smtpd does not switch mappings off, and by name when a virtual
// alias file maps to a domain in S/MIME scope.

// postconfParams are read with `postconf -x -h` (values expanded, one a
// line, in this order).
var postconfParams = []string{"receive_override_options", "always_bcc", "sender_bcc_maps", "recipient_bcc_maps", "virtual_alias_maps"}

// postconfRun runs postconf; tests replace it. A host without Postfix
// (Sendmail) gives an error, and no warning is made.
var postconfRun = func(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "postconf", args...).Output()
	return string(out), err
}

// maxAliasLines bounds how much of one alias source file is read.
const maxAliasLines = 200000

// postfixMappingWarnings: with smime.mode on, one line per mapping that
// could take mail to a peer agency around the milter.
func postfixMappingWarnings(p *policy.Policy) []string {
	if p.SMIME.Mode != policy.SMIMEOn {
		return nil
	}
	out, err := postconfRun(append([]string{"-x", "-h"}, postconfParams...)...)
	if err != nil {
		return nil
	}
	vals := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(vals) != len(postconfParams) {
		return nil
	}
	v := map[string]string{}
	for i, k := range postconfParams {
		v[k] = strings.TrimSpace(vals[i])
	}
	if strings.Contains(v["receive_override_options"], "no_address_mappings") {
		return nil
	}
	var warn []string
	for _, k := range postconfParams[1:] {
		if v[k] == "" {
			continue
		}
		warn = append(warn, fmt.Sprintf("%s = %s: Postfix applies it after the milter, so a target at a peer agency would receive the mail in clear (not signed or encrypted); keep address mappings off the S/MIME gateway, or set receive_override_options = no_address_mappings on its smtpd", k, v[k]))
	}
	for _, m := range strings.FieldsFunc(v["virtual_alias_maps"], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		warn = append(warn, aliasesInScope(p, m)...)
	}
	return warn
}

// aliasesInScope reads the source of a file map (type:/path, the path as
// postmap reads it: hash, btree, lmdb, cdb, dbm, texthash) and names each
// alias whose target is in a domain that gets S/MIME (policy.SMIMEScope).
func aliasesInScope(p *policy.Policy, m string) []string {
	typ, path, ok := strings.Cut(m, ":")
	switch typ {
	case "hash", "btree", "lmdb", "cdb", "dbm", "texthash":
	default:
		return nil
	}
	if !ok || !strings.HasPrefix(path, "/") {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var warn []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 0; sc.Scan() && n < maxAliasLines; n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, targets, found := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
		if !found {
			continue
		}
		for _, t := range strings.FieldsFunc(targets, func(r rune) bool { return r == ',' || r == ' ' }) {
			d := policy.SMIMERcptDomain(t)
			if d == "" || p.IsOurDomain(d) {
				continue
			}
			if in, why := p.SMIMEScope(d, peerStored(p, d)); in {
				warn = append(warn, fmt.Sprintf("%s (line %d): %s -> %s: the alias leads to a domain that gets S/MIME (%s), but Postfix expands it after the milter: mail to %s would reach %s in clear", path, n+1, key, t, why, key, d))
			}
		}
	}
	return warn
}

// peerStored: the peer store holds a certificate of domain (so the domain
// gets S/MIME when smime.encrypt_to is empty, R72).
func peerStored(p *policy.Policy, domain string) bool {
	files, _ := filepath.Glob(filepath.Join(p.SMIME.Peers, domain, "*.pem"))
	return len(files) > 0
}
