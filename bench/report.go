package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
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
	w("Client, emulator (TLS endpoint checking tokens, in the same process) and redis-server share these cores, so absolute figures are low and noisy; the comparisons are what count.")
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
		w("GET/SET alternating, one 16-byte key per goroutine, RESP%d, TLS through the same emulator endpoint, 1-hour tokens. ", cfg.Protocol)
		if cfg.SteadyPlainFIFO {
			w("**Diagnostic run: the plain client has PoolFIFO: true, like entraredis.** ")
		}
		w("*plain* is go-redis with a static password (Username = the credential's oid, Password = one 24-hour token minted by the emulator's issuer). ")
		w("Pool size = goroutines (or `-steady-pool`). Both clients exist side by side and take turns, interleaved A,B,B,A,A,B,… (%d rounds of one %v turn each, the order flipping every round so that linear drift cancels, after an unmeasured warm-up of each), so that drift on this noisy 2-core machine hits both alike. *ratio* = entraredis ops/s ÷ plain ops/s over all turns; the per-round ratios (median, min–max) show the noise. *CPU µs/op* is this process's user+system CPU time per command during the client's turns (getrusage): the client plus the in-process emulator endpoint (the same work for both clients), not redis-server; it is much less sensitive than throughput to other load on the machine.\n\n", r.Steady[0].Turns, cfg.SteadyDur)
		w("| goroutines | pool | entraredis ops/s | plain ops/s | **ratio** | per-round ratio: median (min–max) | entraredis p50 | plain p50 | entraredis p99 | plain p99 | CPU µs/op entraredis / plain | errors (ours/plain) |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Steady {
			med, lo, hi := s.ratioSpread()
			w("| %d | %d | %.0f | %.0f | **%.3f** | %.3f (%.2f–%.2f) | %s | %s | %s | %s | %.1f / %.1f | %d / %d |\n", s.Goroutines, s.Pool, s.Ours.OpsPerSec, s.Plain.OpsPerSec, s.ratio(), med, lo, hi,
				ms(s.Ours.P50), ms(s.Plain.P50), ms(s.Ours.P99), ms(s.Plain.P99), us(s.Ours.CPUPerOp), us(s.Plain.CPUPerOp), s.Ours.Errs, s.Plain.Errs)
		}
		w("\n")
	}
	if len(r.Rotation) > 0 {
		w("## 2. Rotation under load\n\n")
		w("Tokens of %v. entraredis rotates at about half the life (refresh margin capped at life/2, jitter up to a quarter of it) and hands the new token out over a spread window (%v here); ", cfg.RotToken, scaleSpread(cfg.RotToken))
		w("the *naive streaming* provider (bench/providers.go, the go-redis-entraid approach) refreshes at 70%% of the life and calls OnNext on every connection at once; ")
		w("*CredentialsProviderContext* refreshes at 70%% too but never re-authenticates a live connection, so the server closes each one when its token expires. ")
		w("The pool is filled by an unmeasured %v warm-up; *dials* are every connection accepted during the measured run (beyond the warm pool). ", cfg.RotWarm)
		w("*AUTHs* = first AUTH/HELLO of a new connection + re-AUTHs. Latency: *after* = commands that started within %v after each event (entraredis and naive: the new token's installation; CredentialsProviderContext: the previous token's expiry, when the server closes its connections); *steady* = every other command of the same run. Ratio = after p99 / steady p99.\n\n", cfg.RotWindow)
		w("| client | G | pool | run | rotations | ops/s | errors | errors/rot | extra dials/rot | expiry closes/rot | token req/rot | AUTHs/rot | steady p99 | after p99 | **ratio** | worst window p99 | max after / steady |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range r.Rotation {
			w("| %s | %d | %d | %v | %d | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | **%.2f** | %s | %s / %s |\n",
				x.Kind, x.Goroutines, x.Pool, x.Dur, x.Rotations, x.OpsPerSec, x.Errs, x.per(x.Errs), x.per(x.Dials), x.per(x.ExpiryCloses), x.per(x.TokenRequests), x.per(x.Auths),
				ms(x.SteadyP99), ms(x.AfterP99), x.p99Ratio(), ms(x.WorstAfterP99), ms(x.AfterMax), ms(x.SteadyMax))
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
		w("A new client, then %d goroutines released at once, each issuing its first command (GET). Default pool size (10 × GOMAXPROCS). *setup* is the constructor (entraredis.NewClient waits for the first token); *first reply* is counted from the release.\n\n", r.Cold[0].Goroutines)
		w("| variant | setup | first reply | all %d replies | constructor → first reply | token requests | tokens minted | dials | errors |\n", r.Cold[0].Goroutines)
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.Cold {
			w("| %s | %s | %s | %s | %s | %d | %d | %d | %d |\n", c.Variant, ms(c.Setup), ms(c.FirstReply), ms(c.AllReplies), ms(c.FromStart), c.TokenRequests, c.Minted, c.Dials, c.Errs)
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
		w("## 5. Micro-benchmarks\n\nProduced by `%s` (bench_test.go in the root package) just before the run above, on the same machine. RoundTrip is one GET through the emulator's TLS endpoint in front of redis-server; SubscribeUnsubscribe is what each new connection costs the provider; TokenParse is the per-rotation cost of reading a token.\n\n```\n%s\n```\n\n", r.MicroCmd, strings.TrimSpace(r.Micro))
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
		var parts []string
		ok := true
		for _, s := range r.Steady {
			med, _, _ := s.ratioSpread()
			parts = append(parts, fmt.Sprintf("%d goroutines: %.3f (median round %.3f)", s.Goroutines, s.ratio(), med))
			if s.ratio() < 0.98 {
				ok = false
			}
		}
		w("| steady throughput ratio to plain go-redis ≥ 0.98 on every row | %s | %s |\n", strings.Join(parts, "; "), verdict(ok))
	}
	var ours []rotRow
	for _, x := range r.Rotation {
		if x.Kind == kindOurs {
			ours = append(ours, x)
		}
	}
	if len(ours) > 0 {
		row := func(name string, f func(rotRow) float64, limit float64, format string) {
			ok := true
			var parts []string
			for _, x := range ours {
				v := f(x)
				if v > limit+1e-9 {
					ok = false
				}
				parts = append(parts, fmt.Sprintf("G%d/P%d: "+format, x.Goroutines, x.Pool, v))
			}
			w("| %s | %s | %s |\n", name, strings.Join(parts, "; "), verdict(ok))
		}
		row("per rotation: 0 command errors", func(x rotRow) float64 { return x.per(x.Errs) }, 0, "%.2f")
		row("per rotation: 0 extra dials", func(x rotRow) float64 { return x.per(x.Dials) }, 0, "%.2f")
		row("per rotation: 0 connections closed for expiry", func(x rotRow) float64 { return x.per(x.ExpiryCloses) }, 0, "%.2f")
		row("per rotation: 1 token request", func(x rotRow) float64 { return x.per(x.TokenRequests) }, 1, "%.2f")
		row("p99 in the second after a rotation ≤ 1.2 × steady p99", func(x rotRow) float64 { return x.p99Ratio() }, 1.2, "%.2f×")
	}
	if len(r.RueidisSteady) > 0 {
		var cpu, thr []string
		cpuOK, thrOK := true, true
		for _, s := range r.RueidisSteady {
			c, t := median(s.CPURatios), median(s.OpsRatios)
			cpu = append(cpu, fmt.Sprintf("%d goroutines: %.3f", s.Goroutines, c))
			thr = append(thr, fmt.Sprintf("%d goroutines: %.3f", s.Goroutines, t))
			cpuOK = cpuOK && c <= 1.02
			thrOK = thrOK && t >= 0.98
		}
		w("| rueidis: steady CPU per command ≤ 1.02 × plain rueidis (median of rounds) | %s | %s |\n", strings.Join(cpu, "; "), verdict(cpuOK))
		w("| rueidis: steady throughput ≥ 0.98 × plain rueidis (median of rounds) | %s | %s |\n", strings.Join(thr, "; "), verdict(thrOK))
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
	for _, c := range r.Cold {
		if c.Variant == "entraredis.NewClient" {
			w("| cold start (%d goroutines): 1 token request | %d request(s), first reply %s after release | %s |\n", c.Goroutines, c.TokenRequests, ms(c.FirstReply), verdict(c.TokenRequests == 1))
		}
	}
	w("\n")
}
