package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/entraredistest"
)

// rueidis' lazy cluster-topology refresh sleeps up to a second on a goroutine
// that Close does not stop (see rueidisentra's TestMain).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"))
}

func TestRun(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	entraredistest.RequireRedisServer(t) // rueidis needs RESP3 and CLIENT TRACKING, which the in-process fallback lacks
	var out strings.Builder
	if err := run(t.Context(), &out, srv.Credential(), srv.Addr(), "", srv.TLSConfig()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 4 || lines[0] != "value1" || lines[1] != "value1" || !strings.HasPrefix(lines[2], "user "+srv.Credential().ObjectID()+", token valid until ") {
		t.Fatalf("printed %q", out.String())
	}
}

func TestRunWrongUsername(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	entraredistest.RequireRedisServer(t) // rueidis needs RESP3 and CLIENT TRACKING, which the in-process fallback lacks
	err := run(t.Context(), &strings.Builder{}, srv.Credential(), srv.Addr(), "not-the-oid", srv.TLSConfig())
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "oid") {
		t.Fatalf("err = %v, want an explained WRONGPASS", err)
	}
}
