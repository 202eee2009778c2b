package main

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/rueidisentra"
)

// rueidisSteadyRow compares rueidisentra with plain rueidis (static password)
// at one goroutine count.
type rueidisSteadyRow struct {
	Goroutines  int
	Ours, Plain clientStat
	Rounds      int
	Blocks      int       // fresh pairs of clients the rounds ran on (0 in runs before 2026-12-03 evening: one pair)
	OpsRatios   []float64 // ours/plain throughput of each round
	CPURatios   []float64 // ours/plain CPU per command of each round
}

// rueidisRotRow is one rotation run of rueidisentra under load.
type rueidisRotRow struct {
	Topology                                    string
	Goroutines                                  int
	Dur                                         time.Duration
	Rotations, Ops, Errs                        int64
	OpsPerSec                                   float64
	Dials, ExpiryCloses, TokenRequests, ReAuths int64
	Conns                                       int // open connections at the end
	FirstErrs                                   []string
}

func (x rueidisRotRow) per(n int64) float64 {
	if x.Rotations == 0 {
		return 0
	}
	return float64(n) / float64(x.Rotations)
}

func median(xs []float64) float64 {
	m, _, _ := spread(xs)
	return m
}

// rueidisOp is kvOp on a rueidis client.
func rueidisOp(c rueidis.Client) kvOp {
	return func(ctx context.Context, key, val string, set bool) error {
		if set {
			return c.Do(ctx, c.B().Set().Key(key).Value(val).Build()).Error()
		}
		if err := c.Do(ctx, c.B().Get().Key(key).Build()).Error(); !rueidis.IsRedisNil(err) {
			return err
		}
		return nil
	}
}

// plainRueidisOption is the option of plain rueidis in the steady state:
// the child emulator's endpoint and the static password (the oid and one
// 24-hour token).
func plainRueidisOption(srv *childEmulator) rueidis.ClientOption {
	return rueidis.ClientOption{InitAddress: []string{srv.Addr()}, TLSConfig: srv.TLSConfig(), Username: srv.ObjectID(), Password: srv.Password()}
}

// rueidisMaker is the clientMaker of the rueidis clients newClient makes.
func rueidisMaker(newClient func(i int) (rueidis.Client, error)) clientMaker {
	return func(i int) (kvOp, func(), error) {
		c, err := newClient(i)
		if err != nil {
			return nil, nil, err
		}
		return rueidisOp(c), c.Close, nil
	}
}

// runRueidisSteady compares rueidisentra with plain rueidis (user = the oid,
// password = one 24-hour token) through the same TLS endpoint (a child
// emulator, so that this process's CPU is the clients' alone), the same
// token for rueidisentra (nothing rotates), auto-pipelining on (rueidis' default), turns
// interleaved like the go-redis steady state.
func runRueidisSteady(ctx context.Context, cfg config, logf func(string, ...any)) ([]rueidisSteadyRow, error) {
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	var rows []rueidisSteadyRow
	for _, g := range cfg.SteadyConc {
		mk := rueidisMaker(func(i int) (rueidis.Client, error) {
			if i == 1 {
				return rueidis.NewClient(plainRueidisOption(srv))
			}
			return rueidisentra.NewClient(ctx, srv.Credential(), rueidis.ClientOption{InitAddress: []string{srv.Addr()}, TLSConfig: srv.TLSConfig()}, &rueidisentra.Options{Options: entratoken.Options{Logger: quiet}})
		})
		res, ratios, err := interleave(ctx, cfg, g, mk, [2]string{"rueidisentra", "plain rueidis"})
		if err != nil {
			return nil, err
		}
		row := rueidisSteadyRow{Goroutines: g, Ours: summarize(res[0]), Plain: summarize(res[1]), Rounds: cfg.steadyRounds(g), Blocks: cfg.steadyBlocks(g), OpsRatios: ratios}
		row.CPURatios = cpuRatios(res)
		logf("rueidis steady %3d goroutines: ours %.0f ops/s %.1f µs/op, plain %.0f ops/s %.1f µs/op; medians: throughput %.3f, CPU %.3f",
			g, row.Ours.OpsPerSec, us(row.Ours.CPUPerOp), row.Plain.OpsPerSec, us(row.Plain.CPUPerOp), median(row.OpsRatios), median(row.CPURatios))
		rows = append(rows, row)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// runRueidisControl measures plain rueidis against a second, identical plain
// rueidis client at each of cfg.SteadyControl goroutine counts, exactly as
// runRueidisSteady measures rueidisentra: the resolution of that comparison.
func runRueidisControl(ctx context.Context, cfg config, logf func(string, ...any)) ([]rueidisSteadyRow, error) {
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	var rows []rueidisSteadyRow
	for _, g := range cfg.SteadyControl {
		mk := rueidisMaker(func(int) (rueidis.Client, error) {
			return rueidis.NewClient(plainRueidisOption(srv))
		})
		res, ratios, err := interleave(ctx, cfg, g, mk, [2]string{"plain rueidis A", "plain rueidis B"})
		if err != nil {
			return rows, err
		}
		row := rueidisSteadyRow{Goroutines: g, Ours: summarize(res[0]), Plain: summarize(res[1]), Rounds: cfg.steadyRounds(g), Blocks: cfg.steadyBlocks(g), OpsRatios: ratios, CPURatios: cpuRatios(res)}
		logf("rueidis steady control %3d goroutines: plain A / plain B medians: throughput %.3f, CPU %.3f", g, median(row.OpsRatios), median(row.CPURatios))
		rows = append(rows, row)
	}
	return rows, nil
}

// runRueidisRotation runs rueidisentra under load with cfg.RotToken tokens,
// standalone and on a 3-master cluster, and counts what each rotation cost.
func runRueidisRotation(ctx context.Context, cfg config, logf func(string, ...any)) ([]rueidisRotRow, error) {
	type topology struct {
		name  string
		addrs []string
		tc    *tls.Config
		cred  *entraredistest.Credential
		stats func() entraredistest.Stats
		close func() error
	}
	var tops []topology
	srv, err := startServer(cfg.RotToken)
	if err != nil {
		return nil, err
	}
	tops = append(tops, topology{"standalone", []string{srv.Addr()}, srv.TLSConfig(), srv.Credential(), srv.Stats, srv.Close})
	if cfg.RueidisCluster {
		cl, err := entraredistest.StartCluster(entraredistest.ClusterOptions{TokenLifetime: cfg.RotToken})
		if err != nil {
			srv.Close()
			return nil, err
		}
		tc := cl.TLSConfig()
		tc.ServerName = "" // rueidisentra names the host: the topology says 127.0.0.1
		tops = append(tops, topology{"cluster", cl.Addrs(), tc, cl.Credential(), cl.Stats, cl.Close})
	}
	defer func() {
		for _, t := range tops {
			t.close()
		}
	}()
	var rows []rueidisRotRow
	for _, t := range tops {
		for _, g := range cfg.RotConc {
			c, err := rueidisentra.NewClient(ctx, t.cred, rueidis.ClientOption{InitAddress: t.addrs, TLSConfig: t.tc}, &rueidisentra.Options{Options: entratoken.Options{Logger: quiet}})
			if err != nil {
				return rows, err
			}
			op := rueidisOp(c)
			if err := warmOps(ctx, op, g, cfg.RotWarm, "rot"); err != nil {
				c.Close()
				return rows, err
			}
			st0, _ := rueidisentra.Status(c)
			before := t.stats()
			res := runOps(ctx, op, g, cfg.RueidisRotDur, time.Now(), "rot")
			st, _ := rueidisentra.Status(c)
			after := t.stats()
			c.Close()
			row := rueidisRotRow{Topology: t.name, Goroutines: g, Dur: cfg.RueidisRotDur, Rotations: st.Rotations - st0.Rotations,
				Ops: res.ops, Errs: res.errs, OpsPerSec: res.opsPerSec(), Dials: after.Accepted - before.Accepted,
				ExpiryCloses: after.ExpiryCloses - before.ExpiryCloses, TokenRequests: st.TokenRequests - st0.TokenRequests,
				ReAuths: after.ReAuths - before.ReAuths, Conns: st.Conns.Current + st.Conns.Older, FirstErrs: res.firstErrs}
			logf("rueidis rotation %s G%d: %d rotations, %d errors, %.2f dials/rot, %.2f expiry closes/rot, %.2f token requests/rot, %.2f re-AUTHs/rot, %d connections",
				t.name, g, row.Rotations, row.Errs, row.per(row.Dials), row.per(row.ExpiryCloses), row.per(row.TokenRequests), row.per(row.ReAuths), row.Conns)
			rows = append(rows, row)
			if row.Rotations == 0 {
				return rows, errors.New("no rotation: make -rueidis-rot-dur longer than -rot-token")
			}
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	return rows, nil
}

// rueidisMarkdown writes section 6.
func (r *report) rueidisMarkdown(w func(string, ...any)) {
	if len(r.RueidisSteady) == 0 && len(r.RueidisRotation) == 0 {
		return
	}
	w("## 6. rueidis: rueidisentra beside plain rueidis\n\n")
	if len(r.RueidisSteady) > 0 {
		w("Steady state, as section 1 but with rueidis (v1.0.79, auto-pipelining on, its default): *plain* is rueidis with a static password (user = the oid, password = one 24-hour token), through the same TLS endpoint (in a child process: the CPU is the clients' alone), one 24-hour token. Interleaved rounds (%s) of one %v turn of each client per row%s. The **medians of the per-round ratios** are the figures: CPU per command (gate ≤ 1.02) and throughput (goal ≥ 0.98); min–max shows the noise.\n\n", roundsText(r.RueidisSteady, func(x rueidisSteadyRow) (int, int) { return x.Goroutines, x.Rounds }), r.Config.SteadyDur, blocksText(r.RueidisSteady[0].Blocks))
		w("| goroutines | rueidisentra ops/s | plain ops/s | **throughput ratio, median** (min–max) | CPU µs/op rueidisentra / plain | **CPU ratio, median** (95 %% CI of the median; min–max) | p99 rueidisentra / plain | errors (ours/plain) |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		row := func(s rueidisSteadyRow) {
			olo, ohi := slices.Min(s.OpsRatios), slices.Max(s.OpsRatios)
			w("| %d | %.0f | %.0f | **%.3f** (%.2f–%.2f) | %.1f / %.1f | %s | %s / %s | %d / %d |\n", s.Goroutines, s.Ours.OpsPerSec, s.Plain.OpsPerSec,
				median(s.OpsRatios), olo, ohi, us(s.Ours.CPUPerOp), us(s.Plain.CPUPerOp), cpuCell(s.CPURatios), ms(s.Ours.P99), ms(s.Plain.P99), s.Ours.Errs, s.Plain.Errs)
		}
		for _, s := range r.RueidisSteady {
			row(s)
		}
		if len(r.RueidisControl) > 0 {
			w("\n**Control** — plain rueidis against a second, identical plain rueidis client in the same harness (%s): the noise floor of the rows above.\n\n",
				roundsText(r.RueidisControl, func(x rueidisSteadyRow) (int, int) { return x.Goroutines, x.Rounds }))
			w("| goroutines | plain A ops/s | plain B ops/s | **throughput ratio, median** (min–max) | CPU µs/op A / B | **CPU ratio, median** (min–max) | p99 A / B | errors (A/B) |\n")
			w("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, s := range r.RueidisControl {
				row(s)
			}
		}
		w("\n")
	}
	if len(r.RueidisRotation) > 0 {
		w("Rotation under load: tokens of %v, each run %v after a %v warm-up, one rueidisentra client; counts per rotation from the emulator (dials, expiry closes, re-AUTHs) and from the client's Status (rotations, token requests).\n\n", r.Config.RotToken, r.RueidisRotation[0].Dur, r.Config.RotWarm)
		w("| topology | G | rotations | ops/s | errors | dials/rot | expiry closes/rot | token requests/rot | re-AUTHs/rot | connections |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range r.RueidisRotation {
			w("| %s | %d | %d | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %d |\n", x.Topology, x.Goroutines, x.Rotations, x.OpsPerSec, x.Errs,
				x.per(x.Dials), x.per(x.ExpiryCloses), x.per(x.TokenRequests), x.per(x.ReAuths), x.Conns)
		}
		w("\n")
		for _, x := range r.RueidisRotation {
			if len(x.FirstErrs) > 0 {
				w("- %s G=%d, first errors: `%v`\n", x.Topology, x.Goroutines, x.FirstErrs)
			}
		}
	}
}
