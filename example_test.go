package entraredis_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// The whole job on Azure: a credential, a host, a client. This example needs
// Azure, so it is compiled but not run; the other examples run on the
// project's emulator.
func Example_azure() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: "NAME.redis.cache.windows.net:6380"}, nil)
	if err != nil {
		log.Fatal(err) // a wrong credential, scope or token is explained here
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "Az:key1", "value1", 0).Err(); err != nil {
		log.Fatal(err)
	}
}

// NewClient against the emulator: the same code as on Azure, with the
// emulator's credential and certificate authority.
func ExampleNewClient() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{
		Addr:      srv.Addr(),
		TLSConfig: srv.TLSConfig(), // on Azure: leave nil
	}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	rdb.Set(ctx, "Az:key1", "value1", 0)
	fmt.Println(rdb.Get(ctx, "Az:key1").Val())
	// Output: value1
}

// Tokens of two seconds: the client keeps working across several rotations,
// and Status says what happened.
func ExampleClient_Status() {
	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	failed := 0
	for i := 0; i < 175; i++ { // 3.5 s: nearly two token lifetimes
		if rdb.Incr(ctx, "counter").Err() != nil {
			failed++
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := rdb.Status()
	fmt.Println("failed commands:", failed)
	fmt.Println("rotated:", st.Rotations >= 2)
	fmt.Println("token valid:", st.Valid(time.Now()))
	// Output:
	// failed commands: 0
	// rotated: true
	// token valid: true
}

// Events and logs: what a service wires into its monitoring. The callbacks
// run on one goroutine of the client, one after another, never inside a
// command: they may block, and share variables among themselves without locks.
func ExampleOptions() {
	opts := &entraredis.Options{
		Options: entratoken.Options{
			Logger: slog.Default(),
			OnTokenRefreshed: func(e entraredis.TokenRefreshed) {
				// e.g. a gauge of e.ExpiresOn
			},
			OnRefreshFailed: func(e entraredis.RefreshFailed) {
				// Connections keep the current token until e.ExpiresOn; alert if
				// failures go on.
			},
			OnReauthFailed: func(e entraredis.ReauthFailed) {
				// The server refused a live connection's new token: e.Err explains.
			},
		},
	}
	_ = opts
}

// The provider alone, for go-redis options built elsewhere. Prefer NewClient,
// which also sets TLS, Azure's timeouts and the Watch/Conn workaround.
func ExampleNewCredentials() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	creds, err := entraredis.NewCredentials(srv.Credential(), &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	if err := creds.WaitReady(context.Background()); err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:                         srv.Addr(),
		TLSConfig:                    srv.TLSConfig(),
		StreamingCredentialsProvider: creds,
	})
	rdb.AddHook(creds.Hook()) // no redial storm past expiry or after a refused token
	defer rdb.Close()
	fmt.Println(rdb.Ping(context.Background()).Val())
	// Output: PONG
}
