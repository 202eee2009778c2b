package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type machine struct {
	CPUs       int
	CPUModel   string
	GoVersion  string
	GoredisVer string
	Redis      string
	Kernel     string
	MemTotal   string
	GOMAXPROCS int
	OS, Arch   string
}

func readMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH, GoredisVer: "v9.23.0"}
	m.CPUModel = firstField("/proc/cpuinfo", "model name")
	m.MemTotal = firstField("/proc/meminfo", "MemTotal")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	bin := os.Getenv("ENTRAREDIS_REDIS_SERVER")
	if bin == "" {
		bin = "redis-server"
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		m.Redis = strings.TrimSpace(string(out))
	}
	return m
}

func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// markdown renders the report. cmd is the command line that produced it.
func (r *report) markdown(notes string) string {
	cfg, cmd := r.Config, r.Command
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("# entraredis benchmark results\n\n")
	if len(r.Reruns) == 0 {
		w("Produced by `%s` on %s (took %s). Every figure below comes from this one run.\n\n", strings.TrimSpace(cmd), r.Started.Format("2006-01-02 15:04 UTC"), r.Took.Round(time.Second))
	} else {
		w("Produced by `%s` on %s (took %s), except: %s.\n\n", strings.TrimSpace(cmd), r.Started.Format("2006-01-02 15:04 UTC"), r.Took.Round(time.Second), strings.Join(r.Reruns, "; "))
	}
	w("Machine: %d CPUs (`nproc`), GOMAXPROCS %d, %s, %s memory, Linux %s, %s/%s; %s; go-redis %s; %s. ",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemTotal, m.Kernel, m.OS, m.Arch, m.GoVersion, m.GoredisVer, m.Redis)
	w("The clients, the emulator (a TLS endpoint checking tokens: in a child process for the steady states of sections 1 and 6, in this process elsewhere) and redis-server share these cores, so absolute figures are low and noisy; the comparisons are what count.")
	if len(r.Load) > 0 {
		var parts []string
		for _, l := range r.Load {
			parts = append(parts, fmt.Sprintf("%s %s→%s", l.Section, l.Start, l.End))
		}
		w(" The machine was shared with other work during the run: 1-minute load average at the start→end of each section: %s (2 cores).", strings.Join(parts, ", "))
	}
	w("\n\n")

	for _, e := range r.Errors {
		w("**Section failed:** %s\n\n", e)
	}
	r.targets(&b, cfg)

	if len(r.Steady) > 0 {
		w("## 1. Steady state (nothing rotates)\n\n")
		w("GET/SET alternating, one 16-byte key per goroutine, RESP%d, TLS through the same emulator endpoint, one 24-hour token (nothing rotates). ", cfg.Protocol)
		w("*plain* is go-redis with a static password (Username = the credential's oid, Password = one 24-hour token minted by the emulator's issuer); entraredis gets the same token from a credential that always returns it. ")
		w("Pool size = goroutines (or `-steady-pool`). Both clients exist side by side and take turns, interleaved A,B,B,A,A,B,… (%s of one %v turn each, the order flipping every round so that linear drift cancels, after an unmeasured warm-up of each%s), so that drift on this noisy 2-core machine hits both alike. *ratio* = entraredis ops/s ÷ plain ops/s over all turns; the per-round ratios (median, min–max) show the noise. *CPU µs/op* is this process's user+system CPU time per command during the client's turns (getrusage): the client's alone, since the emulator endpoint and redis-server run in a child process (in runs before 2026-12-02 the emulator ran in this process, and its share, the same for both clients, diluted every ratio about twofold); it is much less sensitive than throughput to other load on the machine.\n\n", roundsText(r.Steady, steadyRowRounds), cfg.SteadyDur, blocksText(r.Steady[0].Blocks))
		w("*CPU ratio* = entraredis CPU per command ÷ plain's, per round; gate ≤ 1.02 on the median. The 95 %% CI of the median (bootstrap) is how far one run's median can be trusted: a verdict whose CI straddles 1.02 is not settled by the run. *throughput*: goal ≥ 0.98 on the median per-round ratio. *verdict* is both on this row.\n\n")
		w("| goroutines | pool | entraredis ops/s | plain ops/s | ratio (all turns) | **throughput ratio, median** (min–max) | CPU µs/op entraredis / plain | CPU ratio (all turns) | **CPU ratio, median** (95 %% CI of the median; min–max) | verdict | entraredis p50 | plain p50 | entraredis p99 | plain p99 | errors (ours/plain) |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
		row := func(s steadyRow, verdictCell string) {
			med, lo, hi := s.ratioSpread()
			w("| %d | %d | %.0f | %.0f | %.3f | **%.3f** (%.2f–%.2f) | %.1f / %.1f | %.3f | %s | %s | %s | %s | %s | %s | %d / %d |\n", s.Goroutines, s.Pool, s.Ours.OpsPerSec, s.Plain.OpsPerSec, s.ratio(), med, lo, hi,
				us(s.Ours.CPUPerOp), us(s.Plain.CPUPerOp), s.cpuTotalRatio(), cpuCell(s.CPURatios), verdictCell, ms(s.Ours.P50), ms(s.Plain.P50), ms(s.Ours.P99), ms(s.Plain.P99), s.Ours.Errs, s.Plain.Errs)
		}
		for _, s := range r.Steady {
			row(s, verdict(s.steadyOK()))
		}
		if len(r.SteadyControl) > 0 {
			w("\n**Control** — the same harness with plain go-redis in both places (a second, identical plain client instead of entraredis), %s. Two identical clients come out this far apart; a difference of that size in the rows above is noise, not entraredis:\n\n", roundsText(r.SteadyControl, steadyRowRounds))
			w("| goroutines | pool | plain A ops/s | plain B ops/s | ratio (all turns) | **throughput ratio, median** (min–max) | CPU µs/op A / B | CPU ratio (all turns) | **CPU ratio, median** (95 %% CI of the median; min–max) | | A p50 | B p50 | A p99 | B p99 | errors (A/B) |\n")
			w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
			for _, c := range r.SteadyControl {
				row(c, "control")
			}
		}
		w("\n")
	}
	if len(r.Breakdown) > 0 {
		b0 := r.Breakdown[0]
		w("## 1a. Where the steady-state cost goes\n\n")
		w("The harness of section 1 (%d rounds of one %v turn of each client, interleaved%s, CPU of this process per command; the same child emulator) at %d goroutines on a pool of as many, with the layers between plain go-redis and entraredis as clients of their own: go-redis over a pass-through `net.Conn` (any wrapper's cost), go-redis over `reauth.Conn` with a static token and go-redis' own options (the in-place re-authenticating connection alone), and entraredis over that. Each row is A against B; a ratio within its CI of 1.00 is no measurable cost. The layers need not add up: each row is its own run, with its own noise. No target; it explains the CPU ratio of section 1.\n\n", b0.Row.Turns, b0.Turn, blocksText(b0.Row.Blocks), b0.Row.Goroutines)
		w("| A | B | CPU µs/op A / B | **CPU ratio A/B, median** (95 %% CI of the median; min–max) | throughput ratio, median | errors (A/B) |\n|---|---|---:|---:|---:|---:|\n")
		for _, x := range r.Breakdown {
			tm, _, _ := x.Row.ratioSpread()
			w("| %s | %s | %.1f / %.1f | %s | %.3f | %d / %d |\n", x.A, x.B, us(x.Row.Ours.CPUPerOp), us(x.Row.Plain.CPUPerOp), cpuCell(x.Row.CPURatios), tm, x.Row.Ours.Errs, x.Row.Plain.Errs)
		}
		w("\n")
	}
	if len(r.Instr) > 0 {
		w("## 1b. Instructions per command\n\n")
		w("The load of section 1 at one goroutine on one connection (GET/SET alternating, RESP%d, TLS to the same child emulator), each client in a child process under valgrind's callgrind, which counts the user-space instructions executed: a count does not depend on what else the machine runs, so it settles at one goroutine what the CPU time of section 1 cannot resolve. Each figure is the difference between a child running %d and one running %d commands (after 200 unmeasured), per command: start-up and exit cancel; %d count(s) per client, median and min–max. Go's asynchronous preemption is off in the children (callgrind does not handle its signals), and so is the runtime's use of RDTSCP (GODEBUG cpu.rdtscp=off: valgrind does not decode it). The kernel's part of the CPU (system calls, about half of it in section 1) is not counted; *system calls per command*, counted from /proc/self/io in one run of %d commands outside valgrind, shows it is the same work for both: one write per command; the reads depend on timing too (a read that finds nothing yet waits and reads again). No target; it explains the CPU ratio of section 1.\n\n", cfg.Protocol, cfg.InstrCommands, 5*cfg.InstrCommands, cfg.InstrRepeats, 5*cfg.InstrCommands)
		w("| client | **instructions per command, median** (min–max) | ratio to plain | system calls per command: reads, writes |\n|---|---:|---:|---:|\n")
		ratio := instrRatio(r.Instr)
		for _, x := range r.Instr {
			_, lo, hi := spread(x.InstrPerOp)
			cell := "1"
			if x.Client != "plain" {
				cell = fmt.Sprintf("**%.3f**", ratio)
			}
			w("| %s | **%.0f** (%.0f–%.0f) | %s | %.2f, %.2f |\n", x.Client, x.median(), lo, hi, cell, x.SysReadsPerOp, x.SysWritesOp)
		}
		w("\n")
	}
	if len(r.Rotation) > 0 {
		w("## 2. Rotation under load\n\n")
		w("Tokens of %v. entraredis rotates at about half the life (refresh margin capped at life/2, jitter up to a quarter of it) and hands the new token out over a spread window (%v here); ", cfg.RotToken, scaleSpread(cfg.RotToken))
		w("the *naive streaming* provider (bench/providers.go, the go-redis-entraid approach) refreshes at 70%% of the life and calls OnNext on every connection at once; ")
		w("*CredentialsProviderContext* refreshes at 70%% too but never re-authenticates a live connection, so the server closes each one when its token expires. ")
		w("*%s* is the old mechanism: entraredis.Credentials as go-redis' StreamingCredentialsProvider in a plain go-redis client (go-redis re-authenticates each connection itself). ", kindOld)
		w("Each client has its own emulator and redis-server. Per goroutine count and pool size, the two clients of a pair exist side by side and take turns, interleaved A,B,B,A,… : entraredis against the old mechanism %d rounds of one %v turn each; naive streaming against CredentialsProviderContext %d rounds of %v (fewer rounds, to fit the time budget: they are context, not targets). Tokens keep rotating while a client waits for its turn (its idle connections are re-authenticated then, on its own server, but on the shared cores). ", r.rotRounds(kindOurs), r.rotDur(kindOurs), r.rotRounds(kindNaive), r.rotDur(kindNaive))
		w("Each pool is filled by an unmeasured %v warm-up before the first round; *dials* are every connection accepted during a measured turn. ", cfg.RotWarm)
		w("*AUTHs* = first AUTH/HELLO of a new connection + re-AUTHs. Latency: *after* = commands that started within %v after each event (entraredis, the old mechanism and naive: the new token's installation; CredentialsProviderContext: the previous token's expiry, when the server closes its connections); *steady* = every other command of the same turn; *p99 ratio* = after p99 / steady p99 of the turn. ", cfg.RotWindow)
		w("Every per-rotation figure is the **median over the rounds** (a round's figure = its count ÷ its rotations; rounds without a rotation, or for the p99 ratio without a window, are left out), with min–max. Goals for entraredis: 0 errors, 0 extra dials, 0 expiry closes, 1 token request per rotation, p99 ratio ≤ 1.1.\n\n")
		w("| client | G | pool | rounds × turn | rotations | ops/s | errors/rot | extra dials/rot | expiry closes/rot | token req/rot | AUTHs/rot | **p99 after / steady** | worst turn: steady p99, after p99, worst window p99 |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		rng := func(x rotRow, f func(rotTurn) float64, latency bool) string {
			m, lo, hi, n := x.perRoundN(f, latency)
			if n == 0 {
				return "– (no round with a rotation)"
			}
			return fmt.Sprintf("%.2f (%.2f–%.2f)", m, lo, hi)
		}
		for _, x := range r.Rotation {
			w("| %s | %d | %d | %d × %v | %d | %.0f | %s | %s | %s | %s | %s | **%s** | %s, %s, %s |\n",
				x.Kind, x.Goroutines, x.Pool, len(x.Rounds), x.Dur, x.Rotations, x.OpsPerSec, rng(x, errsPerRot, false), rng(x, dialsPerRot, false), rng(x, closesPerRot, false), rng(x, requestPerRot, false), rng(x, authsPerRot, false),
				rng(x, p99Ratio, true), ms(x.SteadyP99), ms(x.AfterP99), ms(x.WorstAfterP99))
		}
		w("\n")
		for _, x := range r.Rotation {
			if len(x.FirstErrs) > 0 {
				w("- %s G=%d pool=%d, first errors: `%s`\n", x.Kind, x.Goroutines, x.Pool, strings.Join(x.FirstErrs, "`; `"))
			}
		}
		w("\n")
	}
	if len(r.Cold) > 0 {
		w("## 3. Cold start\n\n")
		w("A new client, then %d goroutines released at once, each issuing its first command (GET). Default pool size (10 × GOMAXPROCS). One emulator for every run; each run builds a new client and closes it; the variants take turns A,B,C,C,B,A,… . *setup* is the constructor (entraredis.NewClient waits for the first token); *first reply* is counted from the release; **total** = from the constructor call to the last reply. Every figure is the median of %d runs (total: with min–max); token requests, minted and dials: the most in any run; errors: the sum. Goal: entraredis.NewClient's total ≤ 1.2 × plain go-redis with a static password.\n\n", r.Cold[0].Goroutines, len(r.Cold[0].Totals))
		w("| variant | setup | first reply | all %d replies | **total** (min–max) | vs plain | token requests | tokens minted | dials | errors |\n", r.Cold[0].Goroutines)
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		plain := r.coldPlain()
		for _, c := range r.Cold {
			lo, hi := c.totalRange()
			vs := "–"
			if plain > 0 {
				vs = fmt.Sprintf("%.2f×", float64(c.Total)/float64(plain))
			}
			w("| %s | %s | %s | %s | **%s** (%s–%s) | %s | %d | %d | %d | %d |\n", c.Variant, ms(c.Setup), ms(c.FirstReply), ms(c.AllReplies), ms(c.Total), ms(lo), ms(hi), vs, c.TokenRequests, c.Minted, c.Dials, c.Errs)
		}
		w("\n")
	}
	if len(r.Scale) > 0 {
		w("## 4. Scale: one rotation over many connections\n\n")
		w("Pool size = %d connections (split evenly across the cluster's nodes), opened by as many concurrent blocking `WAIT 1 %d` commands; tokens of %v; then %d goroutines doing GET/SET keep every connection active (FIFO pool). ", cfg.ScaleConns, cfg.ScaleHold.Milliseconds(), cfg.ScaleToken, cfg.ScaleLoad)
		w("*all on the new token* = from the new token's installation until the emulator had counted, since the rotation, as many re-AUTHs plus first AUTHs of new connections as there were connections open at the rotation (50%%/90%%/99%% likewise; a connection that go-redis closes after a failed re-auth is replaced by a new one on the new token); the hand-out window is entraredis' ReauthSpread default capped at a quarter of the refresh margin. ")
		w("Memory, two ways: (1) *heap/conn* = live heap after GC with the connections open minus before, per connection (runtime.MemStats.HeapAlloc; includes TLS, buffers and the in-process emulator's side, the same for both clients; noise of about ±1 KB per connection); ")
		w("(2) *provider/conn* = live bytes, from an exact allocation profile (MemProfileRate 1) taken while the connections opened, whose allocation stack passes through entraredis' root package (our Subscribe: listener registration) or through go-redis' streaming-credentials code (its per-connection listener and re-auth bookkeeping, only present with a streaming provider), per connection.\n\n")
		w("| topology | connections | hand-out window | 50%% / 90%% / 99%% on the new token | **all on the new token** | re-AUTHs + new AUTHs | dials | expiry closes | token requests | errors | heap/conn plain | heap/conn entraredis | **provider/conn: entraredis + go-redis streaming** |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Scale {
			w("| %s | %d | %v | %s / %s / %s | **%s** | %d + %d | %d | %d | %d | %d | %.0f B | %.0f B | **%.0f B + %.0f B = %.0f B** |\n", s.Topology, s.Conns, s.Spread, ms(s.T50), ms(s.T90), ms(s.T99), ms(s.AllReauthed), s.ReAuths, s.NewAuths, s.Dials, s.ExpiryCloses, s.TokenRequests, s.Errs, s.PlainBytes, s.OursBytes, s.ProfEntraredis, s.ProfStreaming, s.ProfEntraredis+s.ProfStreaming)
		}
		w("\n")
		for _, s := range r.Scale {
			w("- %s: %d connections open and %d subscribed to token updates when the rotation came", s.Topology, s.Conns, s.Listeners)
			if s.Note != "" {
				w("; %s", s.Note)
			}
			if s.PerNode != "" {
				w("; %s", s.PerNode)
			}
			w(".\n")
		}
		w("\n")
	}
	if r.Micro != "" {
		w("## 5. Micro-benchmarks\n\nProduced by `%s` on the same machine (when: see the first lines). Root package (bench_test.go): RoundTrip is one GET through the emulator's TLS endpoint in front of redis-server; SubscribeUnsubscribe is what each new connection costs the provider; TokenParse is the per-rotation cost of reading a token. internal/reauth BenchmarkCommand is the re-auth wrapper's cost per command (one GET written and its reply read; ManyConns: spread over 256 connections); internal/resp's are the RESP framer's scans. Goal: 0 allocs/op in internal/reauth and internal/resp.\n\n", r.MicroCmd)
		if bs := parseMicro(r.Micro); len(bs) > 0 {
			w("| package | benchmark | ns/op | B/op | **allocs/op** |\n|---|---|---:|---:|---:|\n")
			for _, x := range bs {
				pkg := strings.TrimPrefix(x.Pkg, "github.com/entraredis/entraredis")
				if pkg == "" {
					pkg = "(root)"
				}
				w("| %s | %s | %s | %s | **%s** |\n", pkg, x.Name, x.NsOp, x.BOp, x.AllocsOp)
			}
			w("\n")
		}
		w("```\n%s\n```\n\n", strings.TrimSpace(r.Micro))
	}
	r.rueidisMarkdown(w)
	if notes != "" {
		w("%s\n", strings.TrimSpace(notes))
	}
	return b.String()
}

// targets writes the targets with the measured figure beside each.
func (r *report) targets(b *strings.Builder, cfg config) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Targets\n\n| target | measured | |\n|---|---|---|\n")
	if len(r.Steady) > 0 {
		var cpu, thr []string
		cpuOK, thrOK := true, true
		for _, s := range r.Steady {
			c, clo, chi := s.cpuSpread()
			t, tlo, thi := s.ratioSpread()
			cilo, cihi := medianCI(s.CPURatios)
			cpu = append(cpu, fmt.Sprintf("G%d: %.3f (CI %.3f–%.3f; %.2f–%.2f) %s", s.Goroutines, c, cilo, cihi, clo, chi, verdict(s.cpuOK())))
			thr = append(thr, fmt.Sprintf("G%d: %.3f (%.2f–%.2f) %s", s.Goroutines, t, tlo, thi, verdict(s.thrOK())))
			cpuOK, thrOK = cpuOK && s.cpuOK(), thrOK && s.thrOK()
		}
		w("| steady CPU per command ≤ 1.02 × plain go-redis (gate; median of interleaved rounds, 95 %% CI of the median; min–max: %s) | %s | %s |\n", roundsText(r.Steady, steadyRowRounds), strings.Join(cpu, "; "), verdict(cpuOK))
		w("| steady throughput ≥ 0.98 × plain go-redis (median of interleaved rounds, min–max: %s) | %s | %s |\n", roundsText(r.Steady, steadyRowRounds), strings.Join(thr, "; "), verdict(thrOK))
		if len(r.SteadyControl) > 0 {
			var parts []string
			for _, c := range r.SteadyControl {
				cm, _, _ := c.cpuSpread()
				cilo, cihi := medianCI(c.CPURatios)
				tm, tlo, thi := c.ratioSpread()
				parts = append(parts, fmt.Sprintf("G%d: CPU %.3f (CI %.3f–%.3f), throughput %.3f (%.2f–%.2f)", c.Goroutines, cm, cilo, cihi, tm, tlo, thi))
			}
			w("| control: plain go-redis against plain go-redis, same harness (the noise floor of the two rows above) | %s | — |\n", strings.Join(parts, "; "))
		}
	}
	if len(r.Instr) > 0 {
		w("| user-space instructions per command at 1 goroutine, entraredis ÷ plain go-redis (callgrind, section 1b: not subject to the machine's noise) | %.3f | — |\n", instrRatio(r.Instr))
	}
	var ours []rotRow
	for _, x := range r.Rotation {
		if x.Kind == kindOurs {
			ours = append(ours, x)
		}
	}
	if len(ours) > 0 {
		row := func(name string, f func(rotTurn) float64, latency bool, limit float64, format string) {
			ok := true
			var parts []string
			for _, x := range ours {
				m, lo, hi, cnt := x.perRoundN(f, latency)
				if m > limit+1e-9 || (!latency && limit == 1 && m < 1-1e-9) || cnt == 0 {
					ok = false
				}
				parts = append(parts, fmt.Sprintf("G%d/P%d: "+format+" ("+format+"–"+format+")", x.Goroutines, x.Pool, m, lo, hi))
			}
			w("| %s | %s | %s |\n", name, strings.Join(parts, "; "), verdict(ok))
		}
		n := fmt.Sprintf("median of %d rounds, min–max", len(ours[0].Rounds))
		row("rotation, per rotation: 0 command errors ("+n+")", errsPerRot, false, 0, "%.2f")
		row("rotation, per rotation: 0 extra dials ("+n+")", dialsPerRot, false, 0, "%.2f")
		row("rotation, per rotation: 0 connections closed for expiry ("+n+")", closesPerRot, false, 0, "%.2f")
		row("rotation, per rotation: 1 token request ("+n+")", requestPerRot, false, 1, "%.2f")
		row("rotation: p99 in the second after a rotation ≤ 1.1 × steady p99 ("+n+")", p99Ratio, true, 1.1, "%.2f×")
	}
	if plain := r.coldPlain(); plain > 0 {
		for _, c := range r.Cold {
			if c.Variant == coldOurs {
				lo, hi := c.totalRange()
				ratio := float64(c.Total) / float64(plain)
				w("| cold start: NewClient + %d concurrent first commands ≤ 1.2 × plain go-redis, static password (median of %d runs) | %s (%s–%s) vs plain %s: %.2f× | %s |\n",
					c.Goroutines, len(c.Totals), ms(c.Total), ms(lo), ms(hi), ms(plain), ratio, verdict(ratio <= 1.2))
				w("| cold start: 1 token request | %d (most in a run) | %s |\n", c.TokenRequests, verdict(c.TokenRequests == 1))
			}
		}
	}
	if bs := parseMicro(r.Micro); len(bs) > 0 {
		var parts []string
		ok, n := true, 0
		for _, x := range bs {
			if !x.framer() {
				continue
			}
			n++
			parts = append(parts, fmt.Sprintf("%s %s: %s", strings.TrimPrefix(x.Pkg, "github.com/entraredis/entraredis/internal/"), x.Name, x.AllocsOp))
			ok = ok && x.AllocsOp == "0"
		}
		if n > 0 {
			w("| framer (internal/reauth, internal/resp): 0 allocs per command | %s | %s |\n", strings.Join(parts, "; "), verdict(ok))
		} else {
			w("| framer (internal/reauth, internal/resp): 0 allocs per command | not in the micro-benchmark output | **missed** |\n")
		}
	}
	if len(r.RueidisSteady) > 0 {
		var cpu, thr []string
		cpuOK, thrOK := true, true
		for _, s := range r.RueidisSteady {
			c, t := median(s.CPURatios), median(s.OpsRatios)
			cilo, cihi := medianCI(s.CPURatios)
			cpu = append(cpu, fmt.Sprintf("G%d: %.3f (CI %.3f–%.3f)", s.Goroutines, c, cilo, cihi))
			thr = append(thr, fmt.Sprintf("G%d: %.3f", s.Goroutines, t))
			cpuOK = cpuOK && c <= 1.02
			thrOK = thrOK && t >= 0.98
		}
		w("| rueidis: steady CPU per command ≤ 1.02 × plain rueidis (median of rounds, 95 %% CI of the median) | %s | %s |\n", strings.Join(cpu, "; "), verdict(cpuOK))
		w("| rueidis: steady throughput ≥ 0.98 × plain rueidis (median of rounds) | %s | %s |\n", strings.Join(thr, "; "), verdict(thrOK))
		if len(r.RueidisControl) > 0 {
			var parts []string
			for _, c := range r.RueidisControl {
				cilo, cihi := medianCI(c.CPURatios)
				parts = append(parts, fmt.Sprintf("G%d: CPU %.3f (CI %.3f–%.3f), throughput %.3f (%.2f–%.2f)", c.Goroutines,
					median(c.CPURatios), cilo, cihi, median(c.OpsRatios), slices.Min(c.OpsRatios), slices.Max(c.OpsRatios)))
			}
			w("| control: plain rueidis against plain rueidis, same harness (the noise floor of the two rows above) | %s | — |\n", strings.Join(parts, "; "))
		}
	}
	if len(r.RueidisRotation) > 0 {
		var parts []string
		ok := true
		for _, x := range r.RueidisRotation {
			parts = append(parts, fmt.Sprintf("%s G%d: %.2f / %.2f / %.2f", x.Topology, x.Goroutines, x.per(x.Errs), x.per(x.ExpiryCloses), x.per(x.TokenRequests)))
			ok = ok && x.Errs == 0 && x.ExpiryCloses == 0 && x.per(x.TokenRequests) <= 1+1e-9 && x.Rotations > 0
		}
		w("| rueidis per rotation: 0 errors / 0 expiry closes / 1 token request | %s | %s |\n", strings.Join(parts, "; "), verdict(ok))
	}
	w("\n")
}

// steadyOK is the row's verdict: the CPU gate and the throughput goal.
func (r steadyRow) steadyOK() bool { return r.cpuOK() && r.thrOK() }

func (r steadyRow) cpuOK() bool {
	m, _, _ := r.cpuSpread()
	return len(r.CPURatios) > 0 && m <= 1.02
}

func (r steadyRow) thrOK() bool {
	m, _, _ := r.ratioSpread()
	return m >= 0.98
}

// steadyRowRounds is the goroutine count and rounds of a steady row.
func steadyRowRounds(s steadyRow) (goroutines, rounds int) { return s.Goroutines, s.Turns }

// roundsText says how many rounds the rows ran: "30 rounds" when all ran
// as many, else each count with its goroutine counts, "100 rounds at 1
// goroutine, 30 at 8, 32 and 128".
func roundsText[R any](rows []R, of func(R) (goroutines, rounds int)) string {
	var order []int
	at := map[int][]string{}
	for _, x := range rows {
		g, n := of(x)
		if _, seen := at[n]; !seen {
			order = append(order, n)
		}
		at[n] = append(at[n], strconv.Itoa(g))
	}
	if len(order) == 1 {
		return fmt.Sprintf("%d rounds", order[0])
	}
	var parts []string
	for i, n := range order {
		gs := at[n]
		list := strings.Join(gs, ", ")
		if len(gs) > 1 {
			list = strings.Join(gs[:len(gs)-1], ", ") + " and " + gs[len(gs)-1]
		}
		unit := "goroutines"
		if len(gs) == 1 && gs[0] == "1" {
			unit = "goroutine"
		}
		if i == 0 {
			parts = append(parts, fmt.Sprintf("%d rounds at %s %s", n, list, unit))
		} else {
			parts = append(parts, fmt.Sprintf("%d at %s", n, list))
		}
	}
	return strings.Join(parts, ", ")
}

// rotRounds and rotDur are the rounds and turn of kind's rotation rows.
func (r *report) rotRounds(kind string) int {
	for _, x := range r.Rotation {
		if x.Kind == kind {
			return len(x.Rounds)
		}
	}
	return 0
}

func (r *report) rotDur(kind string) time.Duration {
	for _, x := range r.Rotation {
		if x.Kind == kind {
			return x.Dur
		}
	}
	return 0
}

// coldPlain is the plain client's median cold-start total (0: not measured).
func (r *report) coldPlain() time.Duration {
	for _, c := range r.Cold {
		if c.Variant == coldPlain {
			return c.Total
		}
	}
	return 0
}

// microBench is one line of `go test -bench -benchmem` output.
type microBench struct {
	Pkg, Name           string
	NsOp, BOp, AllocsOp string
}

// framer says whether b is one of the RESP framer's benchmarks.
func (b microBench) framer() bool {
	return strings.HasSuffix(b.Pkg, "/internal/reauth") || strings.HasSuffix(b.Pkg, "/internal/resp")
}

// parseMicro reads the benchmark lines of `go test -bench -benchmem` output
// (value-unit pairs after the iteration count).
func parseMicro(out string) []microBench {
	var bs []microBench
	pkg := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "pkg:" {
			pkg = f[1]
			continue
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := microBench{Pkg: pkg, Name: f[0]}
		for i := 2; i+1 < len(f); i++ {
			switch f[i+1] {
			case "ns/op":
				b.NsOp = f[i]
			case "B/op":
				b.BOp = f[i]
			case "allocs/op":
				b.AllocsOp = f[i]
			}
		}
		if b.AllocsOp != "" {
			bs = append(bs, b)
		}
	}
	return bs
}

// blocksText says, for a clause of a sentence, on how many fresh pairs of
// clients the rounds of a steady-state row ran (see interleave): "" for one.
func blocksText(blocks int) string {
	if blocks <= 1 {
		return ""
	}
	return fmt.Sprintf("; in %d blocks, each on a fresh pair of clients made in alternating order (A first, then B first), so that whatever sets one client instance apart from an identical one is noise between blocks, not a bias of the row", blocks)
}
