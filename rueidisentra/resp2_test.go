package rueidisentra_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/rueidisentra"
)

// TestRESP2Subscriber: with AlwaysRESP2, rueidis runs a subscription on a
// connection of its own, which cannot run AUTH while subscribed: at its
// moment of the hand-out the server refuses the AUTH and rueidis closes the
// connection, so Receive returns with an error and the subscriber must
// subscribe again (what the package documents). Commands are unaffected.
func TestRESP2Subscriber(t *testing.T) {
	const life = 2 * time.Second
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: life})
	entraredistest.RequireRedisServer(t)
	c := connect(t, srv.Credential(), []string{srv.Addr()}, srv.TLSConfig(), rueidis.ClientOption{AlwaysRESP2: true, DisableCache: true}, rueidisentra.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 3*life)
	defer cancel()
	before := srv.Stats()
	start := time.Now()
	err := c.Receive(ctx, c.B().Subscribe().Channel("resp2").Build(), func(rueidis.PubSubMessage) {})
	took := time.Since(start)
	after := srv.Stats()
	t.Logf("Receive returned after %v: %v; %d refused AUTHs, %d closed for expiry", took.Round(time.Millisecond), err, after.RefusedAuths-before.RefusedAuths, after.ExpiryCloses-before.ExpiryCloses)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "Can't execute 'auth'") {
		t.Fatalf("Receive returned %v after %v, want an error at the first rotation", err, took)
	}
	if err := c.Do(t.Context(), c.B().Ping().Build()).Error(); err != nil {
		t.Fatalf("PING after: %v", err)
	}
}
