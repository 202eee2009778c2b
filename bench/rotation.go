package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// Provider kinds of the rotation runs.
const (
	kindOurs  = "entraredis"
	kindOld   = "entraredis.Credentials (streaming provider)"
	kindNaive = "naive streaming"
	kindCPC   = "CredentialsProviderContext"
)

// rotPairs are the clients compared by interleaved rounds: ours against the
// old mechanism (entraredis.Credentials as go-redis'
// StreamingCredentialsProvider), and the two comparison providers against each
// other (fewer rounds).
var rotPairs = [][2]string{{kindOurs, kindOld}, {kindNaive, kindCPC}}

// rotRow is one client at one goroutine count and pool size: its rounds
// (one measured turn each) and the sums over them.
type rotRow struct {
	Kind             string
	Goroutines, Pool int
	Dur              time.Duration // of each turn
	TokenLife        time.Duration
	Rounds           []rotTurn
	rotTurn          // the sums over the rounds (latencies: of all samples)
}

// rotTurn is what one measured turn of one client saw.
type rotTurn struct {
	Rotations     int64
	Ops, Errs     int64
	OpsPerSec     float64
	Dials         int64 // accepted during the measured turn: beyond the warm pool
	ExpiryCloses  int64
	TokenRequests int64 // GetToken calls during the turn
	Minted        int64
	Auths         int64 // Auths+ReAuths during the turn
	ReAuths       int64
	RefusedAuths  int64
	SteadyP99     time.Duration // samples outside every post-rotation window
	AfterP99      time.Duration // samples inside the windows, pooled
	WorstAfterP99 time.Duration // the worst window's p99
	AfterMax      time.Duration
	SteadyMax     time.Duration
	Windows       int
	Event         string // what starts a window
	FirstErrs     []string
}

func (r rotTurn) per(n int64) float64 {
	if r.Rotations == 0 {
		return float64(n)
	}
	return float64(n) / float64(r.Rotations)
}

func (r rotTurn) p99Ratio() float64 {
	if r.SteadyP99 == 0 {
		return 0
	}
	return float64(r.AfterP99) / float64(r.SteadyP99)
}

// perRound returns the median, lowest and highest over the rounds of f,
// counting only rounds with a rotation (and, for latency, a window).
func (r rotRow) perRound(f func(rotTurn) float64, latency bool) (med, lo, hi float64) {
	med, lo, hi, _ = r.perRoundN(f, latency)
	return med, lo, hi
}

// perRoundN is perRound with the number of rounds counted.
func (r rotRow) perRoundN(f func(rotTurn) float64, latency bool) (med, lo, hi float64, n int) {
	var xs []float64
	for _, t := range r.Rounds {
		if t.Rotations == 0 || (latency && (t.Windows == 0 || t.SteadyP99 == 0)) {
			continue
		}
		xs = append(xs, f(t))
	}
	if len(xs) == 0 && len(r.Rounds) == 0 { // a JSON from before the rounds
		return f(r.rotTurn), f(r.rotTurn), f(r.rotTurn), 1
	}
	med, lo, hi = spread(xs)
	return med, lo, hi, len(xs)
}

// Per-rotation figures of a turn, for perRound.
var (
	errsPerRot    = func(t rotTurn) float64 { return t.per(t.Errs) }
	dialsPerRot   = func(t rotTurn) float64 { return t.per(t.Dials) }
	closesPerRot  = func(t rotTurn) float64 { return t.per(t.ExpiryCloses) }
	requestPerRot = func(t rotTurn) float64 { return t.per(t.TokenRequests) }
	authsPerRot   = func(t rotTurn) float64 { return t.per(t.Auths) }
	p99Ratio      = func(t rotTurn) float64 { return t.p99Ratio() }
)

// runRotations runs, at every goroutine count and pool size, interleaved
// rounds of ours against the old mechanism (cfg.RotRounds turns of cfg.RotDur
// each) and, when cfg.RotCompare, of the two comparison providers
// (cfg.RotCmpRounds turns of cfg.RotCmpDur).
func runRotations(ctx context.Context, cfg config, logf func(string, ...any)) ([]rotRow, error) {
	var rows []rotRow
	for pi, pair := range rotPairs {
		if pi > 0 && !cfg.RotCompare {
			break
		}
		d, rounds := cfg.RotDur, cfg.RotRounds
		if pi > 0 {
			d, rounds = cfg.RotCmpDur, cfg.RotCmpRounds
		}
		for _, g := range cfg.RotConc {
			for _, p := range cfg.RotPool {
				got, err := runRotationPair(ctx, cfg, pair, g, p, d, rounds)
				if err != nil {
					return rows, fmt.Errorf("%s vs %s G=%d P=%d: %w", pair[0], pair[1], g, p, err)
				}
				for _, row := range got {
					em, _, _ := row.perRound(errsPerRot, false)
					dm, _, _ := row.perRound(dialsPerRot, false)
					cm, _, _ := row.perRound(closesPerRot, false)
					rm, _, _ := row.perRound(requestPerRot, false)
					pm, _, _ := row.perRound(p99Ratio, true)
					logf("rotation %-44s G=%3d P=%2d %d×%v: %d rotations; medians per rotation: %.2f errors, %.2f dials, %.2f expiry closes, %.2f token req, p99 after/steady %.2f",
						row.Kind, g, p, len(row.Rounds), d, row.Rotations, em, dm, cm, rm, pm)
				}
				rows = append(rows, got...)
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
			}
		}
	}
	return rows, nil
}

// rotClient is one client of a rotation pair, on its own emulator and
// redis-server (so that dials, closes and token requests are its own).
type rotClient struct {
	kind   string
	srv    *entraredistest.Server
	cred   *entraredistest.Credential
	rdb    redis.UniversalClient
	status func() entraredis.Status // ours and old
	ts     *tokenSource             // naive and CPC
	closes []func()

	mu     sync.Mutex
	events []time.Time // ours and old: each token installed after the first
}

func (c *rotClient) Close() {
	for i := len(c.closes) - 1; i >= 0; i-- {
		c.closes[i]()
	}
}

func newRotClient(ctx context.Context, cfg config, kind string, pool int) (*rotClient, error) {
	srv, err := startServer(cfg.RotToken)
	if err != nil {
		return nil, err
	}
	c := &rotClient{kind: kind, srv: srv, cred: srv.Credential(), closes: []func(){func() { srv.Close() }}}
	base := redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), Protocol: cfg.Protocol, PoolSize: pool}
	first := true
	opts := &entraredis.Options{
		Options: entratoken.Options{
			Logger: quiet,
			OnTokenRefreshed: func(entraredis.TokenRefreshed) {
				c.mu.Lock()
				if !first {
					c.events = append(c.events, time.Now())
				}
				first = false
				c.mu.Unlock()
			},
		},
	}
	switch kind {
	case kindOurs:
		ours, err := entraredis.NewClient(ctx, c.cred, &base, opts)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.rdb, c.status = ours, ours.Status
	case kindOld:
		creds, err := entraredis.NewCredentials(c.cred, opts)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.closes = append(c.closes, func() { creds.Close() })
		if err := creds.WaitReady(ctx); err != nil {
			c.Close()
			return nil, err
		}
		o := base
		o.StreamingCredentialsProvider = creds
		c.rdb, c.status = redis.NewClient(&o), creds.Status
	case kindNaive:
		n, err := newNaiveStreaming(ctx, c.cred, c.cred.ObjectID())
		if err != nil {
			c.Close()
			return nil, err
		}
		c.closes = append(c.closes, n.Close)
		o := base
		o.StreamingCredentialsProvider = n
		c.rdb, c.ts = redis.NewClient(&o), n.ts
	case kindCPC:
		p, err := newCachedProvider(ctx, c.cred, c.cred.ObjectID())
		if err != nil {
			c.Close()
			return nil, err
		}
		c.closes = append(c.closes, p.Close)
		o := base
		o.CredentialsProviderContext = p.credentials
		c.rdb, c.ts = redis.NewClient(&o), p.ts
	}
	c.closes = append(c.closes, func() { c.rdb.Close() })
	return c, nil
}

// runRotationPair builds both clients of pair, warms them up, and runs rounds
// interleaved rounds of one d turn of each.
func runRotationPair(ctx context.Context, cfg config, pair [2]string, g, pool int, d time.Duration, rounds int) ([]rotRow, error) {
	var cs [2]*rotClient
	rows := make([]rotRow, 2)
	for i, kind := range pair {
		c, err := newRotClient(ctx, cfg, kind, pool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		defer c.Close()
		if err := warmUp(ctx, c.rdb, g, cfg.RotWarm, "rot"); err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		cs[i] = c
		rows[i] = rotRow{Kind: kind, Goroutines: g, Pool: pool, Dur: d, TokenLife: cfg.RotToken}
	}
	err := alternate(ctx, rounds, func(_, i int) error {
		rows[i].Rounds = append(rows[i].Rounds, cs[i].turn(ctx, cfg, g, d))
		return nil
	})
	for i := range rows {
		rows[i].rotTurn = sumTurns(rows[i].Rounds)
	}
	return rows, err
}

// sumTurns adds the counts of the turns; the latencies are the worst turn's
// (each turn's samples are relative to its own start, so they are not pooled).
func sumTurns(ts []rotTurn) rotTurn {
	var s rotTurn
	var secs float64
	for _, t := range ts {
		s.Rotations += t.Rotations
		s.Ops += t.Ops
		s.Errs += t.Errs
		if t.OpsPerSec > 0 {
			secs += float64(t.Ops) / t.OpsPerSec
		}
		s.Dials += t.Dials
		s.ExpiryCloses += t.ExpiryCloses
		s.TokenRequests += t.TokenRequests
		s.Minted += t.Minted
		s.Auths += t.Auths
		s.ReAuths += t.ReAuths
		s.RefusedAuths += t.RefusedAuths
		s.Windows += t.Windows
		s.SteadyP99 = max(s.SteadyP99, t.SteadyP99)
		s.AfterP99 = max(s.AfterP99, t.AfterP99)
		s.WorstAfterP99 = max(s.WorstAfterP99, t.WorstAfterP99)
		s.AfterMax = max(s.AfterMax, t.AfterMax)
		s.SteadyMax = max(s.SteadyMax, t.SteadyMax)
		s.Event = t.Event
		if len(s.FirstErrs) < 5 {
			s.FirstErrs = append(s.FirstErrs, t.FirstErrs...)
		}
	}
	if secs > 0 {
		s.OpsPerSec = float64(s.Ops) / secs
	}
	return s
}

// turn measures one turn of d under load from g goroutines.
func (c *rotClient) turn(ctx context.Context, cfg config, g int, d time.Duration) rotTurn {
	var t rotTurn
	before := c.srv.Stats()
	req0, minted0 := c.cred.Requests(), c.cred.Minted()
	var rot0 int64
	if c.status != nil {
		rot0 = c.status().Rotations
	}
	origin := time.Now()
	res := runLoad(ctx, c.rdb, g, d, origin, "rot")
	end := origin.Add(res.elapsed)
	after := c.srv.Stats()

	t.Ops, t.Errs, t.OpsPerSec, t.FirstErrs = res.ops, res.errs, res.opsPerSec(), res.firstErrs
	t.Dials = after.Accepted - before.Accepted
	t.ExpiryCloses = after.ExpiryCloses - before.ExpiryCloses
	t.TokenRequests = c.cred.Requests() - req0
	t.Minted = c.cred.Minted() - minted0
	t.Auths = (after.Auths - before.Auths) + (after.ReAuths - before.ReAuths)
	t.ReAuths = after.ReAuths - before.ReAuths
	t.RefusedAuths = after.RefusedAuths - before.RefusedAuths

	var events []time.Time
	switch c.kind {
	case kindOurs, kindOld:
		t.Rotations = c.status().Rotations - rot0
		c.mu.Lock()
		events = slices.Clone(c.events)
		c.mu.Unlock()
		t.Event = "token installed"
	case kindNaive:
		events, _ = c.ts.rotations()
		t.Event = "token installed"
	case kindCPC:
		_, events = c.ts.rotations()
		t.Event = "previous token expired"
	}
	if c.ts != nil {
		inst, _ := c.ts.rotations()
		t.Rotations = int64(countIn(inst, origin, end))
	}
	windows := windowsIn(events, origin, end, cfg.RotWindow)
	t.Windows = len(windows)
	t.SteadyP99, t.SteadyMax, t.AfterP99, t.WorstAfterP99, t.AfterMax = windowStats(res.samples, origin, windows, cfg.RotWindow)
	return t
}

func countIn(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// windowsIn returns the start of each event window that begins inside the
// run, as µs offsets from origin.
func windowsIn(events []time.Time, origin, end time.Time, w time.Duration) []uint32 {
	var out []uint32
	for _, e := range events {
		if e.Before(origin) || !e.Before(end) {
			continue
		}
		out = append(out, uint32(e.Sub(origin).Microseconds()))
	}
	slices.Sort(out)
	return out
}

// windowStats splits the samples into those that started inside a window
// after an event and the rest (the steady state of the same run).
func windowStats(ss []sample, origin time.Time, wins []uint32, w time.Duration) (steadyP99, steadyMax, afterP99, worstP99, afterMax time.Duration) {
	wl := uint32(w.Microseconds())
	which := func(s sample) int {
		// the last window starting at or before s.at
		i, found := slices.BinarySearch(wins, s.at)
		if !found {
			i--
		}
		if i >= 0 && s.at-wins[i] < wl {
			return i
		}
		return -1
	}
	per := make([][]sample, len(wins))
	var steady, after []sample
	for _, s := range ss {
		if i := which(s); i >= 0 {
			per[i] = append(per[i], s)
			after = append(after, s)
		} else {
			steady = append(steady, s)
		}
	}
	sl := sortedLats(steady, nil)
	al := sortedLats(after, nil)
	for _, p := range per {
		if q := sortedLats(p, nil).q(0.99); q > worstP99 {
			worstP99 = q
		}
	}
	return sl.q(0.99), sl.max(), al.q(0.99), worstP99, al.max()
}
