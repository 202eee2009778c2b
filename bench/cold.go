package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// Cold-start variants compared by the target.
const (
	coldOurs  = "entraredis.NewClient"
	coldPlain = "plain go-redis, static password (reference)"
)

// coldRow is one variant: the median of its runs' figures (each figure's own
// median), with every run's Total kept for the spread.
type coldRow struct {
	Variant    string
	Goroutines int
	coldRun
	Totals []time.Duration // each run's constructor call → last reply
}

// coldRun is one run of one variant.
type coldRun struct {
	Setup         time.Duration // constructor (our NewClient waits for the first token)
	FirstReply    time.Duration // from the release of the goroutines
	AllReplies    time.Duration
	FromStart     time.Duration // from the constructor call to the first reply
	Total         time.Duration // from the constructor call to the last reply
	TokenRequests int64
	Minted        int64
	Dials         int64
	Errs          int64
}

// runCold starts a new client and releases cfg.ColdGoroutines goroutines at
// once, each issuing its first command.
func runCold(ctx context.Context, cfg config, logf func(string, ...any)) ([]coldRow, error) {
	srv, pass, err := startStatic()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cred := srv.Credential()
	variants := []struct {
		name string
		make func() (redis.UniversalClient, func(), error)
	}{
		{coldOurs, func() (redis.UniversalClient, func(), error) {
			c, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol},
				&entraredis.Options{Options: entratoken.Options{Logger: quiet}})
			if err != nil {
				return nil, nil, err
			}
			return c, func() { c.Close() }, nil
		}},
		{"NewCredentials + redis.NewClient (first token not awaited)", func() (redis.UniversalClient, func(), error) {
			creds, err := entraredis.NewCredentials(cred, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
			if err != nil {
				return nil, nil, err
			}
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, StreamingCredentialsProvider: creds})
			return c, func() { c.Close(); creds.Close() }, nil
		}},
		{coldPlain, func() (redis.UniversalClient, func(), error) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, Username: cred.ObjectID(), Password: pass})
			return c, func() { c.Close() }, nil
		}},
	}
	runs := make([][]coldRun, len(variants))
	for n := range cfg.ColdRuns {
		for k := range variants {
			i := k
			if n%2 == 1 { // A,B,C,C,B,A,...: linear drift cancels
				i = len(variants) - 1 - k
			}
			v := variants[i]
			c, err := coldOnce(ctx, cfg, srv, cred, v.make)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			runs[i] = append(runs[i], c)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var rows []coldRow
	for i, v := range variants {
		row := coldRow{Variant: v.name, Goroutines: cfg.ColdGoroutines, coldRun: medianRun(runs[i])}
		for _, c := range runs[i] {
			row.Totals = append(row.Totals, c.Total)
		}
		lo, hi := row.totalRange()
		logf("cold %-55s %d runs, medians: setup %v, first reply %v after release, all replies %v after the constructor call (%v–%v), %d token requests, %d dials, %d errors",
			v.name, len(runs[i]), row.Setup, row.FirstReply, row.Total, lo, hi, row.TokenRequests, row.Dials, row.Errs)
		rows = append(rows, row)
	}
	return rows, nil
}

// coldOnce builds one client with mk and releases cfg.ColdGoroutines first
// commands on it at once.
func coldOnce(ctx context.Context, cfg config, srv *entraredistest.Server, cred *entraredistest.Credential, mk func() (redis.UniversalClient, func(), error)) (coldRun, error) {
	req0, minted0, acc0 := cred.Requests(), cred.Minted(), srv.Stats().Accepted
	t0 := time.Now()
	rdb, closeFn, err := mk()
	if err != nil {
		return coldRun{}, err
	}
	defer closeFn()
	row := coldRun{Setup: time.Since(t0)}
	var first atomic.Int64 // ns since t0
	var errs atomic.Int64
	var wg, ready sync.WaitGroup
	gate := make(chan struct{})
	for i := range cfg.ColdGoroutines {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-gate
			err := rdb.Get(ctx, fmt.Sprintf("cold:%d", i)).Err()
			if err != nil && !errors.Is(err, redis.Nil) {
				errs.Add(1)
				return
			}
			first.CompareAndSwap(0, int64(time.Since(t0)))
		})
	}
	ready.Wait()
	release := time.Now()
	close(gate)
	wg.Wait()
	row.AllReplies = time.Since(release)
	row.Total = time.Since(t0)
	if f := first.Load(); f > 0 {
		row.FromStart = time.Duration(f)
		row.FirstReply = row.FromStart - release.Sub(t0)
	}
	row.Errs = errs.Load()
	row.TokenRequests = cred.Requests() - req0
	row.Minted = cred.Minted() - minted0
	row.Dials = srv.Stats().Accepted - acc0
	return row, nil
}

// medianRun returns each figure's median over the runs; the errors are summed
// and the token requests are the most any run made.
func medianRun(rs []coldRun) coldRun {
	med := func(f func(coldRun) time.Duration) time.Duration {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = float64(f(r))
		}
		m, _, _ := spread(xs)
		return time.Duration(m)
	}
	out := coldRun{
		Setup:      med(func(r coldRun) time.Duration { return r.Setup }),
		FirstReply: med(func(r coldRun) time.Duration { return r.FirstReply }),
		AllReplies: med(func(r coldRun) time.Duration { return r.AllReplies }),
		FromStart:  med(func(r coldRun) time.Duration { return r.FromStart }),
		Total:      med(func(r coldRun) time.Duration { return r.Total }),
	}
	for _, r := range rs {
		out.TokenRequests = max(out.TokenRequests, r.TokenRequests)
		out.Minted = max(out.Minted, r.Minted)
		out.Dials = max(out.Dials, r.Dials)
		out.Errs += r.Errs
	}
	return out
}

// totalRange returns the fastest and slowest run's Total.
func (r coldRow) totalRange() (lo, hi time.Duration) {
	if len(r.Totals) == 0 {
		return r.Total, r.Total
	}
	return slices.Min(r.Totals), slices.Max(r.Totals)
}
