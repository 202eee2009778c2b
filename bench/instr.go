package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// instrEnv, set to "CLIENT COMMANDS PROTOCOL FILE", makes this program run
// COMMANDS commands on one connection of CLIENT (instrClients) against the
// child emulator described in FILE, print its system calls during them as
// one JSON line and exit, instead of measuring (see runInstr).
const instrEnv = "ENTRAREDIS_BENCH_INSTR"

// instrClients are the clients the instructions section counts.
var instrClients = []string{"entraredis", "plain"}

// instrRow is one client's count: user-space instructions per command, one
// figure per repeat, and system calls per command (one run outside
// valgrind).
type instrRow struct {
	Client                     string
	InstrPerOp                 []float64
	SysReadsPerOp, SysWritesOp float64
}

// median is the median instructions per command.
func (r instrRow) median() float64 { m, _, _ := spread(r.InstrPerOp); return m }

// procIO is the system call counts of /proc/self/io.
type procIO struct{ SysR, SysW int64 }

func readProcIO() (procIO, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return procIO{}, err
	}
	var p procIO
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			p.SysR = n
		case "syscw":
			p.SysW = n
		}
	}
	return p, nil
}

// instrChild is this program as an instrEnv child: spec is the variable's
// value.
func instrChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 4 {
		return fmt.Errorf("%s=%q: want CLIENT COMMANDS PROTOCOL FILE", instrEnv, spec)
	}
	n, err1 := strconv.Atoi(f[1])
	proto, err2 := strconv.Atoi(f[2])
	b, err3 := os.ReadFile(f[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	srv := &childEmulator{}
	if err := json.Unmarshal(b, &srv.info); err != nil {
		return err
	}
	ctx := context.Background()
	cfg := config{Protocol: proto}
	var c redis.UniversalClient
	switch f[0] {
	case "plain":
		c = redis.NewClient(plainOptions(srv, cfg, 1))
	case "entraredis":
		ours, err := newSteadyOurs(ctx, srv, cfg, 1)
		if err != nil {
			return err
		}
		c = ours
	default:
		return fmt.Errorf("no client %q", f[0])
	}
	defer c.Close()
	op := goRedisOp(c)
	cmds := func(n int) error {
		for i := range n {
			if err := op(ctx, "bench:instr:{0}", "value-0123456789", i&1 == 0); err != nil {
				return err
			}
		}
		return nil
	}
	if err := cmds(200); err != nil { // warm-up: dial, HELLO, the first token
		return err
	}
	io0, err := readProcIO()
	if err != nil {
		return err
	}
	if err := cmds(n); err != nil {
		return err
	}
	io1, err := readProcIO()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(procIO{SysR: io1.SysR - io0.SysR, SysW: io1.SysW - io0.SysW})
}

// collected is callgrind's total in its summary ("==PID== Collected : N").
var collected = regexp.MustCompile(`Collected : (\d+)`)

// runInstr counts, under valgrind's callgrind, the user-space instructions
// one command costs each client at one goroutine: a child runs 200
// commands, then n (cfg.InstrCommands) or 5n, and the difference of the two
// totals over 4n commands is the figure, free of start-up and exit. Each
// client is counted cfg.InstrRepeats times. Instruction counts do not depend
// on what else the machine runs, so they settle at one goroutine what the
// CPU time of section 1 cannot resolve; the kernel's share (system calls,
// the other half of the CPU time) is the same for both when both make the
// same system calls per command, which a run outside valgrind counts.
func runInstr(ctx context.Context, cfg config, logf func(string, ...any)) ([]instrRow, error) {
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		return nil, fmt.Errorf("valgrind not found (apt-get install valgrind): %w", err)
	}
	r, err := newInstrRunner(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.valgrind = vg
	n := max(cfg.InstrCommands, 1)
	rows := make([]instrRow, len(instrClients))
	for i, client := range instrClients {
		rows[i].Client = client
		_, sys, err := r.count(ctx, client, 5*n, false)
		if err != nil {
			return nil, err
		}
		rows[i].SysReadsPerOp, rows[i].SysWritesOp = float64(sys.SysR)/float64(5*n), float64(sys.SysW)/float64(5*n)
	}
	for rep := range max(cfg.InstrRepeats, 1) {
		for i, client := range instrClients {
			short, _, err := r.count(ctx, client, n, true)
			if err != nil {
				return nil, err
			}
			long, _, err := r.count(ctx, client, 5*n, true)
			if err != nil {
				return nil, err
			}
			per := float64(long-short) / float64(4*n)
			rows[i].InstrPerOp = append(rows[i].InstrPerOp, per)
			logf("instructions, count %d: %s %.0f per command", rep+1, client, per)
		}
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// instrRunner runs instrEnv children of this executable against one child
// emulator.
type instrRunner struct {
	srv      *childEmulator
	info     string // the file of the emulator's emulatorInfo, for the children
	exe      string
	proto    int
	valgrind string // valgrind's path, for count with valgrind true
}

// newInstrRunner starts the child emulator and writes its emulatorInfo to a
// temporary file.
func newInstrRunner(proto int) (*instrRunner, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	srv, err := startChildEmulator()
	if err != nil {
		return nil, err
	}
	r := &instrRunner{srv: srv, exe: exe, proto: proto}
	f, err := os.CreateTemp("", "entraredis-bench-instr-*.json")
	if err == nil {
		r.info = f.Name()
		err = errors.Join(json.NewEncoder(f).Encode(srv.info), f.Close())
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close removes the file and stops the emulator.
func (r *instrRunner) close() {
	if r.info != "" {
		os.Remove(r.info)
	}
	r.srv.Close()
}

// count runs one child of client for n commands, under callgrind when
// valgrind is true, and returns callgrind's total (0 without valgrind) and
// the child's system calls during the n commands. Go's asynchronous
// preemption is off in the child (GODEBUG asyncpreemptoff=1): callgrind
// does not handle its signals. So is the runtime's use of RDTSCP
// (cpu.rdtscp=off: cputicks falls back to a fence and RDTSC): valgrind 3.19
// does not decode RDTSCP, and Go 1.26's runtime executes it when one of its
// own locks is contended, which killed the entraredis child with SIGILL.
func (r *instrRunner) count(ctx context.Context, client string, n int, valgrind bool) (instr int64, sys procIO, err error) {
	name, args := r.exe, []string(nil)
	if valgrind {
		name, args = r.valgrind, []string{"--tool=callgrind", "--callgrind-out-file=/dev/null", r.exe}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %s", instrEnv, client, n, r.proto, r.info), "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, sys, fmt.Errorf("%s, %d commands: %w: %s", client, n, err, lastLine(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &sys); err != nil {
		return 0, sys, fmt.Errorf("%s, %d commands: %w", client, n, err)
	}
	if valgrind {
		if instr, err = callgrindTotal(stderr.String()); err != nil {
			return 0, sys, fmt.Errorf("%s, %d commands: %w", client, n, err)
		}
	}
	return instr, sys, nil
}

// callgrindTotal is the total of callgrind's summary in its output
// ("==PID== Collected : N").
func callgrindTotal(out string) (int64, error) {
	m := collected.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no callgrind total in: %s", lastLine(out))
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// lastLine is the last non-empty line of s, for an error message.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// instrRatio is entraredis' median instructions per command over plain's.
func instrRatio(rows []instrRow) float64 {
	i := slices.IndexFunc(rows, func(r instrRow) bool { return r.Client == "entraredis" })
	j := slices.IndexFunc(rows, func(r instrRow) bool { return r.Client == "plain" })
	if i < 0 || j < 0 || rows[j].median() == 0 {
		return 0
	}
	return rows[i].median() / rows[j].median()
}
