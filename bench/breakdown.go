package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/reauth"
)

// breakdownRow is one layer of entraredis' steady-state cost: client A
// against client B in the steady-state harness (interleave), at
// config.BreakdownConc goroutines. Row.Ours is A, Row.Plain is B.
type breakdownRow struct {
	A, B string        // what each client is
	Turn time.Duration // each client's turn per round (Row.Turns is the rounds)
	Row  steadyRow
}

// The clients of the breakdown, from plain go-redis up to entraredis.
const (
	bdPlain = "plain go-redis"
	bdPass  = "go-redis over a pass-through net.Conn"
	bdWrap  = "go-redis over reauth.Conn (the wrapper alone)"
	bdOurs  = "entraredis"
)

// breakdownPairs are the comparisons of the breakdown section, each layer
// against the one below it, and entraredis against plain go-redis in the
// same run: a pass-through net.Conn (the cost of any wrapper: an interface
// call per I/O), the in-place re-authenticating connection alone (its
// framing, counting and deadline bookkeeping, with go-redis' own options),
// and the rest of entraredis over that (options, hooks, dialer).
var breakdownPairs = [][2]string{{bdPass, bdPlain}, {bdWrap, bdPlain}, {bdOurs, bdWrap}, {bdOurs, bdPlain}}

// staticToken is the one token of the wrapper-alone client: the emulator's
// 24-hour password, never rotated.
type staticToken struct{ user, pass string }

func (t staticToken) Username() string     { return t.user }
func (t staticToken) Password() string     { return t.pass }
func (t staticToken) Generation() uint64   { return 1 }
func (t staticToken) ExpiresOn() time.Time { return time.Now().Add(24 * time.Hour) }
func (t staticToken) Token() (staticToken, error) {
	return t, nil
}

// passConn forwards every method to the connection it embeds.
type passConn struct{ net.Conn }

// runBreakdown measures breakdownPairs at cfg.BreakdownConc goroutines, each
// pair interleaved as runSteady interleaves entraredis and plain go-redis,
// against one child emulator. It explains a steady-state CPU ratio; it has
// no target of its own.
func runBreakdown(ctx context.Context, cfg config, logf func(string, ...any)) ([]breakdownRow, error) {
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	g := cfg.BreakdownConc
	base := func() *redis.Options {
		return &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: g}
	}
	// over returns plain go-redis with wrap put around each connection it dials.
	over := func(wrap func(net.Conn) (net.Conn, error), user, pass string) redis.UniversalClient {
		o := base()
		o.Username, o.Password = user, pass
		dial := redis.NewDialer(o)
		o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c, err := wrap(nc)
			if err != nil {
				nc.Close()
			}
			return c, err
		}
		return redis.NewClient(o)
	}
	tok := staticToken{user: srv.ObjectID(), pass: srv.Password()}
	newClient := func(name string) (redis.UniversalClient, error) {
		switch name {
		case bdPlain:
			o := base()
			o.Username, o.Password = tok.user, tok.pass
			return redis.NewClient(o), nil
		case bdPass:
			return over(func(nc net.Conn) (net.Conn, error) { return passConn{nc}, nil }, tok.user, tok.pass), nil
		case bdWrap:
			// The wrapper writes the first AUTH; go-redis has no password.
			// Its connections share a watch, as entraredis' do.
			watch := new(reauth.WriteWatch)
			return over(func(nc net.Conn) (net.Conn, error) {
				return reauth.New[staticToken](nc, tok, reauth.Config{Logger: quiet, Watch: watch})
			}, "", ""), nil
		case bdOurs:
			return entraredis.NewClient(ctx, srv.Credential(), base(), &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
		}
		return nil, fmt.Errorf("no breakdown client %q", name)
	}
	var rows []breakdownRow
	for _, pair := range breakdownPairs {
		row, err := breakdownPair(ctx, cfg, pair, newClient)
		if err != nil {
			return rows, err
		}
		c, _, _ := row.Row.cpuSpread()
		logf("breakdown %3d goroutines: %s / %s: CPU %.3f", g, pair[0], pair[1], c)
		rows = append(rows, row)
	}
	return rows, nil
}

// breakdownPair interleaves the two clients of pair (made by newClient, a
// fresh pair for each block of rounds) at cfg.BreakdownConc goroutines.
func breakdownPair(ctx context.Context, cfg config, pair [2]string, newClient func(string) (redis.UniversalClient, error)) (breakdownRow, error) {
	g := cfg.BreakdownConc
	mk := goRedisMaker(func(i int) (redis.UniversalClient, error) { return newClient(pair[i]) })
	res, ratios, err := interleave(ctx, cfg, g, mk, pair)
	if err != nil {
		return breakdownRow{}, err
	}
	return breakdownRow{A: pair[0], B: pair[1], Turn: cfg.SteadyDur, Row: newSteadyRow(cfg, g, g, res, ratios)}, nil
}
