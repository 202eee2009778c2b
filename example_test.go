package entraredis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/azevents"
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

// Tokens of 600 ms: the client keeps working across several rotations,
// and Status says what happened.
func ExampleClient_Status() {
	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: 600 * time.Millisecond})
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
	for i := 0; i < 45; i++ { // 0.9 s: one and a half token lifetimes
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

// Azure Managed Redis with the OSS cluster policy: a cluster client, whose
// nodes' certificates are all verified against the host name given, although
// the cluster's topology names them by IP address. This example needs Azure,
// so it is compiled but not run (the emulator's cluster, in the tests, needs
// redis-server).
func ExampleNewClusterClient() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	rdb, err := entraredis.NewClusterClient(ctx, cred, &redis.ClusterOptions{
		Addrs: []string{"NAME.REGION.redis.azure.net:10000"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "Az:key1", "value1", 0).Err(); err != nil {
		log.Fatal(err)
	}
}

// The callbacks run on one goroutine of the client, one after another, so
// they share plain variables without locks; Close waits for a running one,
// after which the variables can be read. Here tokens live 800 ms: the first
// token and the next one are reported.
func Example_callbacks() {
	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: 800 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	var (
		refreshes, failures int // touched only by the callbacks: no lock
		lastErr             error
	)
	rotated := make(chan struct{})
	rdb, err := entraredis.NewClient(context.Background(), srv.Credential(),
		&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{
			Options: entratoken.Options{
				Logger: quiet,
				OnTokenRefreshed: func(e entraredis.TokenRefreshed) {
					refreshes++
					lastErr = nil
					if refreshes == 2 {
						close(rotated)
					}
				},
				OnRefreshFailed: func(e entraredis.RefreshFailed) { failures++; lastErr = e.Err },
				OnReauthFailed:  func(e entraredis.ReauthFailed) { lastErr = e.Err },
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-rotated:
	case <-time.After(5 * time.Second):
		fmt.Println("no rotation within 5 s")
	}
	rdb.Close() // waits for a running callback: the variables are final
	fmt.Println("refreshes:", refreshes, "failures:", failures, "last error:", lastErr)
	// Output: refreshes: 2 failures: 0 last error: <nil>
}

// A WRONGPASS is explained: the principal has no access policy on this
// cache (here: a principal the emulator does not know). The reply is still
// go-redis' error, so redis.HasErrorPrefix keeps working.
func ExampleAuthError() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	stranger := srv.Issuer().NewCredential(entraredistest.CredentialOptions{})
	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, stranger, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	err = rdb.Ping(ctx).Err()
	var authErr *entraredis.AuthError
	fmt.Println(errors.As(err, &authErr), redis.HasErrorPrefix(err, "WRONGPASS"))
	fmt.Println(authErr.Username == stranger.ObjectID())
	// Output:
	// true true
	// true
}

// Azure Cache for Redis announces maintenance on the channel
// AzureRedisEvents; a client subscribes by itself for *.redis.cache.windows.net
// (MaintenanceAuto), here on the emulator with MaintenanceOn.
func Example_maintenanceEvents() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	events := make(chan entraredis.MaintenanceEvent, 1)
	ctx := context.Background()
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{
			Options: entratoken.Options{
				Logger: quiet,
			},
			MaintenanceEvents: entraredis.MaintenanceOn,
			OnMaintenance:     func(ev entraredis.MaintenanceEvent) { events <- ev },
		})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()

	if err := srv.WaitMaintenanceSubscribers(ctx, 1); err != nil {
		log.Fatal(err)
	}
	start := time.Now().Add(20 * time.Second)
	if _, err := srv.PublishMaintenance(ctx, srv.MaintenanceEvent(azevents.Starting, start)); err != nil {
		log.Fatal(err)
	}
	select {
	case ev := <-events:
		fmt.Println(ev.Type, ev.IsReplica)
	case <-time.After(5 * time.Second):
		fmt.Println("no event within 5 s")
	}
	fmt.Println(rdb.Status().Maintenance.Next.Type)
	// Output:
	// NodeMaintenanceStarting false
	// NodeMaintenanceStarting
}
