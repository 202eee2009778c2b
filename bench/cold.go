package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
)

type coldRow struct {
	Variant       string
	Goroutines    int
	Setup         time.Duration // constructor (our NewClient waits for the first token)
	FirstReply    time.Duration // from the release of the goroutines
	AllReplies    time.Duration
	FromStart     time.Duration // from the constructor call to the first reply
	TokenRequests int64
	Minted        int64
	Dials         int64
	Errs          int64
}

// runCold starts a new client and releases cfg.ColdGoroutines goroutines at
// once, each issuing its first command.
func runCold(ctx context.Context, cfg config, logf func(string, ...any)) ([]coldRow, error) {
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
	variants := []struct {
		name string
		make func() (redis.UniversalClient, func(), error)
	}{
		{"entraredis.NewClient", func() (redis.UniversalClient, func(), error) {
			c, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol},
				&entraredis.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			return c, func() { c.Close() }, nil
		}},
		{"NewCredentials + redis.NewClient (first token not awaited)", func() (redis.UniversalClient, func(), error) {
			creds, err := entraredis.NewCredentials(cred, &entraredis.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, StreamingCredentialsProvider: creds})
			return c, func() { c.Close(); creds.Close() }, nil
		}},
		{"plain go-redis, static password (reference)", func() (redis.UniversalClient, func(), error) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, Username: cred.ObjectID(), Password: pass})
			return c, func() { c.Close() }, nil
		}},
	}
	var rows []coldRow
	for _, v := range variants {
		req0, minted0, acc0 := cred.Requests(), cred.Minted(), srv.Stats().Accepted
		t0 := time.Now()
		rdb, closeFn, err := v.make()
		if err != nil {
			return rows, fmt.Errorf("%s: %w", v.name, err)
		}
		setup := time.Since(t0)
		row := coldRow{Variant: v.name, Goroutines: cfg.ColdGoroutines, Setup: setup}
		var first atomic.Int64 // ns since release
		var errs atomic.Int64
		var wg sync.WaitGroup
		gate := make(chan struct{})
		var ready sync.WaitGroup
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
		if f := first.Load(); f > 0 {
			row.FromStart = time.Duration(f)
			row.FirstReply = row.FromStart - release.Sub(t0)
		}
		row.Errs = errs.Load()
		row.TokenRequests = cred.Requests() - req0
		row.Minted = cred.Minted() - minted0
		row.Dials = srv.Stats().Accepted - acc0
		closeFn()
		logf("cold %-55s setup %v, first reply %v after release, %d token requests, %d dials, %d errors",
			v.name, row.Setup, row.FirstReply, row.TokenRequests, row.Dials, row.Errs)
		rows = append(rows, row)
	}
	return rows, nil
}
