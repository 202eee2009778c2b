package entraredistest

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/entraredistest/internal/emulator"
)

// benchClients is the number of concurrent clients of BenchmarkEndpointOverhead.
const benchClients = 32

// BenchmarkEndpointOverhead measures GET/SET (alternating, one command per
// op) with 32 concurrent clients straight to redis-server, then through the
// endpoint in plaintext and in TLS, in front of the same redis-server. The
// endpoint sub-benchmarks report their ratio to the direct one as
// "x-direct" (1.15 = 15% slower). "cpu-ns/op" is the CPU time of the test
// process (clients and endpoint) plus redis-server per op, and
// "x-direct-cpu" its ratio: steadier than ns/op on a busy machine.
//
//	go test -run '^$' -bench Overhead -benchtime 3s ./entraredistest/
func BenchmarkEndpointOverhead(b *testing.B) {
	RequireRedisServer(b)
	srv, err := Start(Options{Backend: BackendRedisServer})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	// A plaintext endpoint in front of the same backend.
	network, baddr := srv.be.endpointAddr()
	plain, err := emulator.NewEndpoint(emulator.EndpointConfig{
		Authenticate:   authenticator(srv.issuer, srv.dir),
		BackendAddr:    baddr,
		BackendNetwork: network,
		Users:          srv.users,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()

	cred := srv.Credential()
	tok := token(&testing.T{}, cred)
	var direct, directCPU float64
	run := func(name string, opts *redis.Options) {
		b.Run(name, func(b *testing.B) {
			opts.PoolSize = benchClients
			opts.MinIdleConns = benchClients
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			ctx := context.Background()
			warm(b, ctx, rdb)
			var seq atomic.Int64
			b.SetParallelism((benchClients + 1) / max(1, runtimeProcs()))
			cpu0 := cpuTime(b, srv)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := "k" + strconv.FormatInt(seq.Add(1), 10)
				i := 0
				for pb.Next() {
					var err error
					if i&1 == 0 {
						err = rdb.Set(ctx, key, "value-0123456789", 0).Err()
					} else {
						err = rdb.Get(ctx, key).Err()
					}
					if err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			// CPU time of this process (clients and endpoint) plus
			// redis-server per op: less sensitive to a busy machine than
			// ns/op.
			cpuop := float64((cpuTime(b, srv) - cpu0).Nanoseconds()) / float64(b.N)
			b.ReportMetric(cpuop, "cpu-ns/op")
			nsop := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if name == "direct" {
				direct, directCPU = nsop, cpuop
			} else if direct > 0 {
				b.ReportMetric(nsop/direct, "x-direct")
				if directCPU > 0 {
					b.ReportMetric(cpuop/directCPU, "x-direct-cpu")
				}
			}
		})
	}
	run("direct", srv.BackendOptions())
	run("endpoint-plaintext", &redis.Options{Addr: plain.Addr().String(), Username: cred.ObjectID(), Password: tok})
	run("endpoint-tls", &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Username: cred.ObjectID(), Password: tok})
}

// warm opens all pool connections before timing.
func warm(b *testing.B, ctx context.Context, rdb *redis.Client) {
	var wg sync.WaitGroup
	for i := 0; i < benchClients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for rdb.PoolStats().TotalConns < benchClients && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
