package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/smime/crl"
)

// serve refreshes the CRL cache of the state in force, one Run per state;
// a reload's new state starts its own and stops the replaced one's.
func TestCRLRefreshFollowsTheState(t *testing.T) {
	var mu sync.Mutex
	ctxs := map[*crl.Cache]context.Context{}
	r := crlRefresh{run: func(ctx context.Context, c *crl.Cache) {
		mu.Lock()
		ctxs[c] = ctx
		mu.Unlock()
	}}
	started := func(c *crl.Cache) context.Context {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ctx := ctxs[c]
			mu.Unlock()
			if ctx != nil {
				return ctx
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("the cache's refresh was not started")
		return nil
	}
	a := &pipeline.SMIMEEnv{CRL: crl.New("", time.Second)}
	b := &pipeline.SMIMEEnv{CRL: crl.New("", time.Second)}
	r.follow(a)
	ctxA := started(a.CRL)
	r.follow(a) // a refused reload keeps the state: nothing changes
	if ctxA.Err() != nil {
		t.Fatal("the refresh of the state in force stopped")
	}
	r.follow(b)
	ctxB := started(b.CRL)
	if ctxA.Err() == nil {
		t.Error("the replaced state's refresh still runs")
	}
	r.follow(&pipeline.SMIMEEnv{}) // smime.crl_check = false: no cache
	if ctxB.Err() == nil {
		t.Error("the refresh of a replaced state still runs after a reload without CRL checks")
	}
	mu.Lock()
	n := len(ctxs)
	mu.Unlock()
	if n != 2 {
		t.Errorf("%d refreshes started, want 2", n)
	}
	r.follow(nil)
}
