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

// runLoad runs alternating SET/GET (one command per op, a 16-byte value,
// one key per goroutine) from g goroutines for d, recording each command's
// latency relative to origin. It stops early when ctx ends.
func runLoad(ctx context.Context, rdb redis.Cmdable, g int, d time.Duration, origin time.Time, tag string) *loadResult {
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
				var err error
				if n&1 == 0 {
					err = rdb.Set(ctx, key, val, 0).Err()
				} else {
					err = rdb.Get(ctx, key).Err()
					if errors.Is(err, redis.Nil) {
						err = nil
					}
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
	res := runLoad(ctx, rdb, g, d, time.Now(), tag)
	if res.errs > 0 {
		return fmt.Errorf("warm-up: %d errors, first: %v", res.errs, res.firstErrs)
	}
	return nil
}
