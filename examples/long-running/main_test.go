package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/entraredis/entraredis/entraredistest"
)

// TestServeAcrossRotations runs the service for 9 s on 3-second tokens: three
// token lifetimes, and no command may fail.
func TestServeAcrossRotations(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 3 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Second)
	defer cancel()
	got, err := serve(ctx, srv.Credential(), config{
		addr:      srv.Addr(),
		tlsConfig: srv.TLSConfig(),
		every:     20 * time.Millisecond,
		report:    time.Second,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.errs != 0 || got.ops < 100 || got.rotations < 4 {
		t.Fatalf("%+v: want no errors, 100+ operations and 3+ rotations", got)
	}
	st := srv.Stats()
	if st.RefusedAuths != 0 {
		t.Fatalf("the server refused %d AUTHs", st.RefusedAuths)
	}
	t.Logf("%d operations, %d rotations, %d re-AUTHs, %d idle connections closed at expiry", got.ops, got.rotations, st.ReAuths, st.ExpiryCloses)
}
