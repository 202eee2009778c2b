package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
)

// clientStat is one client's figures at one goroutine count.
type clientStat struct {
	OpsPerSec float64
	P50, P99  time.Duration
	Ops, Errs int64
}

type steadyRow struct {
	Goroutines, Pool int
	Ours, Plain      clientStat
	Turns            int
}

func (r steadyRow) ratio() float64 {
	if r.Plain.OpsPerSec == 0 {
		return 0
	}
	return r.Ours.OpsPerSec / r.Plain.OpsPerSec
}

// startServer starts an emulator in front of redis-server (no fallback: the
// figures would mean nothing on the in-process one).
func startServer(life time.Duration) (*entraredistest.Server, error) {
	return entraredistest.Start(entraredistest.Options{TokenLifetime: life, Backend: entraredistest.BackendRedisServer})
}

// staticPassword mints one long-lived token for the server's principal: the
// static password of the plain go-redis client.
func staticPassword(is *entraredistest.Issuer, oid string) (string, error) {
	now := time.Now()
	return is.Mint(entraredistest.TokenSpec{ObjectID: oid, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
}

// runSteady compares our client with plain go-redis (static password) at each
// goroutine count, through the same TLS endpoint, with 1-hour tokens (nothing
// rotates). The two clients take turns A,B,A,B so that drift on a noisy
// machine hits both alike.
func runSteady(ctx context.Context, cfg config, logf func(string, ...any)) ([]steadyRow, error) {
	srv, err := startServer(time.Hour)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cred := srv.Credential()
	pass, err := staticPassword(srv.Issuer(), cred.ObjectID())
	if err != nil {
		return nil, err
	}
	var rows []steadyRow
	for _, g := range cfg.SteadyConc {
		pool := cfg.SteadyPool
		if pool <= 0 {
			pool = g
		}
		plain := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool,
			Username: cred.ObjectID(), Password: pass})
		ours, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool},
			&entraredis.Options{Logger: quiet})
		if err != nil {
			plain.Close()
			return nil, err
		}
		warm := min(500*time.Millisecond, cfg.SteadyDur)
		clients := []struct {
			name string
			rdb  redis.Cmdable
		}{{"entraredis", ours}, {"plain", plain}}
		var res [2][]*loadResult
		for _, c := range clients {
			if err := warmUp(ctx, c.rdb, g, warm, "warm"); err != nil {
				ours.Close()
				plain.Close()
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
		}
		for round := 0; round < cfg.SteadyRounds; round++ {
			for i, c := range clients {
				r := runLoad(ctx, c.rdb, g, cfg.SteadyDur, time.Now(), "steady")
				res[i] = append(res[i], r)
			}
		}
		ours.Close()
		plain.Close()
		row := steadyRow{Goroutines: g, Pool: pool, Turns: cfg.SteadyRounds, Ours: summarize(res[0]), Plain: summarize(res[1])}
		logf("steady %3d goroutines: entraredis %.0f ops/s p99 %v, plain %.0f ops/s p99 %v, ratio %.3f",
			g, row.Ours.OpsPerSec, row.Ours.P99, row.Plain.OpsPerSec, row.Plain.P99, row.ratio())
		rows = append(rows, row)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// summarize pools the turns of one client.
func summarize(rs []*loadResult) clientStat {
	var all []sample
	var st clientStat
	var secs float64
	for _, r := range rs {
		all = append(all, r.samples...)
		st.Ops += r.ops
		st.Errs += r.errs
		secs += r.elapsed.Seconds()
	}
	l := sortedLats(all, nil)
	st.P50, st.P99 = l.q(0.50), l.q(0.99)
	if secs > 0 {
		st.OpsPerSec = float64(st.Ops) / secs
	}
	return st
}
