package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
)

// Provider kinds of the rotation runs.
const (
	kindOurs  = "entraredis"
	kindNaive = "naive streaming"
	kindCPC   = "CredentialsProviderContext"
)

type rotRow struct {
	Kind             string
	Goroutines, Pool int
	Dur              time.Duration
	TokenLife        time.Duration
	Rotations        int64
	Ops, Errs        int64
	OpsPerSec        float64
	Dials            int64 // accepted during the measured run: beyond the warm pool
	ExpiryCloses     int64
	TokenRequests    int64 // GetToken calls during the run
	Minted           int64
	Auths            int64 // Auths+ReAuths during the run
	ReAuths          int64
	RefusedAuths     int64
	SteadyP99        time.Duration // samples outside every post-rotation window
	AfterP99         time.Duration // samples inside the windows, pooled
	WorstAfterP99    time.Duration // the worst window's p99
	AfterMax         time.Duration
	SteadyMax        time.Duration
	Windows          int
	Event            string // what starts a window
	FirstErrs        []string
}

func (r rotRow) per(n int64) float64 {
	if r.Rotations == 0 {
		return float64(n)
	}
	return float64(n) / float64(r.Rotations)
}

func (r rotRow) p99Ratio() float64 {
	if r.SteadyP99 == 0 {
		return 0
	}
	return float64(r.AfterP99) / float64(r.SteadyP99)
}

// runRotations runs our client for cfg.RotDur at every goroutine count and
// pool size, then (when cfg.RotCompare) the two comparison providers for
// cfg.RotCmpDur each.
func runRotations(ctx context.Context, cfg config, logf func(string, ...any)) ([]rotRow, error) {
	var rows []rotRow
	kinds := []string{kindOurs}
	if cfg.RotCompare {
		kinds = append(kinds, kindNaive, kindCPC)
	}
	for _, kind := range kinds {
		d := cfg.RotDur
		if kind != kindOurs {
			d = cfg.RotCmpDur
		}
		for _, g := range cfg.RotConc {
			for _, p := range cfg.RotPool {
				row, err := runRotation(ctx, cfg, kind, g, p, d)
				if err != nil {
					return rows, fmt.Errorf("%s G=%d P=%d: %w", kind, g, p, err)
				}
				logf("rotation %-27s G=%3d P=%2d %v: %d rotations, %d errors, %.1f dials/rot, %.1f expiry closes/rot, %.2f token req/rot, p99 after/steady %v/%v",
					kind, g, p, d, row.Rotations, row.Errs, row.per(row.Dials), row.per(row.ExpiryCloses), row.per(row.TokenRequests), row.AfterP99, row.SteadyP99)
				rows = append(rows, row)
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
			}
		}
	}
	return rows, nil
}

func runRotation(ctx context.Context, cfg config, kind string, g, pool int, d time.Duration) (rotRow, error) {
	row := rotRow{Kind: kind, Goroutines: g, Pool: pool, Dur: d, TokenLife: cfg.RotToken}
	srv, err := startServer(cfg.RotToken)
	if err != nil {
		return row, err
	}
	defer srv.Close()
	cred := srv.Credential()
	base := redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool}

	var (
		rdb    redis.UniversalClient
		mu     sync.Mutex
		ourEvs []time.Time
		ours   *entraredis.Client
		ts     *tokenSource
	)
	switch kind {
	case kindOurs:
		first := true
		ours, err = entraredis.NewClient(ctx, cred, &base, &entraredis.Options{Logger: quiet, OnTokenRefreshed: func(entraredis.TokenRefreshed) {
			mu.Lock()
			if !first {
				ourEvs = append(ourEvs, time.Now())
			}
			first = false
			mu.Unlock()
		}})
		if err != nil {
			return row, err
		}
		rdb = ours
		row.Event = "token installed"
	case kindNaive:
		n, err := newNaiveStreaming(ctx, cred, cred.ObjectID())
		if err != nil {
			return row, err
		}
		defer n.Close()
		ts = n.ts
		o := base
		o.StreamingCredentialsProvider = n
		rdb = redis.NewClient(&o)
		row.Event = "token installed"
	case kindCPC:
		c, err := newCachedProvider(ctx, cred, cred.ObjectID())
		if err != nil {
			return row, err
		}
		defer c.Close()
		ts = c.ts
		o := base
		o.CredentialsProviderContext = c.credentials
		rdb = redis.NewClient(&o)
		row.Event = "previous token expired"
	}
	defer rdb.Close()

	if err := warmUp(ctx, rdb, g, cfg.RotWarm, "rot"); err != nil {
		return row, err
	}
	before := srv.Stats()
	req0, minted0 := cred.Requests(), cred.Minted()
	var rot0 int64
	if ours != nil {
		rot0 = ours.Status().Rotations
	}
	origin := time.Now()
	res := runLoad(ctx, rdb, g, d, origin, "rot")
	end := origin.Add(res.elapsed)
	after := srv.Stats()

	row.Ops, row.Errs, row.OpsPerSec, row.FirstErrs = res.ops, res.errs, res.opsPerSec(), res.firstErrs
	row.Dials = after.Accepted - before.Accepted
	row.ExpiryCloses = after.ExpiryCloses - before.ExpiryCloses
	row.TokenRequests = cred.Requests() - req0
	row.Minted = cred.Minted() - minted0
	row.Auths = (after.Auths - before.Auths) + (after.ReAuths - before.ReAuths)
	row.ReAuths = after.ReAuths - before.ReAuths
	row.RefusedAuths = after.RefusedAuths - before.RefusedAuths

	var events []time.Time
	switch kind {
	case kindOurs:
		row.Rotations = ours.Status().Rotations - rot0
		mu.Lock()
		events = slices.Clone(ourEvs)
		mu.Unlock()
	case kindNaive:
		inst, _ := ts.rotations()
		events = inst
	case kindCPC:
		_, exp := ts.rotations()
		events = exp
	}
	if kind != kindOurs {
		inst, _ := ts.rotations()
		row.Rotations = int64(countIn(inst, origin, end))
	}
	windows := windowsIn(events, origin, end, cfg.RotWindow)
	row.Windows = len(windows)
	row.SteadyP99, row.SteadyMax, row.AfterP99, row.WorstAfterP99, row.AfterMax = windowStats(res.samples, origin, windows, cfg.RotWindow)
	return row, nil
}

func countIn(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// windowsIn returns the start of each event window that begins inside the
// run, as µs offsets from origin.
func windowsIn(events []time.Time, origin, end time.Time, w time.Duration) []uint32 {
	var out []uint32
	for _, e := range events {
		if e.Before(origin) || !e.Before(end) {
			continue
		}
		out = append(out, uint32(e.Sub(origin).Microseconds()))
	}
	slices.Sort(out)
	return out
}

// windowStats splits the samples into those that started inside a window
// after an event and the rest (the steady state of the same run).
func windowStats(ss []sample, origin time.Time, wins []uint32, w time.Duration) (steadyP99, steadyMax, afterP99, worstP99, afterMax time.Duration) {
	wl := uint32(w.Microseconds())
	which := func(s sample) int {
		// the last window starting at or before s.at
		i, found := slices.BinarySearch(wins, s.at)
		if !found {
			i--
		}
		if i >= 0 && s.at-wins[i] < wl {
			return i
		}
		return -1
	}
	per := make([][]sample, len(wins))
	var steady, after []sample
	for _, s := range ss {
		if i := which(s); i >= 0 {
			per[i] = append(per[i], s)
			after = append(after, s)
		} else {
			steady = append(steady, s)
		}
	}
	sl := sortedLats(steady, nil)
	al := sortedLats(after, nil)
	for _, p := range per {
		if q := sortedLats(p, nil).q(0.99); q > worstP99 {
			worstP99 = q
		}
	}
	return sl.q(0.99), sl.max(), al.q(0.99), worstP99, al.max()
}

var _ = entraredistest.Stats{}
