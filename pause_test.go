package entraredis_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// latencies records how long each command took, failed ones included.
type latencies struct {
	mu   sync.Mutex
	took []time.Duration
	errs int
}

func (l *latencies) load(ctx context.Context, rdb redis.Cmdable, goroutines int, until time.Time) {
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			key := "pause-" + string(rune('a'+g))
			for i := 0; i < 100_000 && time.Now().Before(until); i++ {
				start := time.Now()
				err := rdb.Incr(ctx, key).Err()
				took := time.Since(start)
				l.mu.Lock()
				l.took = append(l.took, took)
				if err != nil {
					l.errs++
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

func (l *latencies) quantile(q float64) time.Duration {
	s := slices.Clone(l.took)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// TestPausedServerDelaysAsPlain (issue 25.3): a server paused for 2 s
// (CLIENT PAUSE 2000 ALL from another connection), twice, under load, with
// 2-second tokens so that idle connections get their AUTH while the server
// holds it: the library's commands are delayed no more than plain go-redis'
// in the same run (both with a 500 ms read timeout). Before the fix a
// command on a connection whose AUTH reply the wrapper was waiting for
// waited on the wrapper's lock past go-redis' read deadline, up to the
// wrapper's 1 s IO timeout.
func TestPausedServerDelaysAsPlain(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	ctx := t.Context()
	opts := func() *redis.Options {
		return &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: 8, ReadTimeout: 500 * time.Millisecond, MaxRetries: -1}
	}
	ours, err := entraredis.NewClient(ctx, srv.Credential(), opts(), &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	plain := plainClient(t, srv, srv.NewCredential(entraredistest.CredentialOptions{Lifetime: time.Hour}), 3, &redis.Options{PoolSize: 8, ReadTimeout: 500 * time.Millisecond, MaxRetries: -1})
	backend := redis.NewClient(srv.BackendOptions())
	defer backend.Close()

	// Every connection of both pools open and idle: the load below (two
	// goroutines) leaves most of them idle, so that tokens handed over
	// during a pause are written on idle connections by the wrapper itself.
	for _, rdb := range []*redis.Client{ours.Client, plain} {
		var warm sync.WaitGroup
		for range 8 {
			warm.Go(func() { rdb.Do(ctx, "DEBUG", "SLEEP", "0.05") })
		}
		warm.Wait()
	}
	reauths := ours.Status().Reauths
	start := time.Now()
	until := start.Add(7 * time.Second)
	var lo, lp latencies
	var wg sync.WaitGroup
	wg.Go(func() { lo.load(ctx, ours, 2, until) })
	wg.Go(func() { lp.load(ctx, plain, 2, until) })
	wg.Go(func() {
		for _, at := range []time.Duration{time.Second, 4 * time.Second} {
			time.Sleep(time.Until(start.Add(at)))
			if err := backend.ClientPause(ctx, 2*time.Second).Err(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	moved := ours.Status().Reauths - reauths
	t.Logf("ours:  %d commands, %d errors, p50 %v, p99 %v, max %v", len(lo.took), lo.errs, lo.quantile(0.5), lo.quantile(0.99), lo.quantile(1))
	t.Logf("plain: %d commands, %d errors, p50 %v, p99 %v, max %v", len(lp.took), lp.errs, lp.quantile(0.5), lp.quantile(0.99), lp.quantile(1))
	t.Logf("%d connections re-authenticated in place during the run", moved)
	if moved == 0 {
		t.Fatal("no connection was re-authenticated: the test proves nothing")
	}
	if lp.errs == 0 {
		t.Fatal("plain go-redis saw no timeout: the pauses did not bite, the test proves nothing")
	}
	if lo.quantile(1) > lp.quantile(1)+150*time.Millisecond {
		t.Fatalf("the longest command took %v with entraredis, %v with plain go-redis", lo.quantile(1), lp.quantile(1))
	}
}
