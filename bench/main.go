// Command bench measures what Microsoft Entra authentication with entraredis
// costs against plain go-redis with a static password, on a real
// redis-server behind the entraredistest emulator (a TLS endpoint that checks
// tokens and closes a connection when its token expires). It prints a table
// and writes it, with the machine and the command line, to -out.
//
//	go run ./bench -out bench/RESULTS.md            # full run, about 40 minutes on 2 cores
//	go run ./bench -smoke -out /tmp/smoke.md         # a few seconds
//
// Every run is bounded by its flags (durations, goroutines, connections).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	_ "github.com/entraredis/entraredis/entraredistest/inprocess" // the test server's fallback without redis-server
)

// config bounds every section of a run.
type config struct {
	Sections string // comma-separated: steady,breakdown,instr,rotation,cold,scale,rueidis
	Protocol int

	SteadyConc   []int
	SteadyDur    time.Duration
	SteadyRounds int
	// SteadyRounds1 replaces SteadyRounds at one goroutine, where one turn's
	// CPU per command spreads most (per-round ratios 0.5–2× between two
	// identical clients): more rounds for about the resolution of the other
	// rows, ±0.02 (see medianCI) (0: SteadyRounds)
	SteadyRounds1 int
	// SteadyControl are the goroutine counts of the control rows: plain
	// go-redis against a second plain go-redis client, in the same harness,
	// which show how far apart two identical clients measure (empty: none)
	SteadyControl []int
	// SteadyBlocks splits the rounds of each steady-state row into blocks,
	// each on a fresh pair of clients made in alternating order (see
	// interleave), so that a difference between two client instances is
	// noise between blocks, not a bias of the row (1: one pair per row)
	SteadyBlocks int
	SteadyPool   int // 0: as many connections as goroutines

	// BreakdownConc is the goroutine count (and pool size) of the breakdown
	// section, which splits the steady-state CPU ratio into layers, with
	// config.steadyRounds rounds of config.SteadyDur turns per pair.
	BreakdownConc int

	// InstrCommands and InstrRepeats size the instructions section: each
	// client's count is the difference of children running InstrCommands
	// and 5×InstrCommands commands, InstrRepeats times (see runInstr).
	InstrCommands, InstrRepeats int

	RotToken     time.Duration
	RotDur       time.Duration // each turn of ours and the old mechanism
	RotRounds    int           // interleaved rounds of ours and the old mechanism
	RotCmpDur    time.Duration // each turn of the comparison providers
	RotCmpRounds int           // interleaved rounds of the comparison providers
	RotConc      []int
	RotPool      []int
	RotWindow    time.Duration
	RotWarm      time.Duration
	RotCompare   bool

	ColdGoroutines int
	ColdRuns       int // runs of each variant, interleaved

	RueidisRotDur time.Duration // rueidis section: each rotation run

	ScaleConns   int
	ScaleToken   time.Duration
	ScaleLoad    int
	ScaleTimeout time.Duration
	ScaleHold    time.Duration
	ScaleCluster bool

	RueidisCluster bool // rueidis section: also rotate on a 3-master cluster

	Out      string
	JSON     string // also write the measurements here, for -render
	Render   string // render this JSON instead of measuring
	Micro    string // embed this `go test -bench` output as section 5
	MicroCmd string // the command that produced it
	Notes    string // embed this Markdown file as the analysis
	Merge    string // replace the sections run now in this JSON (written by -json), and write it back
	// MergeFrom, with Merge, takes the sections from this JSON (a run written
	// by -json) instead of measuring them again
	MergeFrom string
}

func defaultConfig() config {
	return config{
		Sections:       "steady,breakdown,instr,rotation,cold,scale,rueidis",
		Protocol:       3,
		SteadyConc:     []int{1, 8, 32, 128},
		SteadyDur:      200 * time.Millisecond,
		SteadyRounds:   150,
		SteadyRounds1:  600,
		SteadyControl:  []int{1, 32},
		SteadyBlocks:   10,
		BreakdownConc:  32,
		InstrCommands:  5000,
		InstrRepeats:   5,
		RotToken:       6 * time.Second,
		RotDur:         4500 * time.Millisecond,
		RotRounds:      10,
		RotCmpDur:      4500 * time.Millisecond,
		RotCmpRounds:   3,
		RueidisRotDur:  12 * time.Second,
		ColdRuns:       20,
		RotConc:        []int{32, 128},
		RotPool:        []int{10, 50},
		RotWindow:      time.Second,
		RotWarm:        500 * time.Millisecond,
		RotCompare:     true,
		ColdGoroutines: 200,
		ScaleConns:     1000,
		ScaleToken:     30 * time.Second,
		ScaleLoad:      64,
		ScaleTimeout:   60 * time.Second,
		ScaleHold:      5 * time.Second,
		ScaleCluster:   true,
		RueidisCluster: true,
		Out:            "bench/RESULTS.md",
		JSON:           "bench/results.json",
		MicroCmd:       "go test -run '^$' -bench . -benchmem -benchtime 2s . ./internal/reauth ./internal/resp",
	}
}

// steadyRounds is the number of interleaved rounds of a steady-state row
// (go-redis, its control, rueidis) at g goroutines.
func (c config) steadyRounds(g int) int {
	if g == 1 && c.SteadyRounds1 > 0 {
		return c.SteadyRounds1
	}
	return c.SteadyRounds
}

// steadyBlocks is the number of fresh pairs of clients the rounds of a
// steady-state row at g goroutines run on (see interleave): SteadyBlocks,
// at least 1 and at most one per round.
func (c config) steadyBlocks(g int) int {
	return max(1, min(c.SteadyBlocks, c.steadyRounds(g)))
}

// smokeConfig is a run of a few seconds at tiny scale.
func smokeConfig() config {
	c := defaultConfig()
	c.SteadyConc = []int{1, 8}
	c.SteadyDur = 100 * time.Millisecond
	c.SteadyRounds = 2
	c.SteadyRounds1 = 3
	c.SteadyControl = []int{8}
	c.BreakdownConc = 8
	c.InstrCommands = 50
	c.InstrRepeats = 1
	c.RotToken = 2 * time.Second
	c.RotDur = 1200 * time.Millisecond
	c.RotRounds = 2
	c.RotCmpDur = 300 * time.Millisecond
	c.RotCmpRounds = 1
	c.RueidisRotDur = 1200 * time.Millisecond
	c.ColdRuns = 2
	c.RotConc = []int{8}
	c.RotPool = []int{4}
	c.RotWindow = 250 * time.Millisecond
	c.RotWarm = 100 * time.Millisecond
	c.ColdGoroutines = 50
	c.ScaleConns = 12
	c.ScaleToken = 2500 * time.Millisecond
	c.ScaleHold = 250 * time.Millisecond
	c.ScaleLoad = 4
	c.ScaleTimeout = 5 * time.Second
	c.ScaleCluster = false
	c.RueidisCluster = false
	c.JSON = ""
	return c
}

type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func main() {
	if os.Getenv(serveEmulatorEnv) == "1" {
		if err := serveEmulator(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: child emulator:", err)
			os.Exit(1)
		}
		return
	}
	if spec := os.Getenv(instrEnv); spec != "" {
		if err := instrChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench: instructions child:", err)
			os.Exit(1)
		}
		return
	}
	cfg := defaultConfig()
	// -smoke picks the tiny defaults; size flags given explicitly still apply.
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.Bool("smoke", false, "tiny run of a few seconds (size flags given explicitly still apply)")
	for _, a := range os.Args[1:] {
		if a == "-smoke" || a == "--smoke" || a == "-smoke=true" || a == "--smoke=true" {
			cfg = smokeConfig()
		}
	}
	bindFlags(fs, &cfg)
	fs.Parse(os.Args[1:])

	redis.SetLogger(silentLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rep *report
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if cfg.Render != "" {
		var err error
		if rep, err = readReport(cfg.Render); err != nil {
			fail(err)
		}
	} else {
		cmd := "go run ./bench " + strings.Join(os.Args[1:], " ")
		measured := cfg // the configuration of the run whose sections are merged
		var err error
		if cfg.MergeFrom != "" {
			if cfg.Merge == "" {
				fail(errors.New("-merge-from needs -merge"))
			}
			if rep, err = readReport(cfg.MergeFrom); err != nil {
				fail(err)
			}
			cmd, measured = rep.Command, rep.Config
			measured.Sections = cfg.Sections
		} else if rep, err = run(ctx, cfg, os.Stderr); err != nil {
			fail(err)
		}
		if cfg.Merge != "" {
			base, err := readReport(cfg.Merge)
			if err != nil {
				fail(err)
			}
			base.mergeFrom(rep, measured, cmd)
			rep = base
			cfg.JSON = cfg.Merge
		} else {
			rep.Command = cmd
			rep.Config = cfg
		}
		if cfg.Micro != "" { // with -merge too: it replaces the merged report's
			b, err := os.ReadFile(cfg.Micro)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
			rep.Micro, rep.MicroCmd = string(b), cfg.MicroCmd
		}
		if cfg.JSON != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if err := os.WriteFile(cfg.JSON, b, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
		}
	}
	notes := ""
	if cfg.Notes != "" {
		b, err := os.ReadFile(cfg.Notes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		notes = string(b)
	}
	md := rep.markdown(notes)
	fmt.Print(md)
	if cfg.Out != "" {
		if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", cfg.Out)
	}
}

func bindFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.Sections, "sections", c.Sections, "sections to run, comma-separated: steady,breakdown,instr,rotation,cold,scale,rueidis")
	fs.IntVar(&c.Protocol, "protocol", c.Protocol, "RESP protocol version (2 or 3)")
	fs.Var((*intList)(&c.SteadyConc), "steady-conc", "steady state: goroutine counts")
	fs.DurationVar(&c.SteadyDur, "steady-dur", c.SteadyDur, "steady state: duration of each client's turn")
	fs.Var((*intList)(&c.SteadyControl), "steady-control", "steady state: goroutine counts of the control rows, plain go-redis against plain go-redis")
	fs.IntVar(&c.SteadyRounds, "steady-rounds", c.SteadyRounds, "steady state: rounds per goroutine count (each round: one turn of each client, the order flipping every round)")
	fs.IntVar(&c.SteadyRounds1, "steady-rounds-1", c.SteadyRounds1, "steady state: rounds at 1 goroutine, where the per-round spread is widest (0: -steady-rounds)")
	fs.IntVar(&c.SteadyBlocks, "steady-blocks", c.SteadyBlocks, "steady state: blocks of rounds per row, each on a fresh pair of clients made in alternating order (1: one pair for the whole row)")
	fs.IntVar(&c.SteadyPool, "steady-pool", c.SteadyPool, "steady state: pool size (0: as many as goroutines)")
	fs.IntVar(&c.InstrCommands, "instr-commands", c.InstrCommands, "instructions: n, where each count is the difference of children running n and 5n commands under callgrind")
	fs.IntVar(&c.InstrRepeats, "instr-repeats", c.InstrRepeats, "instructions: counts of each client")
	fs.IntVar(&c.BreakdownConc, "breakdown-conc", c.BreakdownConc, "breakdown: goroutines and pool size of the layers of the steady-state cost (rounds and turns as -steady-rounds, -steady-dur)")
	fs.DurationVar(&c.RotToken, "rot-token", c.RotToken, "rotation: token lifetime")
	fs.DurationVar(&c.RotDur, "rot-dur", c.RotDur, "rotation: duration of each turn of entraredis and of the old mechanism (entraredis.Credentials as streaming provider)")
	fs.IntVar(&c.RotRounds, "rot-rounds", c.RotRounds, "rotation: interleaved rounds (one turn of each) of entraredis and the old mechanism, per goroutine count and pool size")
	fs.DurationVar(&c.RotCmpDur, "rot-cmp-dur", c.RotCmpDur, "rotation: duration of each turn of the comparison providers")
	fs.IntVar(&c.RotCmpRounds, "rot-cmp-rounds", c.RotCmpRounds, "rotation: interleaved rounds of the two comparison providers")
	fs.DurationVar(&c.RueidisRotDur, "rueidis-rot-dur", c.RueidisRotDur, "rueidis: duration of each rotation run")
	fs.Var((*intList)(&c.RotConc), "rot-conc", "rotation: goroutine counts")
	fs.Var((*intList)(&c.RotPool), "rot-pool", "rotation: pool sizes")
	fs.DurationVar(&c.RotWindow, "rot-window", c.RotWindow, "rotation: the window after each rotation compared with the steady state")
	fs.DurationVar(&c.RotWarm, "rot-warm", c.RotWarm, "rotation: unmeasured warm-up that fills the pool")
	fs.BoolVar(&c.RotCompare, "rot-compare", c.RotCompare, "rotation: also run the naive streaming and CredentialsProviderContext providers")
	fs.IntVar(&c.ColdGoroutines, "cold-goroutines", c.ColdGoroutines, "cold start: goroutines issuing their first command at once")
	fs.IntVar(&c.ColdRuns, "cold-runs", c.ColdRuns, "cold start: runs of each variant (interleaved); the figures are medians")
	fs.IntVar(&c.ScaleConns, "scale-conns", c.ScaleConns, "scale: connections (split across the nodes of the cluster)")
	fs.DurationVar(&c.ScaleToken, "scale-token", c.ScaleToken, "scale: token lifetime (the rotation comes at about half of it)")
	fs.IntVar(&c.ScaleLoad, "scale-load", c.ScaleLoad, "scale: goroutines keeping the connections active")
	fs.DurationVar(&c.ScaleTimeout, "scale-timeout", c.ScaleTimeout, "scale: bound on each wait (connections open, rotation, re-authentication)")
	fs.DurationVar(&c.ScaleHold, "scale-hold", c.ScaleHold, "scale: how long each of the opening commands (WAIT) holds its connection")
	fs.BoolVar(&c.ScaleCluster, "scale-cluster", c.ScaleCluster, "scale: also run on a 3-master cluster")
	fs.BoolVar(&c.RueidisCluster, "rueidis-cluster", c.RueidisCluster, "rueidis: also rotate on a 3-master cluster (the steady state and the rotation use -steady-* and -rot-token, -rueidis-rot-dur, -rot-conc, -rot-warm)")
	fs.StringVar(&c.Out, "out", c.Out, "write the Markdown table here (empty: stdout only)")
	fs.StringVar(&c.JSON, "json", c.JSON, "also write the measurements as JSON here (empty: no)")
	fs.StringVar(&c.Render, "render", c.Render, "render a JSON written by -json instead of measuring (with -notes, -out)")
	fs.StringVar(&c.Micro, "micro", c.Micro, "embed this `go test -bench` output as the micro-benchmark section")
	fs.StringVar(&c.MicroCmd, "micro-cmd", c.MicroCmd, "the command that produced -micro")
	fs.StringVar(&c.Merge, "merge", c.Merge, "re-run only -sections and replace them in this JSON (the report says so), e.g. after a section failed")
	fs.StringVar(&c.MergeFrom, "merge-from", c.MergeFrom, "with -merge: take -sections from this JSON (a run written by -json) instead of measuring them")
	fs.StringVar(&c.Notes, "notes", c.Notes, "embed this Markdown file (the analysis of missed targets) at the end")
}

type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		*l = nil // none: for example no control rows
		return nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

func (c config) has(section string) bool {
	for _, s := range strings.Split(c.Sections, ",") {
		if strings.TrimSpace(s) == section {
			return true
		}
	}
	return false
}

// report is everything a run measured.
type report struct {
	Machine machine
	Steady  []steadyRow
	// SteadyControl is plain go-redis against plain go-redis (config.SteadyControl).
	SteadyControl []steadyRow
	// Breakdown splits the steady-state CPU ratio into layers (runBreakdown).
	Breakdown []breakdownRow
	// Instr is each client's user-space instructions per command (runInstr).
	Instr    []instrRow
	Rotation []rotRow
	Cold     []coldRow
	Scale    []scaleRow
	// RueidisSteady and RueidisRotation are section 6: rueidisentra.
	RueidisSteady []rueidisSteadyRow
	// RueidisControl is plain rueidis against plain rueidis
	// (config.SteadyControl): the noise floor of RueidisSteady.
	RueidisControl  []rueidisSteadyRow
	RueidisRotation []rueidisRotRow
	Started         time.Time
	Took            time.Duration
	Command         string
	Config          config
	Micro           string
	MicroCmd        string
	// Load is /proc/loadavg's 1-minute load average at the start and the end
	// of each section: other work on the machine (the cores are shared).
	Load []sectionLoad
	// Errors are the sections that failed (the others still ran).
	Errors []string
	// Reruns says which sections were measured again by a later command.
	Reruns []string
}

type sectionLoad struct {
	Section    string
	Start, End string
}

// run runs the configured sections, logging progress to log.
func run(ctx context.Context, cfg config, log io.Writer) (*report, error) {
	rep := &report{Machine: readMachine(), Started: time.Now().UTC()}
	logf := func(format string, args ...any) { fmt.Fprintf(log, "bench: "+format+"\n", args...) }
	// section runs f when name is among cfg.Sections, recording the load
	// around it and, if it fails, the error under label (the other sections
	// still run).
	section := func(name, label string, f func() error) {
		if !cfg.has(name) {
			return
		}
		l := sectionLoad{Section: name, Start: loadAvg()}
		err := f()
		l.End = loadAvg()
		rep.Load = append(rep.Load, l)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", label, err))
			logf("%s failed: %v", label, err)
		}
	}
	section("steady", "steady state", func() (err error) {
		if rep.Steady, err = runSteady(ctx, cfg, logf); err != nil {
			return err
		}
		rep.SteadyControl, err = runSteadyControl(ctx, cfg, logf)
		return err
	})
	section("breakdown", "breakdown", func() (err error) {
		rep.Breakdown, err = runBreakdown(ctx, cfg, logf)
		return err
	})
	section("instr", "instructions", func() (err error) {
		rep.Instr, err = runInstr(ctx, cfg, logf)
		return err
	})
	section("rotation", "rotation", func() (err error) {
		rep.Rotation, err = runRotations(ctx, cfg, logf)
		return err
	})
	section("cold", "cold start", func() (err error) {
		rep.Cold, err = runCold(ctx, cfg, logf)
		return err
	})
	section("scale", "scale", func() (err error) {
		rep.Scale, err = runScale(ctx, cfg, logf)
		return err
	})
	section("rueidis", "rueidis", func() (err error) {
		if rep.RueidisSteady, err = runRueidisSteady(ctx, cfg, logf); err != nil {
			return err
		}
		if rep.RueidisControl, err = runRueidisControl(ctx, cfg, logf); err != nil {
			return err
		}
		rep.RueidisRotation, err = runRueidisRotation(ctx, cfg, logf)
		return err
	})
	rep.Took = time.Since(rep.Started)
	return rep, ctx.Err()
}

// loadAvg returns the 1-minute load average, "?" when unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// mergeFrom replaces the sections that n measured, and says so.
// readReport reads a report written by -json.
func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := new(report)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func (r *report) mergeFrom(n *report, cfg config, cmd string) {
	var errs []string
	for _, e := range r.Errors {
		sec, _, _ := strings.Cut(e, ":")
		if !cfg.has(map[string]string{"steady state": "steady", "cold start": "cold", "instructions": "instr"}[sec]) && !cfg.has(sec) {
			errs = append(errs, e)
		}
	}
	r.Errors = append(errs, n.Errors...)
	if cfg.has("steady") {
		r.Steady, r.SteadyControl = n.Steady, n.SteadyControl
		r.Config.SteadyConc, r.Config.SteadyDur, r.Config.SteadyRounds, r.Config.SteadyRounds1, r.Config.SteadyPool, r.Config.SteadyControl = cfg.SteadyConc, cfg.SteadyDur, cfg.SteadyRounds, cfg.SteadyRounds1, cfg.SteadyPool, cfg.SteadyControl
		r.Config.SteadyBlocks = cfg.SteadyBlocks
	}
	if cfg.has("breakdown") {
		r.Breakdown = n.Breakdown
		r.Config.BreakdownConc = cfg.BreakdownConc
	}
	if cfg.has("instr") {
		r.Instr = n.Instr
		r.Config.InstrCommands, r.Config.InstrRepeats = cfg.InstrCommands, cfg.InstrRepeats
	}
	if cfg.has("rotation") {
		r.Rotation = n.Rotation
	}
	if cfg.has("cold") {
		r.Cold = n.Cold
	}
	if cfg.has("rueidis") {
		r.RueidisSteady, r.RueidisControl, r.RueidisRotation = n.RueidisSteady, n.RueidisControl, n.RueidisRotation
	}
	if cfg.has("scale") {
		r.Scale = n.Scale
		r.Config.ScaleConns, r.Config.ScaleToken, r.Config.ScaleLoad, r.Config.ScaleHold = cfg.ScaleConns, cfg.ScaleToken, cfg.ScaleLoad, cfg.ScaleHold
	}
	for _, l := range n.Load {
		r.Load = append(r.Load, sectionLoad{Section: l.Section + " (re-run)", Start: l.Start, End: l.End})
	}
	r.Reruns = append(r.Reruns, fmt.Sprintf("section(s) %s measured again by `%s` on %s (took %s)", cfg.Sections, strings.TrimSpace(cmd), n.Started.Format("2006-01-02 15:04 UTC"), n.Took.Round(time.Second)))
}
