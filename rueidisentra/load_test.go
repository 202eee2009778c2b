package rueidisentra_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/rueidisentra"
)

// loadResult is what a load run saw.
type loadResult struct {
	ops, errs int64
	firstErrs []error
}

// runLoad runs SET/GET from n goroutines until d has passed (at most maxOps
// each) and returns the counts.
func runLoad(ctx context.Context, c rueidis.Client, n int, d time.Duration, maxOps int) *loadResult {
	var res loadResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for g := range n {
		wg.Go(func() {
			key := fmt.Sprintf("load:%d", g) // spread over the nodes of a cluster
			for i := 0; i < maxOps && time.Now().Before(deadline); i++ {
				var err error
				if i%2 == 0 {
					err = c.Do(ctx, c.B().Set().Key(key).Value("v").Build()).Error()
				} else {
					err = c.Do(ctx, c.B().Get().Key(key).Build()).Error()
				}
				atomic.AddInt64(&res.ops, 1)
				if err != nil {
					atomic.AddInt64(&res.errs, 1)
					mu.Lock()
					if len(res.firstErrs) < 5 {
						res.firstErrs = append(res.firstErrs, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return &res
}

// lateMoves samples the client's Status every 20 ms until ctx ends and
// counts the samples where a connection was still on the previous token
// although that token had less than `lead` of life left.
func lateMoves(ctx context.Context, c rueidis.Client, lead time.Duration) (late, samples *atomic.Int64, done <-chan struct{}) {
	late, samples = new(atomic.Int64), new(atomic.Int64)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		var prevExp, curExp time.Time
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			st, _ := rueidisentra.Status(c)
			if !st.ExpiresOn.Equal(curExp) {
				prevExp, curExp = curExp, st.ExpiresOn
			}
			samples.Add(1)
			if st.Conns.Older > 0 && !prevExp.IsZero() && time.Until(prevExp) < lead && time.Until(prevExp) > 0 {
				late.Add(1)
			}
		}
	}()
	return late, samples, ch
}

// target is a standalone Server or a Cluster under test.
type target struct {
	name  string
	addrs []string
	stats func() entraredistest.Stats
	cred  *entraredistest.Credential
	c     func(t *testing.T, opt rueidis.ClientOption, o entratoken.Options) rueidis.Client
}

func standalone(t *testing.T, life time.Duration) target {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: life})
	entraredistest.RequireRedisServer(t)
	return target{name: "standalone", addrs: []string{srv.Addr()}, stats: srv.Stats, cred: srv.Credential(),
		c: func(t *testing.T, opt rueidis.ClientOption, o entratoken.Options) rueidis.Client {
			return connect(t, srv.Credential(), []string{srv.Addr()}, srv.TLSConfig(), opt, rueidisentra.Options{Options: o})
		}}
}

func cluster(t *testing.T, life time.Duration) target {
	cl := entraredistest.NewCluster(t, entraredistest.ClusterOptions{TokenLifetime: life})
	return target{name: "cluster", addrs: cl.Addrs(), stats: cl.Stats, cred: cl.Credential(),
		c: func(t *testing.T, opt rueidis.ClientOption, o entratoken.Options) rueidis.Client {
			tc := cl.TLSConfig()
			tc.ServerName = "" // the topology names 127.0.0.1: rueidisentra must verify every node against "localhost"
			return connect(t, cl.Credential(), cl.Addrs(), tc, opt, rueidisentra.Options{Options: o})
		}}
}

func forEachTopology(t *testing.T, life time.Duration, f func(t *testing.T, tg target)) {
	for _, top := range []struct {
		name string
		mk   func(*testing.T, time.Duration) target
	}{{"standalone", standalone}, {"cluster", cluster}} {
		t.Run(top.name, func(t *testing.T) { f(t, top.mk(t, life)) })
	}
}

// TestRotationUnderLoad: 3-second tokens (a rotation every 1.5 s), 32 and
// 128 goroutines on auto-pipelining, standalone and a 3-master cluster:
// no command error, no connection closed for expiry, one token request per
// rotation, every connection moved before the old token expires.
func TestRotationUnderLoad(t *testing.T) {
	const life = 3 * time.Second
	d := 10 * time.Second
	forEachTopology(t, life, func(t *testing.T, tg target) {
		for _, g := range []int{32, 128} {
			t.Run(fmt.Sprintf("G%d", g), func(t *testing.T) {
				c := tg.c(t, rueidis.ClientOption{}, entratoken.Options{})
				before, st0 := tg.stats(), status(t, c)
				ctx, cancel := context.WithCancel(t.Context())
				late, samples, sampled := lateMoves(ctx, c, 50*time.Millisecond)
				res := runLoad(t.Context(), c, g, d, 1_000_000)
				cancel()
				<-sampled
				after, st := tg.stats(), status(t, c)
				rot := st.Rotations - st0.Rotations
				t.Logf("%s G%d %v: %d ops, %d errors, %d rotations, %d token requests, %d dials, %d re-AUTHs, %d closed for expiry, %d refused AUTHs, conns %+v, %d late samples of %d",
					tg.name, g, d, res.ops, res.errs, rot, st.TokenRequests-st0.TokenRequests, after.Accepted-before.Accepted,
					after.ReAuths-before.ReAuths, after.ExpiryCloses-before.ExpiryCloses, after.RefusedAuths-before.RefusedAuths, st.Conns, late.Load(), samples.Load())
				if res.errs != 0 {
					t.Fatalf("%d command errors of %d, first: %v", res.errs, res.ops, res.firstErrs)
				}
				if res.ops < 1000 {
					t.Fatalf("only %d operations", res.ops)
				}
				if rot < int64(d/life) {
					t.Fatalf("only %d rotations in %v of %v tokens", rot, d, life)
				}
				if n := after.ExpiryCloses - before.ExpiryCloses; n != 0 {
					t.Fatalf("%d connections closed for an expired token", n)
				}
				if n := after.RefusedAuths - before.RefusedAuths; n != 0 {
					t.Fatalf("%d AUTHs refused", n)
				}
				if n := after.ReAuths - before.ReAuths; n < rot {
					t.Fatalf("%d re-AUTHs for %d rotations: connections are not moved", n, rot)
				}
				if extra := st.TokenRequests - st0.TokenRequests - rot; extra < 0 || extra > 1 {
					t.Fatalf("%d token requests for %d rotations, want one each", st.TokenRequests-st0.TokenRequests, rot)
				}
				if late.Load() != 0 {
					t.Fatalf("%d samples of %d saw a connection on the previous token within 50 ms of its expiry", late.Load(), samples.Load())
				}
				if st.Conns.Current == 0 {
					t.Fatalf("no connection counted on the token in use: %+v", st.Conns)
				}
			})
		}
	})
}
