package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/entraredistest"
)

// TestMain serves the child emulator of the steady-state sections when this
// test binary is started as one (see startChildEmulator).
func TestMain(m *testing.M) {
	if os.Getenv(serveEmulatorEnv) == "1" {
		if err := serveEmulator(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: child emulator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(instrEnv); spec != "" {
		if err := instrChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench: instructions child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the benchmark program's logic at tiny scale (a few seconds)
// and checks that the table has every section and that our client had no
// errors anywhere.
func TestSmoke(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	defer goleak.VerifyNone(t)
	redis.SetLogger(silentLogger{})
	cfg := smokeConfig()
	cfg.Out = ""
	// Not the instructions section: this race-built binary cannot run under
	// valgrind (TestInstrSyscalls runs its children without it).
	cfg.Sections = strings.Replace(cfg.Sections, "instr,", "", 1)
	var log strings.Builder
	rep, err := run(t.Context(), cfg, &log)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("sections failed: %v", rep.Errors)
	}
	rep.Command, rep.Config = "go run ./bench -smoke", cfg
	md := rep.markdown("")
	for _, want := range []string{"# entraredis benchmark results", "Machine:", "## Targets",
		"## 1. Steady state", "## 1a. Where the steady-state cost goes", "| " + bdWrap + " | " + bdPlain + " | ", "## 2. Rotation under load", "## 3. Cold start", "## 4. Scale",
		"| entraredis | ", "| " + kindOld + " | ", "| naive streaming | ", "| CredentialsProviderContext | ", "| standalone | ",
		"## 6. rueidis", "| standalone | 8 | "} {
		if !strings.Contains(md, want) {
			t.Errorf("the table has no %q:\n%s", want, md)
		}
	}
	if len(rep.Steady) != len(cfg.SteadyConc) || len(rep.Rotation) != 4 || len(rep.Cold) != 3 || len(rep.Scale) != 1 {
		t.Fatalf("rows: %d steady, %d rotation, %d cold, %d scale", len(rep.Steady), len(rep.Rotation), len(rep.Cold), len(rep.Scale))
	}
	if len(rep.RueidisSteady) != len(cfg.SteadyConc) || len(rep.RueidisRotation) != len(cfg.RotConc) {
		t.Fatalf("rueidis rows: %d steady, %d rotation", len(rep.RueidisSteady), len(rep.RueidisRotation))
	}
	if len(rep.RueidisControl) != len(cfg.SteadyControl) || !strings.Contains(md, "plain rueidis against plain rueidis") {
		t.Errorf("%d rueidis control rows, want %d", len(rep.RueidisControl), len(cfg.SteadyControl))
	}
	for _, c := range rep.RueidisControl {
		if len(c.CPURatios) != cfg.steadyRounds(c.Goroutines) || c.Ours.Errs+c.Plain.Errs != 0 {
			t.Errorf("rueidis control row incomplete: %+v", c)
		}
	}
	for _, x := range rep.RueidisRotation {
		if x.Errs != 0 || x.Rotations == 0 || x.ExpiryCloses != 0 {
			t.Errorf("rueidis rotation %+v", x)
		}
	}
	if len(rep.SteadyControl) != len(cfg.SteadyControl) || !strings.Contains(md, "**Control**") {
		t.Errorf("%d steady control rows, want %d", len(rep.SteadyControl), len(cfg.SteadyControl))
	}
	for _, c := range rep.SteadyControl {
		if len(c.CPURatios) != cfg.steadyRounds(c.Goroutines) || c.Ours.Errs+c.Plain.Errs != 0 {
			t.Errorf("steady control row incomplete: %+v", c)
		}
	}
	for _, s := range rep.Steady {
		if n := cfg.steadyRounds(s.Goroutines); len(s.RoundRatios) != n || len(s.CPURatios) != n {
			t.Errorf("steady %d goroutines: %d throughput and %d CPU ratios, want %d each", s.Goroutines, len(s.RoundRatios), len(s.CPURatios), n)
		}
		if s.Ours.Errs != 0 || s.Ours.Ops == 0 || s.Plain.Ops == 0 {
			t.Errorf("steady %d goroutines: ours %d errors of %d ops, plain %d ops", s.Goroutines, s.Ours.Errs, s.Ours.Ops, s.Plain.Ops)
		}
	}
	if len(rep.Breakdown) != len(breakdownPairs) {
		t.Errorf("%d breakdown rows, want %d", len(rep.Breakdown), len(breakdownPairs))
	}
	for _, x := range rep.Breakdown {
		if n := cfg.steadyRounds(cfg.BreakdownConc); len(x.Row.CPURatios) != n || x.Row.Ours.Errs+x.Row.Plain.Errs != 0 || x.Row.Ours.Ops == 0 || x.Row.Plain.Ops == 0 {
			t.Errorf("breakdown %s / %s: %d CPU ratios (want %d), %d+%d errors, %d and %d ops", x.A, x.B, len(x.Row.CPURatios), n, x.Row.Ours.Errs, x.Row.Plain.Errs, x.Row.Ours.Ops, x.Row.Plain.Ops)
		}
	}
	for _, r := range rep.Rotation {
		if r.Kind == kindOurs && (r.Errs != 0 || r.Ops == 0 || r.Rotations == 0) {
			t.Errorf("rotation: ours %d errors of %d ops, %d rotations; first errors %v", r.Errs, r.Ops, r.Rotations, r.FirstErrs)
		}
		want := cfg.RotRounds
		if r.Kind == kindNaive || r.Kind == kindCPC {
			want = cfg.RotCmpRounds
		}
		if len(r.Rounds) != want {
			t.Errorf("rotation %s: %d rounds, want %d", r.Kind, len(r.Rounds), want)
		}
	}
	for _, c := range rep.Cold {
		if c.Errs != 0 {
			t.Errorf("cold start %s: %d errors", c.Variant, c.Errs)
		}
		if len(c.Totals) != cfg.ColdRuns || c.Total <= 0 {
			t.Errorf("cold start %s: %d runs (want %d), median total %v", c.Variant, len(c.Totals), cfg.ColdRuns, c.Total)
		}
		if c.Variant == coldOurs && c.TokenRequests != 1 {
			t.Errorf("cold start: %d token requests, want 1", c.TokenRequests)
		}
	}
	for _, s := range rep.Scale {
		if s.Errs != 0 || s.Conns == 0 || s.TokenRequests == 0 {
			t.Errorf("scale %s: %d errors %q, %d connections, %d token requests", s.Topology, s.Errs, s.FirstErrs, s.Conns, s.TokenRequests)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestMicroTargets reads `go test -bench -benchmem` output of the framer
// packages into the micro table and the 0-allocs target.
func TestMicroTargets(t *testing.T) {
	out := `pkg: github.com/entraredis/entraredis/internal/reauth
BenchmarkCommand-2   	     200	       903.0 ns/op	       0 B/op	       0 allocs/op
pkg: github.com/entraredis/entraredis/internal/resp
BenchmarkScanReplies-2        	     200	      1879 ns/op	 258.12 MB/s	        16.00 frames/op	       117.4 ns/frame	       3 B/op	       1 allocs/op
PASS`
	bs := parseMicro(out)
	if len(bs) != 2 || bs[0].Name != "BenchmarkCommand-2" || bs[0].AllocsOp != "0" || bs[1].AllocsOp != "1" || bs[1].BOp != "3" || !bs[1].framer() {
		t.Fatalf("parsed %+v", bs)
	}
	rep := &report{Micro: out}
	md := rep.markdown("")
	for _, want := range []string{"| /internal/resp | BenchmarkScanReplies-2 | 1879 | 3 | **1** |", "| framer (internal/reauth, internal/resp): 0 allocs per command | reauth BenchmarkCommand-2: 0; resp BenchmarkScanReplies-2: 1 | **missed** |"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in:\n%s", want, md)
		}
	}
}

func TestRoundsText(t *testing.T) {
	rows := func(rounds ...int) []steadyRow {
		var rs []steadyRow
		for i, n := range rounds {
			rs = append(rs, steadyRow{Goroutines: []int{1, 8, 32, 128}[i], Turns: n})
		}
		return rs
	}
	for _, c := range []struct {
		rows []steadyRow
		want string
	}{
		{rows(30, 30, 30, 30), "30 rounds"},
		{rows(100, 30, 30, 30), "100 rounds at 1 goroutine, 30 at 8, 32 and 128"},
		{rows(100, 30), "100 rounds at 1 goroutine, 30 at 8"},
		{rows(30, 10, 30), "30 rounds at 1 and 32 goroutines, 10 at 8"},
	} {
		if got := roundsText(c.rows, steadyRowRounds); got != c.want {
			t.Errorf("roundsText(%v) = %q, want %q", c.rows, got, c.want)
		}
	}
}

// TestMedianCI: the interval holds the median, is empty for constant data,
// narrows with more rounds, and is the same on every call.
func TestMedianCI(t *testing.T) {
	if lo, hi := medianCI([]float64{1.01, 1.01, 1.01}); lo != 1.01 || hi != 1.01 {
		t.Fatalf("constant data: CI %v–%v", lo, hi)
	}
	noisy := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 1 + 0.1*float64((i*7919)%101-50)/50 // spread evenly over 0.9–1.1
		}
		return xs
	}
	few, many := noisy(30), noisy(600)
	med, _, _ := spread(many)
	lo, hi := medianCI(many)
	if lo > med || hi < med || hi-lo > 0.03 {
		t.Fatalf("600 rounds: median %.4f, CI %.4f–%.4f", med, lo, hi)
	}
	flo, fhi := medianCI(few)
	if fhi-flo <= hi-lo {
		t.Fatalf("30 rounds give CI %.4f–%.4f, no wider than 600 rounds' %.4f–%.4f", flo, fhi, lo, hi)
	}
	if lo2, hi2 := medianCI(many); lo2 != lo || hi2 != hi {
		t.Fatalf("two calls: %v–%v and %v–%v", lo, hi, lo2, hi2)
	}
}

// TestInterleaveBlocks: interleave runs a row's rounds in blocks, each on a
// fresh pair made in alternating order and closed before the next, and
// returns one turn per round of each client.
func TestInterleaveBlocks(t *testing.T) {
	cfg := defaultConfig()
	cfg.SteadyDur = 5 * time.Millisecond
	cfg.SteadyRounds, cfg.SteadyBlocks = 7, 3
	var made []int
	open := 0
	mk := func(i int) (kvOp, func(), error) {
		made = append(made, i)
		open++
		if open > 2 {
			t.Errorf("%d clients open at once", open)
		}
		return func(context.Context, string, string, bool) error { return nil }, func() { open-- }, nil
	}
	res, ratios, err := interleave(t.Context(), cfg, 2, mk, [2]string{"A", "B"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 1, 0, 0, 1}; !slices.Equal(made, want) {
		t.Errorf("clients made in the order %v, want %v: three pairs, alternating", made, want)
	}
	if open != 0 {
		t.Errorf("%d clients left open", open)
	}
	// A ratio needs B's turn to have run an operation: a turn of 1 ms may
	// run none when the machine is busy (one CI run saw 6 ratios).
	withOps := 0
	for _, r := range res[1] {
		if r.opsPerSec() > 0 {
			withOps++
		}
	}
	if len(res[0]) != 7 || len(res[1]) != 7 || len(ratios) != withOps || withOps == 0 {
		t.Errorf("%d and %d turns, %d ratios for %d turns of B with operations; want 7 turns of each and a ratio per such turn", len(res[0]), len(res[1]), len(ratios), withOps)
	}
}

// TestInstrSyscalls runs the children of the instructions section (section
// 1b) outside valgrind, which cannot run this race-built binary: each
// client's child runs its commands on one connection and reports its system
// calls, and entraredis makes one write per command as plain go-redis does,
// the premise of section 1b (the kernel's share of the CPU is the same).
func TestInstrSyscalls(t *testing.T) {
	entraredistest.RequireRedisServer(t)
	r, err := newInstrRunner(3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	const n = 400
	per := map[string][2]float64{}
	for _, client := range instrClients {
		_, sys, err := r.count(t.Context(), client, n, false)
		if err != nil {
			t.Fatal(err)
		}
		reads, writes := float64(sys.SysR)/n, float64(sys.SysW)/n
		t.Logf("%s: %.2f reads, %.2f writes per command", client, reads, writes)
		if writes < 1 || writes > 1.01 || reads < 1 || reads > 3 {
			t.Errorf("%s: %.2f reads and %.2f writes per command; want one write and one to three reads", client, reads, writes)
		}
		per[client] = [2]float64{reads, writes}
	}
	// Writes are one per command for both: an AUTH or a split command would
	// add some. Reads are not compared: how many a reply takes depends on
	// timing (a read that finds nothing yet waits and reads again), and
	// moves by ±0.1 per command between two runs of one client on a busy
	// machine.
	e, p := per["entraredis"], per["plain"]
	if math.Abs(e[1]-p[1]) > 0.01 {
		t.Errorf("writes per command: entraredis %.3f, plain %.3f: want the same", e[1], p[1])
	}
}

func TestCallgrindTotal(t *testing.T) {
	got, err := callgrindTotal("==4083== Events    : Ir\n==4083== Collected : 73444841\n==4083==\n==4083== I   refs:      73,444,841\n")
	if err != nil || got != 73444841 {
		t.Fatalf("callgrindTotal = %d, %v; want 73444841", got, err)
	}
	if _, err := callgrindTotal("valgrind: an assertion failed\n"); err == nil {
		t.Fatal("callgrindTotal found a total in output without one")
	}
}
