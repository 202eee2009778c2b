// Package inprocess is the in-process fallback of package entraredistest: a
// miniredis server in the test process, for machines without redis-server.
// Importing the package registers it:
//
//	import _ "github.com/entraredis/entraredis/entraredistest/inprocess"
//
// after which entraredistest.NewServer and Start use it when redis-server is
// absent (BackendAuto) or when Options.Backend is BackendInProcess. What it
// does not emulate (ACL, cluster, some introspection) is listed by
// Server.Limitations. It is a module of its own, so that the library's
// module does not depend on miniredis.
package inprocess

import (
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/entraredis/entraredis/entraredistest"
)

func init() { entraredistest.RegisterInProcess(start) }

// server is a miniredis that requires one of the users' passwords.
type server struct{ m *miniredis.Miniredis }

// start starts a miniredis on a free loopback port with the given users
// (name → password).
func start(users map[string]string) (entraredistest.InProcessRedis, error) {
	m := miniredis.NewMiniRedis()
	for name, pass := range users {
		m.RequireUserAuth(name, pass)
	}
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start miniredis: %w", err)
	}
	return &server{m: m}, nil
}

// Addr returns "127.0.0.1:PORT".
func (s *server) Addr() string { return s.m.Addr() }

// Restart stops and starts the server, keeping its data. The old port may
// be taken meanwhile (as the local port of some outgoing connection): it
// retries, then moves to a new port.
func (s *server) Restart() error {
	s.m.Close()
	var err error
	for i := 0; i < 5; i++ {
		if err = s.m.Restart(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 := s.m.StartAddr("127.0.0.1:0"); err2 != nil {
		return errors.Join(err, err2)
	}
	return nil
}

// Close stops the server.
func (s *server) Close() error { s.m.Close(); return nil }
