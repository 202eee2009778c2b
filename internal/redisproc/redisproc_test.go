package redisproc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// envRequire mirrors entraredistest.EnvRequireRedisServer (not imported: that
// package depends on this one).
const envRequire = "ENTRAREDIS_REQUIRE_REDIS_SERVER"

func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := Find(""); err != nil {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("%s=1 but redis-server is not available: %v", envRequire, err)
		}
		t.Skipf("redis-server not available (set %s=1 to fail instead): %v", envRequire, err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func as(t *testing.T, p *Process, user, pass string, args ...string) (any, error) {
	t.Helper()
	rc, err := dialResp(ctxT(t), p.Addr(), user, pass)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return rc.do(args...)
}

var testUsers = []User{
	{Name: "owner", Password: "owner pass with spaces", Rules: []string{"~*", "&*", "+@all"}},
	{Name: "reader", Password: "reader-pass", Rules: []string{"~*", "&*", "-@all", "+@read", "+@connection"}},
}

func startT(t *testing.T, cfg Config) *Process {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestStartPingACL(t *testing.T) {
	requireRedis(t)
	p := startT(t, Config{Users: testUsers})

	if host, _, _ := net.SplitHostPort(p.Addr()); host != "127.0.0.1" {
		t.Fatalf("Addr %s", p.Addr())
	}
	if p.Port() <= 0 || p.Pid() <= 0 || p.AnnouncePort() != 0 || p.BusPort() != 0 {
		t.Fatalf("port %d pid %d announce %d bus %d", p.Port(), p.Pid(), p.AnnouncePort(), p.BusPort())
	}
	if st, err := os.Stat(p.Dir()); err != nil || !st.IsDir() {
		t.Fatalf("Dir %q: %v", p.Dir(), err)
	}
	if _, err := os.Stat(filepath.Join(p.Dir(), "redis.log")); err != nil {
		t.Fatalf("log file: %v", err)
	}

	if v, err := as(t, p, "owner", "owner pass with spaces", "SET", "k", "v"); err != nil || v != "OK" {
		t.Fatalf("owner SET: %v %v", v, err)
	}
	if v, err := as(t, p, "reader", "reader-pass", "GET", "k"); err != nil || v != "v" {
		t.Fatalf("reader GET: %v %v", v, err)
	}
	_, err := as(t, p, "reader", "reader-pass", "SET", "k", "w")
	var re RedisError
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "NOPERM") {
		t.Fatalf("reader SET: %v, want NOPERM", err)
	}
	_, err = as(t, p, "owner", "wrong", "PING")
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v, want WRONGPASS", err)
	}
	// The default user is off: no command without AUTH, and AUTH default fails.
	_, err = as(t, p, "", "", "PING")
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated PING: %v, want NOAUTH", err)
	}
	_, err = as(t, p, "default", "", "PING")
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("AUTH default: %v, want WRONGPASS", err)
	}
	v, err := p.Do(ctxT(t), "ACL", "GETUSER", "default")
	if err != nil {
		t.Fatal(err)
	}
	if flags := getField(v, "flags"); !containsStr(flags, "off") {
		t.Fatalf("default user flags %v, want off", flags)
	}
	for param, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1", "protected-mode": "yes", "port": strconv.Itoa(p.Port())} {
		v, err := p.Do(ctxT(t), "CONFIG", "GET", param)
		if err != nil {
			t.Fatal(err)
		}
		if got := getField(v, param); got != want {
			t.Errorf("CONFIG %s = %v, want %q", param, got, want)
		}
	}
	// The clear password never reaches redis.conf.
	conf, err := os.ReadFile(filepath.Join(p.Dir(), "redis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), "reader-pass") {
		t.Fatal("redis.conf contains a clear password")
	}
}

func getField(v any, key string) any {
	arr, _ := v.([]any)
	for i := 0; i+1 < len(arr); i += 2 {
		if arr[i] == key {
			return arr[i+1]
		}
	}
	return nil
}

func containsStr(v any, s string) bool {
	arr, _ := v.([]any)
	for _, x := range arr {
		if x == s {
			return true
		}
	}
	return false
}

func TestRestartKeepsPort(t *testing.T) {
	requireRedis(t)
	p := startT(t, Config{Users: testUsers})
	port, pid := p.Port(), p.Pid()
	oldExited := p.Exited()
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-oldExited:
	default:
		t.Fatal("old process has not exited after Restart")
	}
	if p.Port() != port {
		t.Fatalf("port %d after restart, was %d", p.Port(), port)
	}
	if p.Pid() == pid || p.Pid() <= 0 {
		t.Fatalf("pid %d after restart, was %d", p.Pid(), pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("old pid %d still exists: %v", pid, err)
	}
	if v, err := as(t, p, "owner", "owner pass with spaces", "PING"); err != nil || v != "PONG" {
		t.Fatalf("PING after restart: %v %v", v, err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	requireRedis(t)
	p, err := Start(Config{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir, addr := p.Pid(), p.Dir(), p.Addr()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after Close: %v", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir %s still exists after Close: %v", dir, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", addr)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Pid() != 0 {
		t.Fatalf("Pid %d after Close", p.Pid())
	}
	if err := p.Restart(); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
}

func TestStartFixedPortInUse(t *testing.T) {
	t.Parallel() // slow (cluster formation, failed start): overlap with the rest
	requireRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(Config{Port: ln.Addr().(*net.TCPAddr).Port, StartTimeout: 5 * time.Second})
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("Start on a busy port: %v, want address in use", err)
	}
}

func TestInvalidUsers(t *testing.T) {
	for _, users := range [][]User{
		{{Name: "", Password: "x"}},
		{{Name: "a b", Password: "x"}},
		{{Name: "a", Password: ""}},
		{{Name: "default", Password: "x"}},
		{{Name: AdminUserName, Password: "x"}},
		{{Name: "a", Password: "x"}, {Name: "a", Password: "y"}},
		{{Name: "a", Password: "x", Rules: []string{"+@all ~*"}}},
	} {
		if _, err := Start(Config{Users: users}); err == nil {
			t.Errorf("Start with users %+v succeeded", users)
		}
	}
}

func TestFind(t *testing.T) {
	if _, err := Find("/nonexistent/redis-server"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("explicit bad path: %v", err)
	}
	if _, err := Find(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("directory: %v", err)
	}
	t.Setenv(EnvRedisServer, "/nonexistent/redis-server")
	if _, err := Find(""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), EnvRedisServer) {
		t.Fatalf("bad env path: %v", err)
	}
	t.Setenv(EnvRedisServer, "")
	t.Setenv("PATH", t.TempDir())
	_, err := Find("")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "install redis-server") {
		t.Fatalf("empty PATH: %v", err)
	}
	if _, err := Start(Config{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start without redis-server: %v", err)
	}
}

func TestFindExplicitAndEnv(t *testing.T) {
	requireRedis(t)
	path, err := Find("")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Find(path); err != nil || got != path {
		t.Fatalf("explicit: %q %v", got, err)
	}
	t.Setenv(EnvRedisServer, path)
	t.Setenv("PATH", t.TempDir())
	if got, err := Find(""); err != nil || got != path {
		t.Fatalf("env: %q %v", got, err)
	}
	major, _, _, err := Version(path)
	if err != nil || major < 6 {
		t.Fatalf("Version: %d %v", major, err)
	}
}
