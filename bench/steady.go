package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// clientStat is one client's figures at one goroutine count.
type clientStat struct {
	CPUPerOp  time.Duration // this process's user+system CPU (client and emulator) per command
	OpsPerSec float64
	P50, P99  time.Duration
	Ops, Errs int64
}

type steadyRow struct {
	Goroutines, Pool int
	Ours, Plain      clientStat
	Turns            int
	Blocks           int       // fresh pairs of clients the turns ran on (0 in runs before 2026-12-03 evening: one pair)
	RoundRatios      []float64 // ours/plain throughput of each round
	CPURatios        []float64 // ours/plain CPU per command of each round
}

// ratioSpread returns the median, lowest and highest per-round ratio.
func (r steadyRow) ratioSpread() (med, lo, hi float64) { return spread(r.RoundRatios) }

// cpuSpread returns the median, lowest and highest per-round CPU ratio.
func (r steadyRow) cpuSpread() (med, lo, hi float64) { return spread(r.CPURatios) }

func (r steadyRow) ratio() float64 {
	if r.Plain.OpsPerSec == 0 {
		return 0
	}
	return r.Ours.OpsPerSec / r.Plain.OpsPerSec
}

// startServer starts an emulator in front of redis-server (no fallback: the
// figures would mean nothing on the in-process one).
func startServer(life time.Duration) (*entraredistest.Server, error) {
	return entraredistest.Start(entraredistest.Options{TokenLifetime: life, Backend: entraredistest.BackendRedisServer})
}

// startStatic starts an emulator with 1-hour tokens (nothing rotates) in
// this process, and mints the plain clients' static password for its
// principal (the cold start, which counts the credential's token requests).
func startStatic() (*entraredistest.Server, string, error) {
	srv, err := startServer(time.Hour)
	if err != nil {
		return nil, "", err
	}
	pass, err := staticPassword(srv.Issuer(), srv.Credential().ObjectID())
	if err != nil {
		srv.Close()
		return nil, "", err
	}
	return srv, pass, nil
}

// staticPassword mints one long-lived token for the server's principal: the
// static password of the plain go-redis client.
func staticPassword(is *entraredistest.Issuer, oid string) (string, error) {
	now := time.Now()
	return is.Mint(entraredistest.TokenSpec{ObjectID: oid, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
}

// runSteady compares our client with plain go-redis (static password) at each
// goroutine count, through the same TLS endpoint of a child emulator (so that
// this process's CPU is the clients' alone), both on one 24-hour token
// (nothing rotates). The two clients take turns (see interleave) so that drift
// on a noisy machine hits both alike.
func runSteady(ctx context.Context, cfg config, logf func(string, ...any)) ([]steadyRow, error) {
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	var rows []steadyRow
	for _, g := range cfg.SteadyConc {
		pool := cfg.SteadyPool
		if pool <= 0 {
			pool = g
		}
		mk := goRedisMaker(func(i int) (redis.UniversalClient, error) {
			if i == 1 {
				return redis.NewClient(plainOptions(srv, cfg, pool)), nil
			}
			return newSteadyOurs(ctx, srv, cfg, pool)
		})
		res, ratios, err := interleave(ctx, cfg, g, mk, [2]string{"entraredis", "plain"})
		if err != nil {
			return nil, err
		}
		row := newSteadyRow(cfg, g, pool, res, ratios)
		logf("steady %3d goroutines: entraredis %.0f ops/s p99 %v, plain %.0f ops/s p99 %v, ratio %.3f",
			g, row.Ours.OpsPerSec, row.Ours.P99, row.Plain.OpsPerSec, row.Plain.P99, row.ratio())
		rows = append(rows, row)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// newSteadyOurs is entraredis in the steady state: the child emulator's
// endpoint, a pool of pool connections, the static token from srv's
// credential, nothing logged.
func newSteadyOurs(ctx context.Context, srv *childEmulator, cfg config, pool int) (*entraredis.Client, error) {
	return entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool},
		&entraredis.Options{Options: entratoken.Options{Logger: quiet}})
}

// plainOptions are the options of plain go-redis in the steady state: the
// child emulator's endpoint, a pool of pool connections, and the static
// password (the oid and one 24-hour token).
func plainOptions(srv *childEmulator, cfg config, pool int) *redis.Options {
	return &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool,
		Username: srv.ObjectID(), Password: srv.Password()}
}

// runSteadyControl measures plain go-redis against a second, identical plain
// go-redis client at each of cfg.SteadyControl goroutine counts, exactly as
// runSteady measures entraredis: how far apart two identical clients come out
// is the resolution of the harness on this machine.
func runSteadyControl(ctx context.Context, cfg config, logf func(string, ...any)) ([]steadyRow, error) {
	var rows []steadyRow
	for _, g := range cfg.SteadyControl {
		row, err := steadyControl(ctx, cfg, g, logf)
		if err != nil {
			return rows, err
		}
		rows = append(rows, *row)
	}
	return rows, nil
}

// steadyControl is one control row, at g goroutines.
func steadyControl(ctx context.Context, cfg config, g int, logf func(string, ...any)) (*steadyRow, error) {
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	pool := cfg.SteadyPool
	if pool <= 0 {
		pool = g
	}
	mk := goRedisMaker(func(int) (redis.UniversalClient, error) {
		return redis.NewClient(plainOptions(srv, cfg, pool)), nil
	})
	res, ratios, err := interleave(ctx, cfg, g, mk, [2]string{"plain A", "plain B"})
	if err != nil {
		return nil, err
	}
	row := newSteadyRow(cfg, g, pool, res, ratios)
	c, _, _ := row.cpuSpread()
	t, _, _ := row.ratioSpread()
	logf("steady control %3d goroutines: plain A / plain B: CPU %.3f, throughput %.3f", g, c, t)
	return &row, nil
}

// cpuTotalRatio is the CPU per command of all ours' turns over plain's.
func (r steadyRow) cpuTotalRatio() float64 {
	if r.Plain.CPUPerOp == 0 {
		return 0
	}
	return float64(r.Ours.CPUPerOp) / float64(r.Plain.CPUPerOp)
}

// clientMaker makes client i of a measured pair (0: A, the client measured;
// 1: B, the one it is measured against) and returns its load and a function
// that closes it.
type clientMaker func(i int) (kvOp, func(), error)

// goRedisMaker is the clientMaker of the go-redis clients newClient makes.
func goRedisMaker(newClient func(i int) (redis.UniversalClient, error)) clientMaker {
	return func(i int) (kvOp, func(), error) {
		c, err := newClient(i)
		if err != nil {
			return nil, nil, err
		}
		return goRedisOp(c), func() { c.Close() }, nil
	}
}

// interleave measures the pair of clients mk makes at g goroutines:
// cfg.steadyRounds(g) rounds of one cfg.SteadyDur turn of each, the order
// flipping every round (A,B,B,A,A,B,...: linear drift cancels), measuring the
// process's CPU during each turn. The rounds run in cfg.steadyBlocks(g)
// blocks, each on a fresh pair made in alternating order (A first, then B
// first) and warmed up unmeasured: whatever sets one client instance apart
// from an identical one (where its connections and buffers landed, here and
// in the server) is then noise between blocks, not a bias of the whole run.
// It returns each client's turns and the per-round throughput ratios ops of
// A / ops of B.
func interleave(ctx context.Context, cfg config, g int, mk clientMaker, names [2]string) (res [2][]*loadResult, ratios []float64, err error) {
	rounds, blocks := cfg.steadyRounds(g), cfg.steadyBlocks(g)
	warm := min(300*time.Millisecond, cfg.SteadyDur)
	done := 0
	for b := range blocks {
		n := rounds*(b+1)/blocks - done
		done += n
		order := [2]int{0, 1}
		if b%2 == 1 {
			order = [2]int{1, 0}
		}
		err := func() error {
			var ops [2]kvOp
			for _, i := range order {
				op, closeFn, err := mk(i)
				if err != nil {
					return fmt.Errorf("%s: %w", names[i], err)
				}
				defer closeFn()
				ops[i] = op
			}
			for _, i := range order {
				if err := warmOps(ctx, ops[i], g, warm, "warm"); err != nil {
					return fmt.Errorf("%s: %w", names[i], err)
				}
			}
			return alternate(ctx, n, func(_, i int) error {
				cpu0 := processCPU()
				r := runOps(ctx, ops[i], g, cfg.SteadyDur, time.Now(), "steady")
				r.cpu = processCPU() - cpu0
				res[i] = append(res[i], r)
				return nil
			})
		}()
		if err != nil {
			return res, nil, err
		}
	}
	for round := range res[1] {
		if b := res[1][round].opsPerSec(); b > 0 && round < len(res[0]) {
			ratios = append(ratios, res[0][round].opsPerSec()/b)
		}
	}
	return res, ratios, nil
}

// alternate runs rounds rounds of one turn of each of two clients, the order
// flipping every round (A,B,B,A,A,B,...: linear drift cancels): turn(round,
// i) measures client i. It stops at the first error or when ctx ends. This is
// the one interleaving of the program (steady state, rotation, rueidis).
func alternate(ctx context.Context, rounds int, turn func(round, i int) error) error {
	for round := 0; round < rounds && ctx.Err() == nil; round++ {
		order := [2]int{0, 1}
		if round%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, i := range order {
			if err := turn(round, i); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// newSteadyRow is the row of the turns res of two clients at g goroutines
// on pools of pool connections, as interleave returned them with ratios.
func newSteadyRow(cfg config, g, pool int, res [2][]*loadResult, ratios []float64) steadyRow {
	return steadyRow{Goroutines: g, Pool: pool, Turns: cfg.steadyRounds(g), Blocks: cfg.steadyBlocks(g), Ours: summarize(res[0]), Plain: summarize(res[1]), RoundRatios: ratios, CPURatios: cpuRatios(res)}
}

// cpuCell is a table cell of per-round CPU ratios: the median in bold, its
// 95 % CI (medianCI) and the min–max.
func cpuCell(ratios []float64) string {
	med, lo, hi := spread(ratios)
	cilo, cihi := medianCI(ratios)
	return fmt.Sprintf("**%.3f** (CI %.3f–%.3f; %.2f–%.2f)", med, cilo, cihi, lo, hi)
}

// cpuRatios returns, per round, client 0's CPU per command over client 1's.
func cpuRatios(res [2][]*loadResult) []float64 {
	var out []float64
	for i := range min(len(res[0]), len(res[1])) {
		a, b := res[0][i], res[1][i]
		if a.ops > 0 && b.ops > 0 && b.cpu > 0 {
			out = append(out, (float64(a.cpu)/float64(a.ops))/(float64(b.cpu)/float64(b.ops)))
		}
	}
	return out
}

// spread returns the median (of an even count: the mean of the two middle
// values), lowest and highest of xs (zeros when empty).
func spread(xs []float64) (med, lo, hi float64) {
	n := len(xs)
	if n == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// medianCI is a 95 % confidence interval of the median of xs: the 2.5th and
// 97.5th percentiles of the medians of 2000 bootstrap resamples (a fixed
// seed, so that a report renders the same twice). It is how far the
// median of one run can be trusted: with per-round ratios spread ±10 %, 150
// rounds give about ±0.02.
func medianCI(xs []float64) (lo, hi float64) {
	const resamples = 2000
	n := len(xs)
	if n == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	sample := make([]float64, n)
	for i := range meds {
		for j := range sample {
			sample[j] = xs[rng.IntN(n)]
		}
		meds[i], _, _ = spread(sample)
	}
	slices.Sort(meds)
	return meds[resamples*25/1000], meds[resamples*975/1000-1]
}

// summarize pools the turns of one client.
func summarize(rs []*loadResult) clientStat {
	var all []sample
	var st clientStat
	var secs float64
	var cpu time.Duration
	for _, r := range rs {
		cpu += r.cpu
		all = append(all, r.samples...)
		st.Ops += r.ops
		st.Errs += r.errs
		secs += r.elapsed.Seconds()
	}
	l := sortedLats(all, nil)
	st.P50, st.P99 = l.q(0.50), l.q(0.99)
	if secs > 0 {
		st.OpsPerSec = float64(st.Ops) / secs
	}
	if st.Ops > 0 {
		st.CPUPerOp = cpu / time.Duration(st.Ops)
	}
	return st
}

// processCPU returns this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
