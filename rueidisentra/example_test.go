package rueidisentra_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/rueidisentra"
)

// The whole job on Azure: a credential, a host, a client. These examples need
// Azure, so they are compiled but not run (the tests run the same calls on
// the project's emulator; examples/rueidis is a runnable program).
func ExampleNewClient() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := rueidisentra.NewClient(ctx, cred, rueidis.ClientOption{
		InitAddress: []string{"NAME.redis.cache.windows.net:6380"}, // or NAME.REGION.redis.azure.net:10000, cluster or not
	}, &rueidisentra.Options{Options: entratoken.Options{
		OnTokenRefreshed: func(e entratoken.TokenRefreshed) { // on the client's event goroutine
			log.Printf("token refreshed, expires %s", e.ExpiresOn.Format(time.RFC3339))
		},
	}})
	if err != nil {
		log.Fatal(err) // a wrong credential, scope or user name is explained here
	}
	defer client.Close() // also stops the token refresher
	if err := client.Do(ctx, client.B().Set().Key("Az:key1").Value("value1").Build()).Error(); err != nil {
		log.Fatal(err) // no access policy for this principal: an explained WRONGPASS or NOPERM
	}
}

// A health check: Status of the client NewClient returned.
func ExampleStatus() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := rueidisentra.NewClient(ctx, cred, rueidis.ClientOption{InitAddress: []string{"NAME.REGION.redis.azure.net:10000"}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	st, ok := rueidisentra.Status(client) // false only for a client NewClient did not return
	if !ok || !st.Valid(time.Now()) {
		log.Printf("unhealthy: %s, last error: %v", st.State, st.LastError)
	}
	log.Printf("connections: %d on the token in use, %d on an older one", st.Conns.Current, st.Conns.Older)
}

// The same client on the project's emulator, with tokens of one second:
// rueidis re-authenticates its own connections in place, and one token
// request is made per rotation for the whole client.
func Example_emulator() {
	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	rotated := make(chan struct{}, 8)
	client, err := rueidisentra.NewClient(ctx, srv.Credential(), rueidis.ClientOption{
		InitAddress: []string{srv.Addr()},
		TLSConfig:   srv.TLSConfig(), // on Azure: leave nil
	}, &rueidisentra.Options{Options: entratoken.Options{
		Logger:           slog.New(slog.DiscardHandler),
		OnTokenRefreshed: func(entratoken.TokenRefreshed) { rotated <- struct{}{} },
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	failed := 0
	for range 2 { // the first token, then one rotation
		select {
		case <-rotated:
		case <-time.After(5 * time.Second):
			log.Fatal("no token within 5 s")
		}
		if client.Do(ctx, client.B().Incr().Key("Az:counter").Build()).Error() != nil {
			failed++
		}
	}
	st, _ := rueidisentra.Status(client)
	fmt.Println("failed commands:", failed)
	fmt.Println("token requests:", st.TokenRequests, "rotations:", st.Rotations)
	fmt.Println("token valid:", st.Valid(time.Now()))
	// Output:
	// failed commands: 0
	// token requests: 2 rotations: 1
	// token valid: true
}
