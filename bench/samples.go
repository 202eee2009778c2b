package main

import (
	"slices"
	"time"
)

// sample is one command: when it started (µs since the run's origin) and how
// long it took (ns, capped at ~4.29 s). 8 bytes, so a 60 s run at 50k ops/s
// holds 24 MB at most.
type sample struct {
	at  uint32 // µs since origin
	lat uint32 // ns
}

// recorder is one worker's samples; workers never share one.
type recorder struct {
	origin time.Time
	s      []sample
	errs   int64
	ops    int64
}

func newRecorder(origin time.Time, capHint int) *recorder {
	return &recorder{origin: origin, s: make([]sample, 0, capHint)}
}

func (r *recorder) add(start time.Time, d time.Duration, err error) {
	r.ops++
	if err != nil {
		r.errs++
	}
	ns := d.Nanoseconds()
	if ns > int64(^uint32(0)) {
		ns = int64(^uint32(0))
	}
	r.s = append(r.s, sample{at: uint32(start.Sub(r.origin).Microseconds()), lat: uint32(ns)})
}

// lats is a sorted set of latencies.
type lats []uint32

func sortedLats(ss []sample, keep func(sample) bool) lats {
	out := make(lats, 0, len(ss))
	for _, s := range ss {
		if keep == nil || keep(s) {
			out = append(out, s.lat)
		}
	}
	slices.Sort(out)
	return out
}

// q returns the q-quantile (0..1), nearest rank; 0 when empty.
func (l lats) q(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l)) + 0.5)
	if i >= len(l) {
		i = len(l) - 1
	}
	if i < 0 {
		i = 0
	}
	return time.Duration(l[i])
}

func (l lats) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return time.Duration(l[len(l)-1])
}

func merge(rs []*recorder) (all []sample, ops, errs int64) {
	n := 0
	for _, r := range rs {
		n += len(r.s)
	}
	all = make([]sample, 0, n)
	for _, r := range rs {
		all = append(all, r.s...)
		ops += r.ops
		errs += r.errs
	}
	return all, ops, errs
}
