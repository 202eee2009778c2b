// Package redisproc starts throwaway redis-server processes for tests, benchmarks
// and the emulator: standalone servers and small Redis Clusters, bound to
// 127.0.0.1 only, with no persistence, ACL users given by the caller and the
// default user disabled. Every process lives in its own temporary directory
// (configuration, log, nodes.conf), which Close removes.
//
// Administration uses a built-in ACL user (see Process.AdminUser) and the
// minimal RESP client of internal/resp, so the package depends on nothing but
// the standard library and that package.
package redisproc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultStartTimeout = 15 * time.Second
	DefaultStopTimeout  = 5 * time.Second
	// AdminUserName is the ACL user every process gets for administration
	// ("on", all keys, all channels, all commands), with a random password.
	AdminUserName = "redisproc-admin"
)

// maxPortAttempts bounds the retries when a chosen free port is taken by
// someone else before redis-server binds it.
const maxPortAttempts = 5

// User is one ACL user created in redis.conf.
type User struct {
	// Name of the user; must not contain white space. Required.
	Name string
	// Password in clear; it is written to redis.conf only as its SHA-256 hash.
	// Required (may not be empty).
	Password string
	// Rules are ACL rules applied after "on" and the password, for example
	// "~*", "&*", "+@all", "-@dangerous". Each rule must not contain white space.
	// Default: none (the user can authenticate but run nothing).
	Rules []string
}

// Config configures Start.
type Config struct {
	// RedisServer is the path of redis-server; default Find("").
	RedisServer string
	// Users are the ACL users to create. The default user is always disabled.
	Users []User
	// Port to listen on (127.0.0.1); default 0 means a free port chosen at start.
	Port int
	// ExtraConfig lines are appended to redis.conf as given (after the defaults).
	ExtraConfig []string
	// StartTimeout bounds the wait for the server to answer PING; default 15s.
	StartTimeout time.Duration
	// StopTimeout is the wait after SIGTERM before SIGKILL; default 5s.
	StopTimeout time.Duration
}

// clusterSettings are the per-node cluster settings of a cluster node.
type clusterSettings struct {
	announceIP   string
	announcePort int // 0: announce the real port
	nodeTimeout  time.Duration
}

// Process is one running redis-server. Its methods are safe for concurrent use.
type Process struct {
	cfg       Config
	bin       string
	dir       string
	adminPass string
	cluster   *clusterSettings

	port    int // fixed once Start returns
	busPort int // fixed once Start returns

	mu     sync.Mutex // guards the fields below and serializes Restart/Close
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current cmd has been waited for
	closed bool
}

// Start starts one redis-server on 127.0.0.1 (a free port unless cfg.Port is set)
// and waits until it answers PING. The caller must Close it.
func Start(cfg Config) (*Process, error) {
	return start(cfg, nil)
}

func start(cfg Config, cs *clusterSettings) (*Process, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if err := validateUsers(cfg.Users); err != nil {
		return nil, err
	}
	bin, err := Find(cfg.RedisServer)
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	dir, err := os.MkdirTemp("", "entraredis-redis-")
	if err != nil {
		return nil, fmt.Errorf("redisproc: temp dir: %w", err)
	}
	p := &Process{cfg: cfg, bin: bin, dir: dir, adminPass: randomHex(24), cluster: cs}
	var lastErr error
	for attempt := 0; attempt < maxPortAttempts; attempt++ {
		p.port = cfg.Port
		if p.port == 0 {
			if p.port, err = freePort(); err != nil {
				lastErr = err
				continue
			}
		}
		if cs != nil {
			if p.busPort, err = freePort(); err != nil || p.busPort == p.port {
				lastErr = fmt.Errorf("redisproc: free bus port: %w", err)
				continue
			}
		}
		lastErr = p.launch()
		if lastErr == nil {
			return p, nil
		}
		if !errors.Is(lastErr, errAddrInUse) || cfg.Port != 0 {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

func validateUsers(users []User) error {
	seen := map[string]bool{AdminUserName: true, "default": true}
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name, " \t\r\n\"'") {
			return fmt.Errorf("redisproc: invalid ACL user name %q", u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("redisproc: ACL user %q is reserved or duplicated", u.Name)
		}
		seen[u.Name] = true
		if u.Password == "" {
			return fmt.Errorf("redisproc: ACL user %q has an empty password", u.Name)
		}
		for _, r := range u.Rules {
			if r == "" || strings.ContainsAny(r, " \t\r\n\"'") {
				return fmt.Errorf("redisproc: invalid ACL rule %q for user %q", r, u.Name)
			}
		}
	}
	return nil
}

var errAddrInUse = errors.New("address already in use")

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

func passwordHash(pass string) string {
	sum := sha256.Sum256([]byte(pass))
	return "#" + hex.EncodeToString(sum[:])
}

func (p *Process) logPath() string { return filepath.Join(p.dir, "redis.log") }

// config renders redis.conf for the current ports.
func (p *Process) config() string {
	var b strings.Builder
	line := func(s ...string) { b.WriteString(strings.Join(s, " ")); b.WriteByte('\n') }
	line("bind", "127.0.0.1")
	line("port", strconv.Itoa(p.port))
	line("protected-mode", "yes")
	line("daemonize", "no")
	line("save", `""`)
	line("appendonly", "no")
	line("dir", strconv.Quote(p.dir))
	line("logfile", strconv.Quote(p.logPath()))
	line("loglevel", "notice")
	line("databases", "16")
	line("user", "default", "off", "resetpass", "nocommands")
	line("user", AdminUserName, "on", passwordHash(p.adminPass), "~*", "&*", "+@all")
	for _, u := range p.cfg.Users {
		args := []string{"user", u.Name, "on", passwordHash(u.Password)}
		line(append(args, u.Rules...)...)
	}
	if cs := p.cluster; cs != nil {
		line("cluster-enabled", "yes")
		line("cluster-config-file", "nodes.conf")
		line("cluster-port", strconv.Itoa(p.busPort))
		line("cluster-node-timeout", strconv.FormatInt(cs.nodeTimeout.Milliseconds(), 10))
		line("cluster-announce-ip", cs.announceIP)
		ap := cs.announcePort
		if ap == 0 {
			ap = p.port
		}
		line("cluster-announce-port", strconv.Itoa(ap))
		line("cluster-announce-bus-port", strconv.Itoa(p.busPort))
	}
	for _, l := range p.cfg.ExtraConfig {
		line(l)
	}
	return b.String()
}

// launch writes redis.conf, starts redis-server and waits until it answers PING.
// On failure the process is gone when launch returns.
func (p *Process) launch() error {
	conf := filepath.Join(p.dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(p.config()), 0o600); err != nil {
		return fmt.Errorf("redisproc: write config: %w", err)
	}
	logOffset := fileSize(p.logPath())
	outPath := filepath.Join(p.dir, "stdout.log")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("redisproc: open %s: %w", outPath, err)
	}
	outOffset := fileSize(outPath)
	cmd := exec.Command(p.bin, conf)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	out.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("redisproc: start %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited

	if err := p.waitReady(); err != nil {
		p.stop()
		msg := tail(p.logPath(), logOffset) + tail(outPath, outOffset)
		if strings.Contains(msg, "Address already in use") {
			err = fmt.Errorf("%w (port %d or %d): %w", errAddrInUse, p.port, p.busPort, err)
		}
		return fmt.Errorf("redisproc: redis-server on port %d did not start: %w; log: %s", p.port, err, strings.TrimSpace(msg))
	}
	return nil
}

func (p *Process) waitReady() error {
	deadline := time.Now().Add(p.cfg.StartTimeout)
	var lastErr error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("redis-server exited: %v", p.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := p.do(ctx, "PING")
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v: %w", p.cfg.StartTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// tail returns at most 2 KiB of path from offset on.
func tail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	size := fileSize(path)
	if size-offset > 2048 {
		offset = size - 2048
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 2048))
	return string(b)
}

// stop sends SIGTERM, then SIGKILL after StopTimeout, and waits for the process.
func (p *Process) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(p.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// do runs one command on a fresh connection authenticated as the admin user.
func (p *Process) do(ctx context.Context, args ...string) (any, error) {
	rc, err := dialResp(ctx, p.Addr(), AdminUserName, p.adminPass)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return rc.do(args...)
}

// Do runs one command as the admin user on a new connection and returns the reply:
// string, int64, nil, []any, or a RedisError as the error.
func (p *Process) Do(ctx context.Context, args ...string) (any, error) {
	v, err := p.do(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("redisproc: %s on %s: %w", firstArg(args), p.Addr(), err)
	}
	return v, nil
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return "(empty command)"
	}
	return args[0]
}

// Addr returns "127.0.0.1:PORT", the address redis-server listens on.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port())) }

// Port returns the port redis-server listens on; it does not change on Restart.
func (p *Process) Port() int { return p.port } // set before Start returns, never changed

// BusPort returns the cluster bus port of a cluster node, 0 for a standalone server.
func (p *Process) BusPort() int { return p.busPort }

// AnnouncePort returns the port a cluster node announces in the topology
// (cluster-announce-port), 0 for a standalone server.
func (p *Process) AnnouncePort() int {
	if p.cluster == nil {
		return 0
	}
	if p.cluster.announcePort != 0 {
		return p.cluster.announcePort
	}
	return p.Port()
}

// Pid returns the process id of the current redis-server (it changes on Restart),
// or 0 when closed.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Dir returns the process' own temporary directory (redis.conf, redis.log,
// nodes.conf). Close removes it.
func (p *Process) Dir() string { return p.dir }

// LogPath returns the path of redis-server's log file (inside Dir).
func (p *Process) LogPath() string { return p.logPath() }

// AdminUser returns the name and password of the built-in administration user
// (all keys, channels and commands).
func (p *Process) AdminUser() (name, password string) { return AdminUserName, p.adminPass }

// Exited returns a channel closed when the current redis-server process has exited
// (for whatever reason). After Restart it refers to the new process.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Restart stops redis-server (SIGTERM, then SIGKILL after StopTimeout) and starts
// it again on the same port with the same configuration, waiting until it answers
// PING. Data is not kept (there is no persistence); a cluster node keeps its
// identity and slots (nodes.conf stays in Dir).
func (p *Process) Restart() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("redisproc: Restart after Close")
	}
	p.stop()
	var err error
	for attempt := 0; attempt < maxPortAttempts; attempt++ {
		if err = p.launch(); err == nil || !errors.Is(err, errAddrInUse) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops redis-server (SIGTERM, then SIGKILL after StopTimeout), waits for it
// and removes Dir. Calling Close again does nothing.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.stop()
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("redisproc: remove %s: %w", p.dir, err)
	}
	return nil
}
