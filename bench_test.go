package entraredis

// Micro-benchmarks of what entraredis adds to go-redis. Run them with
//
//	go test -run '^$' -bench . -benchmem -benchtime 2s .
//
// They are not part of the test command's default run (no -bench).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/auth"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

var benchQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type benchListener struct{ n int }

func (l *benchListener) OnNext(auth.Credentials) { l.n++ }
func (l *benchListener) OnError(error)           {}

// benchCredentials returns ready Credentials over an emulator credential
// with 1-hour tokens (no network: the issuer signs in process).
func benchCredentials(b *testing.B) (*Credentials, *entraredistest.Credential) {
	b.Helper()
	is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cred := is.NewCredential(entraredistest.CredentialOptions{})
	c, err := NewCredentials(cred, &Options{Options: entratoken.Options{Logger: benchQuiet}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.WaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c, cred
}

// BenchmarkSubscribeUnsubscribe is what every new connection costs the
// provider (go-redis calls Subscribe inside each dial) and what its removal
// costs, with 0 and 1,000 other connections subscribed.
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	for _, others := range []int{0, 1000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			c, _ := benchCredentials(b)
			for range others {
				if _, _, err := c.Subscribe(&benchListener{}); err != nil {
					b.Fatal(err)
				}
			}
			l := &benchListener{}
			b.ReportAllocs()
			for b.Loop() {
				_, unsub, err := c.Subscribe(l)
				if err != nil {
					b.Fatal(err)
				}
				unsub()
			}
		})
	}
}

// BenchmarkRoundTrip is one GET through the emulator's TLS endpoint in front
// of redis-server, with plain go-redis and a static password, and with
// entraredis (in-place re-authenticating connections, its hook), serially and from 32
// goroutines.
func BenchmarkRoundTrip(b *testing.B) {
	entraredistest.RequireRedisServer(b)
	srv, err := entraredistest.Start(entraredistest.Options{Backend: entraredistest.BackendRedisServer})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cred := srv.Credential()
	now := time.Now()
	pass, err := srv.Issuer().Mint(entraredistest.TokenSpec{ObjectID: cred.ObjectID(), IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	clients := []struct {
		name string
		make func(pool int) (redis.Cmdable, func(), error)
	}{
		{"static-password", func(pool int) (redis.Cmdable, func(), error) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: pool, Username: cred.ObjectID(), Password: pass})
			return c, func() { c.Close() }, nil
		}},
		{"entraredis", func(pool int) (redis.Cmdable, func(), error) {
			c, err := NewClient(ctx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: pool}, &Options{Options: entratoken.Options{Logger: benchQuiet}})
			if err != nil {
				return nil, nil, err
			}
			return c, func() { c.Close() }, nil
		}},
	}
	for _, par := range []int{1, 32} {
		for _, cl := range clients {
			b.Run(fmt.Sprintf("%s/goroutines=%d", cl.name, par), func(b *testing.B) {
				rdb, closeFn, err := cl.make(par)
				if err != nil {
					b.Fatal(err)
				}
				defer closeFn()
				if err := rdb.Set(ctx, "rt", "value-0123456789", 0).Err(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				if par == 1 {
					for b.Loop() {
						if err := rdb.Get(ctx, "rt").Err(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism((par + 1) / 2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := rdb.Get(ctx, "rt").Err(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
