package entraredistest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/entraredis/entraredis/entraredistest/internal/emulator"
	"github.com/entraredis/entraredis/internal/redisproc"
)

// findRedisServer finds redis-server: explicit path, then
// $ENTRAREDIS_REDIS_SERVER, then PATH.
func findRedisServer(explicit string) (string, error) {
	p, err := redisproc.Find(explicit)
	if err != nil {
		return "", fmt.Errorf("entraredistest: %w", err)
	}
	return p, nil
}

// redisServerBackend is a redis-server process with one ACL user per role.
// It also listens on a Unix socket, which the endpoint uses (cheaper than
// TCP loopback); BackendAddr stays the TCP address.
type redisServerBackend struct {
	p       *redisproc.Process
	sockDir string
}

func startRedisServer(path string, users map[string]emulator.BackendUser) (backendImpl, error) {
	if path == "" {
		var err error
		if path, err = findRedisServer(""); err != nil {
			return nil, err
		}
	}
	var us []redisproc.User
	for _, role := range sortedRoles(users) {
		u := users[role]
		us = append(us, redisproc.User{Name: u.Name, Password: u.Password, Rules: roleRules[Role(role)]})
	}
	sockDir, err := os.MkdirTemp("", "entraredistest-")
	if err != nil {
		return nil, fmt.Errorf("entraredistest: socket dir: %w", err)
	}
	p, err := redisproc.Start(redisproc.Config{RedisServer: path, Users: us, ExtraConfig: []string{
		"unixsocket " + filepath.Join(sockDir, "redis.sock"),
		"unixsocketperm 700",
	}})
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("entraredistest: start redis-server: %w", err)
	}
	return &redisServerBackend{p: p, sockDir: sockDir}, nil
}

func sortedRoles(users map[string]emulator.BackendUser) []string {
	roles := make([]string, 0, len(users))
	for r := range users {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

func (b *redisServerBackend) addr() string   { return b.p.Addr() }
func (b *redisServerBackend) restart() error { return b.p.Restart() }
func (b *redisServerBackend) close() error {
	return errors.Join(b.p.Close(), os.RemoveAll(b.sockDir))
}
func (b *redisServerBackend) endpointAddr() (string, string) {
	return "unix", filepath.Join(b.sockDir, "redis.sock")
}
func (b *redisServerBackend) kind() Backend         { return BackendRedisServer }
func (b *redisServerBackend) limitations() []string { return nil }

// InProcessRedis is a Redis server running in the test process: the
// backend of BackendInProcess, and of BackendAuto when redis-server is
// absent. The module github.com/entraredis/entraredis/entraredistest/inprocess
// provides one (miniredis) and registers it when its package is imported:
//
//	import _ "github.com/entraredis/entraredis/entraredistest/inprocess"
//
// It is a module of its own so that the library's module, which holds this
// package, does not depend on miniredis.
type InProcessRedis interface {
	// Addr returns its TCP address, "127.0.0.1:PORT".
	Addr() string
	// Restart stops and starts it again, keeping its data; it may move to a
	// new port (Addr says where).
	Restart() error
	// Close stops it.
	Close() error
}

// inProcess starts the registered in-process Redis; nil when none is.
var inProcess atomic.Pointer[func(users map[string]string) (InProcessRedis, error)]

// RegisterInProcess sets the function that starts the in-process Redis with
// one user (name → password) per Role, each allowed every command. Package
// inprocess calls it when imported; a later call replaces an earlier one.
func RegisterInProcess(start func(users map[string]string) (InProcessRedis, error)) {
	inProcess.Store(&start)
}

// errNoInProcess is the error of BackendInProcess, or of BackendAuto without
// redis-server, when no in-process Redis is registered.
var errNoInProcess = errors.New(`entraredistest: no in-process Redis: install redis-server (Debian: apt-get install redis-server), set ` + EnvRedisServer + `, or import _ "github.com/entraredis/entraredis/entraredistest/inprocess" for the in-process fallback`)

// miniBackend is the in-process fallback.
type miniBackend struct {
	m InProcessRedis
}

// miniLimitations is what the in-process fallback does not emulate.
var miniLimitations = []string{
	"no ACL: every role may run every command, so readers and contributors never get NOPERM",
	"no cluster mode",
	"AUTH is refused on subscribed RESP3 connections (Redis allows it), so they cannot re-authenticate and are closed at expiry",
	"RestartBackend keeps the data (redis-server loses it)",
	"replies come from miniredis: some error texts differ from Redis 7 (WRONGPASS is corrected by the endpoint), and unimplemented commands answer ERR unknown command",
	"CLIENT LIST/KILL/INFO and other introspection commands are partial or missing",
}

func startInProcess(users map[string]emulator.BackendUser) (backendImpl, error) {
	start := inProcess.Load()
	if start == nil {
		return nil, errNoInProcess
	}
	byName := make(map[string]string, len(users))
	for _, u := range users {
		byName[u.Name] = u.Password
	}
	m, err := (*start)(byName)
	if err != nil {
		return nil, fmt.Errorf("entraredistest: start the in-process Redis: %w", err)
	}
	return &miniBackend{m: m}, nil
}

func (b *miniBackend) addr() string                   { return b.m.Addr() }
func (b *miniBackend) restart() error                 { return b.m.Restart() }
func (b *miniBackend) close() error                   { return b.m.Close() }
func (b *miniBackend) endpointAddr() (string, string) { return "tcp", b.m.Addr() }
func (b *miniBackend) kind() Backend                  { return BackendInProcess }
func (b *miniBackend) limitations() []string          { return append([]string(nil), miniLimitations...) }
