package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/cmd/entraredis/internal/demo"
	"github.com/entraredis/entraredis/entraredistest"
	_ "github.com/entraredis/entraredis/entraredistest/inprocess" // the test server's fallback without redis-server
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	var (
		duration    = fs.Duration("duration", 30*time.Second, "how long the load runs")
		lifetime    = fs.Duration("token-lifetime", 6*time.Second, "lifetime of the emulator's tokens (at least 1s)")
		concurrency = fs.Int("concurrency", 16, "goroutines doing GET/SET")
		verbose     = fs.Bool("v", false, "print the library's warnings to stderr")
		backend     = fs.String("backend", "auto", "emulator backend: auto (redis-server when installed, else in-process), redis-server, in-process")
	)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *duration <= 0 || *duration > 24*time.Hour || *concurrency <= 0 || *concurrency > 1024 || *lifetime < time.Second {
		fmt.Fprintln(stderr, "entraredis demo: want 0 < --duration <= 24h, 1 <= --concurrency <= 1024, --token-lifetime >= 1s")
		return exitUsage
	}
	cfg := demo.Config{Duration: *duration, TokenLifetime: *lifetime, Concurrency: *concurrency}
	switch *backend {
	case "auto":
		cfg.Backend = entraredistest.BackendAuto
	case "redis-server":
		cfg.Backend = entraredistest.BackendRedisServer
	case "in-process":
		cfg.Backend = entraredistest.BackendInProcess
	default:
		fmt.Fprintf(stderr, "entraredis demo: --backend %q: want auto, redis-server or in-process\n", *backend)
		return exitUsage
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	} else {
		// go-redis logs every connection a re-auth hook sets aside; keep the live lines readable.
		redis.SetLogger(quietLogger{})
	}
	res, err := demo.Run(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "entraredis demo: %v\n", err)
		return exitFailed
	}
	if !res.OK() {
		return exitFailed
	}
	return exitOK
}

// quietLogger drops go-redis' internal log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
