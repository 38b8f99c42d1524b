package main

import (
	"context"
	"log/slog"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime/discovery"
)

// startListRefresher reads the accredited lists configured from LDAP
// (lists.*_ldap; R55, R108) now and every lists.refresh, keeping the last
// good copy in lists.dir when a directory is down, and signals on the
// returned channel when a copy changed, so that serve reloads the policy
// (which reads the copies) as on SIGHUP. The lists of the policy serve
// started with are refreshed: a change of the lists.* keys takes a restart.
// Nil (never ready) when no list is read from LDAP.
func startListRefresher(ctx context.Context, p *policy.Policy, log *slog.Logger) <-chan struct{} {
	srcs := p.ListSources()
	if len(srcs) == 0 {
		return nil
	}
	changed := make(chan struct{}, 1)
	report := func(r discovery.ListResult) {
		if r.Err != nil {
			log.Warn("accredited list not refreshed", "list", r.Name, "file", r.File, "entries", r.Entries, "error", r.Err.Error())
			return
		}
		if r.Changed {
			log.Info("accredited list refreshed", "list", r.Name, "file", r.File, "entries", r.Entries)
		}
	}
	tlsConf, err := p.LDAPTLS()
	if err != nil {
		log.Error("accredited lists: ldaps:// servers cannot be checked, so none is trusted", "error", err.Error())
	}
	go discovery.RunLists(ctx, srcs, tlsConf, listTimeout, p.Lists.Refresh, report, func() {
		select {
		case changed <- struct{}{}:
		default: // a reload is already due
		}
	})
	return changed
}
