package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// loadResult is what one load run saw.
type loadResult struct {
	samples   []sample
	ops, errs int64
	elapsed   time.Duration
	cpu       time.Duration // process CPU during the run, when measured
	firstErrs []string
}

func (r *loadResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// kvOp runs one command of the load on some client: SET key val when set,
// else GET key (a missing key is no error).
type kvOp func(ctx context.Context, key, val string, set bool) error

// goRedisOp is kvOp on a go-redis client.
func goRedisOp(rdb redis.Cmdable) kvOp {
	return func(ctx context.Context, key, val string, set bool) error {
		if set {
			return rdb.Set(ctx, key, val, 0).Err()
		}
		if err := rdb.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	}
}

// runLoad runs alternating SET/GET (one command per op, a 16-byte value,
// one key per goroutine) from g goroutines for d, recording each command's
// latency relative to origin. It stops early when ctx ends.
func runLoad(ctx context.Context, rdb redis.Cmdable, g int, d time.Duration, origin time.Time, tag string) *loadResult {
	return runOps(ctx, goRedisOp(rdb), g, d, origin, tag)
}

// runOps is runLoad on any client.
func runOps(ctx context.Context, op kvOp, g int, d time.Duration, origin time.Time, tag string) *loadResult {
	rs := make([]*recorder, g)
	var mu sync.Mutex
	var firstErrs []string
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	capHint := 1024
	for i := range g {
		rs[i] = newRecorder(origin, capHint)
		wg.Go(func() {
			r := rs[i]
			key := fmt.Sprintf("bench:%s:{%d}", tag, i)
			val := "value-0123456789"
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				err := op(ctx, key, val, n&1 == 0)
				if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return // the run was stopped under this command: not a failure
				}
				r.add(t0, time.Since(t0), err)
				if err != nil {
					mu.Lock()
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, err.Error())
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res := &loadResult{elapsed: time.Since(start), firstErrs: firstErrs}
	res.samples, res.ops, res.errs = merge(rs)
	return res
}

// warmUp runs the load briefly, unrecorded, so that the pool holds its
// connections before a measurement starts.
func warmUp(ctx context.Context, rdb redis.Cmdable, g int, d time.Duration, tag string) error {
	return warmOps(ctx, goRedisOp(rdb), g, d, tag)
}

// warmOps is warmUp on any client.
func warmOps(ctx context.Context, op kvOp, g int, d time.Duration, tag string) error {
	res := runOps(ctx, op, g, d, time.Now(), tag)
	if res.errs > 0 {
		return fmt.Errorf("warm-up: %d errors, first: %v", res.errs, res.firstErrs)
	}
	return nil
}
