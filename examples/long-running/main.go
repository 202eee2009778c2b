// Command long-running is a service that uses Azure Redis with Microsoft Entra
// ID for as long as it runs: hours, days, months. Tokens expire every hour or
// day; entraredis replaces them in the background and moves every live
// connection to the new token, so this program never handles expiry itself.
//
//	REDIS_HOST=NAME.redis.cache.windows.net go run ./examples/long-running
//
// It writes and reads a key every second, logs each token refresh and a status
// line every minute, exposes nothing else, and stops on Ctrl-C or SIGTERM.
// REDIS_PORT defaults to 6380; REDIS_USERNAME is needed only for tokens
// without an oid claim.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	host, port := os.Getenv("REDIS_HOST"), os.Getenv("REDIS_PORT")
	if host == "" {
		log.Error("set REDIS_HOST to your cache's host name, for example NAME.redis.cache.windows.net")
		os.Exit(2)
	}
	if port == "" {
		port = "6380"
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Error("no credential", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{
		addr:     net.JoinHostPort(host, port),
		username: os.Getenv("REDIS_USERNAME"),
		every:    time.Second,
		report:   time.Minute,
		log:      log,
	}
	totals, err := serve(ctx, cred, cfg)
	log.Info("stopped", "operations", totals.ops, "errors", totals.errs, "rotations", totals.rotations)
	if err != nil {
		log.Error("could not start", "err", err)
		os.Exit(1)
	}
}

type config struct {
	addr, username string
	tlsConfig      *tls.Config   // nil for Azure; tests pass the emulator's
	every, report  time.Duration // one SET+GET every `every`, a status line every `report`
	options        entraredis.Options
	log            *slog.Logger
}

type totals struct{ ops, errs, rotations int64 }

// serve runs the work loop until ctx ends. A failed command is logged and the
// loop goes on: it is what a service does, and what the library is built to
// make unnecessary.
func serve(ctx context.Context, cred azcore.TokenCredential, cfg config) (totals, error) {
	opts := cfg.options
	opts.Logger = cfg.log
	opts.OnRefreshFailed = func(e entraredis.RefreshFailed) {
		// Connections keep the current token; this only matters if it goes on
		// until e.ExpiresOn.
		cfg.log.Warn("token refresh failed", "attempt", e.Attempt, "next_retry", e.NextRetry, "token_expires", e.ExpiresOn)
	}
	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{
		Addr:      cfg.addr,
		Username:  cfg.username,
		TLSConfig: cfg.tlsConfig,
	}, &opts)
	if err != nil {
		return totals{}, err
	}
	defer rdb.Close()

	var t totals
	tick := time.NewTicker(cfg.every)
	defer tick.Stop()
	status := time.NewTicker(cfg.report)
	defer status.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			t.rotations = rdb.Status().Rotations
			return t, nil
		case <-status.C:
			st := rdb.Status()
			cfg.log.Info("status", "operations", t.ops, "errors", t.errs, "rotations", st.Rotations,
				"token_expires_in", time.Until(st.ExpiresOn).Round(time.Second), "connections", st.Connections)
		case <-tick.C:
			key := "Az:long-running"
			err := rdb.Set(ctx, key, fmt.Sprint(i), time.Hour).Err()
			if err == nil {
				err = rdb.Get(ctx, key).Err()
			}
			t.ops++
			if err != nil && ctx.Err() == nil {
				t.errs++
				cfg.log.Error("command failed", "err", err)
			}
		}
	}
}
