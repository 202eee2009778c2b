package rueidisentra_test

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/rueidisentra"
)

func TestHelloWorld(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	entraredistest.RequireRedisServer(t) // rueidis needs RESP3 and CLIENT TRACKING, which the in-process fallback lacks
	c := connect(t, srv.Credential(), []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{}, rueidisentra.Options{})
	ctx := t.Context()
	if err := c.Do(ctx, c.B().Set().Key("Az:key1").Value("value1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Do(ctx, c.B().Get().Key("Az:key1").Build()).ToString()
	if err != nil || got != "value1" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	who, err := c.Do(ctx, c.B().AclWhoami().Build()).ToString()
	if err != nil || who != srv.Credential().ObjectID() {
		t.Fatalf("ACL WHOAMI = %q, %v; want the oid %q", who, err, srv.Credential().ObjectID())
	}
	st := status(t, c)
	if st.Username != srv.Credential().ObjectID() || st.Conns.Current == 0 {
		t.Fatalf("status %+v", st)
	}
}
