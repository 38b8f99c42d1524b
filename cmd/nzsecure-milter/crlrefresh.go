package main

import (
	"context"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/smime/crl"
)

// crlRefresh keeps the CRL cache of the state in force refreshed in the
// background, before nextUpdate, so that no message waits for a fetch
// (R39-R40): one Run per S/MIME env, for the life of the state; when a
// reload (SIGHUP) replaces the state, the replaced cache's Run stops.
type crlRefresh struct {
	env  *pipeline.SMIMEEnv
	stop context.CancelFunc
	// run is crl.Cache.Run with serve's schedule (tests replace it).
	run func(ctx context.Context, c *crl.Cache)
}

func runCRL(ctx context.Context, c *crl.Cache) {
	c.Run(ctx, crl.DefaultRefreshInterval, crl.DefaultRefreshMargin, nil)
}

// follow makes env's cache the one refreshed; nil stops the refresh.
func (r *crlRefresh) follow(env *pipeline.SMIMEEnv) {
	if env == r.env {
		return
	}
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	r.env = env
	if env == nil || env.CRL == nil {
		return
	}
	run := r.run
	if run == nil {
		run = runCRL
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go run(ctx, env.CRL)
}
