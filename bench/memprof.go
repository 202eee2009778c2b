package main

import (
	"runtime"
	"strings"
)

// provider attributes live heap to the code a credentials provider brings:
// entraredis itself (the root package only) and go-redis' streaming
// credentials machinery, which only runs when a StreamingCredentialsProvider
// is set.
type providerHeap struct {
	Entraredis, Streaming int64 // live bytes
}

// withExactProfile runs f with every allocation profiled (MemProfileRate 1)
// and returns the live bytes, after GC, whose allocation stack passes
// through entraredis' root package or go-redis' streaming credentials code.
// Allocations made before f are not counted (they were sampled at the
// default rate, so they are mostly absent from the profile, and stacks
// outside those packages are ignored anyway).
func withExactProfile(f func() error) (providerHeap, error) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	err := f()
	runtime.MemProfileRate = old
	var ph providerHeap
	if err != nil {
		return ph, err
	}
	runtime.GC()
	runtime.GC() // the profile reflects the last completed cycle
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		n, ok = runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:n]
			break
		}
	}
	for _, r := range recs {
		live := r.InUseBytes()
		if live <= 0 {
			continue
		}
		switch classify(r.Stack()) {
		case "entraredis":
			ph.Entraredis += live
		case "streaming":
			ph.Streaming += live
		}
	}
	return ph, nil
}

func classify(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	for {
		fr, more := frames.Next()
		fn := fr.Function
		switch {
		case fn == "github.com/entraredis/entraredis.NewClient",
			strings.HasPrefix(fn, "github.com/entraredis/entraredis.NewClusterClient"):
			// the construction of the client, or of a cluster node's client
			// (NewClusterClient's NewClient wrapper): go-redis' per-pool
			// structures, the same for a plain client; and for NewClient,
			// allocations made before the exact profile started, sampled at
			// the default rate
			return ""
		case strings.HasPrefix(fn, "github.com/entraredis/entraredis.(*hook)."):
			// the dial and process hooks wrap go-redis' own work (TLS
			// handshakes, commands): not the provider's
			continue
		case strings.HasPrefix(fn, "github.com/entraredis/entraredis."):
			return "entraredis"
		case strings.HasPrefix(fn, "github.com/redis/go-redis/v9/internal/auth/streaming."),
			strings.HasPrefix(fn, "github.com/redis/go-redis/v9/auth."):
			return "streaming"
		}
		if !more {
			return ""
		}
	}
}
