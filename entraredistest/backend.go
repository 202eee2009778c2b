package entraredistest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/entraredis/entraredis/internal/emulator"
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

// miniBackend is the in-process fallback.
type miniBackend struct {
	m *miniredis.Miniredis
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

func startMiniredis(users map[string]emulator.BackendUser) (backendImpl, error) {
	m := miniredis.NewMiniRedis()
	for _, role := range sortedRoles(users) {
		u := users[role]
		m.RequireUserAuth(u.Name, u.Password)
	}
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("entraredistest: start miniredis: %w", err)
	}
	return &miniBackend{m: m}, nil
}

func (b *miniBackend) addr() string { return b.m.Addr() }
func (b *miniBackend) restart() error {
	b.m.Close()
	// The old port may be taken meanwhile (as the local port of some
	// outgoing connection): retry, then move to a new port.
	var err error
	for i := 0; i < 5; i++ {
		if err = b.m.Restart(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 := b.m.StartAddr("127.0.0.1:0"); err2 != nil {
		return errors.Join(err, err2)
	}
	return nil
}
func (b *miniBackend) close() error                   { b.m.Close(); return nil }
func (b *miniBackend) endpointAddr() (string, string) { return "tcp", b.m.Addr() }
func (b *miniBackend) kind() Backend                  { return BackendInProcess }
func (b *miniBackend) limitations() []string          { return append([]string(nil), miniLimitations...) }
