// Package demo runs the entraredis demo: the Entra emulator, a client with
// tokens of a few seconds, a steady load and a live line each second.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// Config configures Run. Zero fields take the defaults below.
type Config struct {
	// Duration of the load. Default 30 s.
	Duration time.Duration
	// TokenLifetime of the emulator's tokens. Default 6 s.
	TokenLifetime time.Duration
	// Concurrency is the number of goroutines doing GET/SET. Default 16.
	Concurrency int
	// Backend of the emulator. Default entraredistest.BackendAuto
	// (redis-server when installed, else in-process).
	Backend entraredistest.Backend
	// Logger receives the library's warnings. Default: discard.
	Logger *slog.Logger
}

// Stats are the demo's counters at one instant.
type Stats struct {
	Elapsed       time.Duration // since the load started
	Ops           int64         // commands that succeeded
	Errors        int64         // commands that failed
	Rotations     int64         // tokens installed after the first one (client side)
	TokenRequests int64         // GetToken calls the client made
	Minted        int64         // tokens the emulator minted
	ReAuths       int64         // AUTH on live connections (server side)
	Auths         int64         // AUTH on new connections (server side)
	RefusedAuths  int64         // AUTH the server refused
	ExpiryCloses  int64         // connections the server closed because their token expired
	Accepted      int64         // connections accepted
	Open          int64         // connections open now
	ReauthFailed  int64         // re-AUTHs the library reported as refused
	RefreshFailed int64         // refresh attempts that failed
	FirstError    string        // the first failed command's error, "" when none
}

// Result is the outcome of Run.
type Result struct {
	// Backend is the emulator's backend actually used.
	Backend entraredistest.Backend
	// Limitations are what that backend does not emulate (none for redis-server).
	Limitations []string
	// Final are the counters at the end of the run.
	Final Stats
}

// OK reports whether no command failed.
func (r Result) OK() bool { return r.Final.Errors == 0 }

// Summary is the demo's one-line summary.
func (r Result) Summary() string {
	s := r.Final
	verdict := "OK: no command failed"
	if !r.OK() {
		verdict = fmt.Sprintf("FAILED: %d commands failed (first: %s)", s.Errors, s.FirstError)
	}
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Ops) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("summary: %s on %s backend, %d ops (%.0f/s), %d errors, %d rotations, %d re-AUTHs, %d new-connection AUTHs, %d token requests, %d connections closed for expiry, %d refused AUTHs — %s",
		s.Elapsed.Round(100*time.Millisecond), r.Backend, s.Ops, rate, s.Errors, s.Rotations, s.ReAuths, s.Auths, s.TokenRequests, s.ExpiryCloses, s.RefusedAuths, verdict)
}

func (s Stats) line() string {
	return fmt.Sprintf("%5.1fs  ops %8d  errors %d  rotations %d  re-AUTHs %d  token requests %d  expiry closes %d  conns open %d",
		s.Elapsed.Seconds(), s.Ops, s.Errors, s.Rotations, s.ReAuths, s.TokenRequests, s.ExpiryCloses, s.Open)
}

// Run starts the Entra emulator, a client of this library with tokens of
// cfg.TokenLifetime, and cfg.Concurrency goroutines doing GET/SET until
// cfg.Duration has passed or ctx ends. It prints a line each second and the
// summary to w. It returns an error when the demo could not start; a failed
// command is counted, not returned (see Result.OK).
func Run(ctx context.Context, cfg Config, w io.Writer) (Result, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 6 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TokenLifetime < time.Second {
		return Result{}, fmt.Errorf("token lifetime %s is too short: at least 1s", cfg.TokenLifetime)
	}

	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: cfg.TokenLifetime, Backend: cfg.Backend})
	if err != nil {
		return Result{}, fmt.Errorf("start the emulator: %w", err)
	}
	defer srv.Close()
	res := Result{Backend: srv.Backend(), Limitations: srv.Limitations()}
	fmt.Fprintf(w, "emulator: %s (TLS, certificate for localhost), backend %s", srv.Addr(), srv.Backend())
	if srv.Backend() == entraredistest.BackendRedisServer {
		fmt.Fprint(w, " (a real redis-server behind the Entra proxy)\n")
	} else {
		why := "redis-server not found: in-process fallback"
		if cfg.Backend == entraredistest.BackendInProcess {
			why = "in-process, as asked"
		}
		fmt.Fprintf(w, " (%s; not emulated: %s)\n", why, strings.Join(res.Limitations, "; "))
	}
	cred := srv.Credential()
	// A pool larger than the load: with every connection busy (goroutines >=
	// pool size), go-redis dials a new connection for each one a rotation
	// marks, about one dial per pooled connection per rotation.
	poolSize := 2 * cfg.Concurrency
	fmt.Fprintf(w, "principal %s (Data Owner), tokens of %s; load: %d goroutines of GET/SET for %s, pool of %d connections\n",
		cred.ObjectID(), cfg.TokenLifetime, cfg.Concurrency, cfg.Duration, poolSize)

	var reauthFailed, refreshFailed atomic.Int64
	lt := cfg.TokenLifetime
	opts := &entraredis.Options{
		Options: entratoken.Options{
			RefreshBefore:  lt / 2,
			RefreshJitter:  lt / 20,
			RetryMinDelay:  lt / 100,
			RetryMaxDelay:  lt / 10,
			AttemptTimeout: lt / 4,
			ReauthSpread:   lt / 10,
			Logger:         cfg.Logger,
			OnReauthFailed: func(entraredis.ReauthFailed) { reauthFailed.Add(1) },
			OnRefreshFailed: func(entraredis.RefreshFailed) {
				refreshFailed.Add(1)
			},
		},
	}
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	client, err := entraredis.NewClient(startCtx, cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: poolSize}, opts)
	cancel()
	if err != nil {
		return res, fmt.Errorf("create the client: %w", err)
	}
	defer client.Close()

	var (
		ops, errs  atomic.Int64
		firstErr   string
		firstErrMu sync.Mutex
	)
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			val := "value-" + strconv.Itoa(g)
			for i := 0; loadCtx.Err() == nil; i++ {
				key := "demo:" + strconv.Itoa(g) + ":" + strconv.Itoa(i%64)
				var err error
				if i%2 == 0 {
					err = client.Set(loadCtx, key, val, time.Minute).Err()
				} else {
					err = client.Get(loadCtx, key).Err()
					if errors.Is(err, redis.Nil) {
						err = nil
					}
				}
				if err != nil {
					if loadCtx.Err() != nil {
						return // the end of the run, not a failure
					}
					if errs.Add(1) == 1 {
						firstErrMu.Lock()
						firstErr = err.Error() // entraredis errors never hold a token
						firstErrMu.Unlock()
					}
					continue
				}
				ops.Add(1)
			}
		}()
	}

	snapshot := func() Stats {
		st := client.Status()
		ss := srv.Stats()
		firstErrMu.Lock()
		fe := firstErr
		firstErrMu.Unlock()
		return Stats{
			Elapsed: time.Since(start), Ops: ops.Load(), Errors: errs.Load(),
			Rotations: st.Rotations, TokenRequests: st.TokenRequests, Minted: cred.Minted(),
			ReAuths: ss.ReAuths, Auths: ss.Auths, RefusedAuths: ss.RefusedAuths, ExpiryCloses: ss.ExpiryCloses,
			Accepted: ss.Accepted, Open: ss.Open,
			ReauthFailed: reauthFailed.Load(), RefreshFailed: refreshFailed.Load(), FirstError: fe,
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case <-tick.C:
			fmt.Fprintln(w, snapshot().line())
		}
	}
	wg.Wait()
	res.Final = snapshot()
	fmt.Fprintln(w, res.Summary())
	return res, nil
}
