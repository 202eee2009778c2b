package inprocess_test

import (
	"testing"

	"github.com/entraredis/entraredis/entraredistest"
	_ "github.com/entraredis/entraredis/entraredistest/inprocess"
)

// Moved here from package entraredistest with the in-process backend.

func TestRequireRedisServerFallback(t *testing.T) {
	t.Setenv(entraredistest.EnvRedisServer, "/nonexistent/redis-server")
	t.Setenv(entraredistest.EnvRequireRedisServer, "")
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	if srv.Backend() != entraredistest.BackendInProcess || len(srv.Limitations()) == 0 {
		t.Fatalf("Backend = %q, Limitations = %v: want the in-process fallback with limitations", srv.Backend(), srv.Limitations())
	}
	if s, err := entraredistest.Start(entraredistest.Options{RedisServer: "/nonexistent/redis-server"}); err == nil {
		s.Close()
		t.Fatal("Start with a wrong explicit RedisServer path: no error")
	}
	t.Setenv(entraredistest.EnvRequireRedisServer, "1")
	if s, err := entraredistest.Start(entraredistest.Options{}); err == nil {
		s.Close()
		t.Fatalf("Start with %s=1 and no redis-server: no error", entraredistest.EnvRequireRedisServer)
	}
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		entraredistest.RequireRedisServer(ft)
	}()
	if !ft.fatal || ft.skipped {
		t.Fatalf("RequireRedisServer with %s=1 and no redis-server: fatal=%v skipped=%v, want a failure", entraredistest.EnvRequireRedisServer, ft.fatal, ft.skipped)
	}
	t.Setenv(entraredistest.EnvRequireRedisServer, "")
	ft = &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		entraredistest.RequireRedisServer(ft)
	}()
	if !ft.skipped {
		t.Fatal("RequireRedisServer without redis-server did not skip")
	}
}

// fakeTB records Fatalf/Skipf and stops the caller with a panic.
type fakeTB struct {
	testing.TB
	fatal, skipped bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.fatal = true
	panic("fatal")
}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic("skip")
}
