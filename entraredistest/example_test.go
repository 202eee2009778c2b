package entraredistest_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// Start an emulated endpoint and authenticate a go-redis client with tokens
// of the server's credential. In a test, use entraredistest.NewServer(t, opts)
// instead: it closes the server with t.Cleanup.
func Example() {
	srv, err := entraredistest.Start(entraredistest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cred := srv.Credential() // an azcore.TokenCredential, role owner
	rdb := redis.NewClient(&redis.Options{
		Addr:      srv.Addr(),      // "localhost:PORT"
		TLSConfig: srv.TLSConfig(), // trusts the throwaway CA, ServerName "localhost"
		CredentialsProviderContext: func(ctx context.Context) (string, string, error) {
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
			return cred.ObjectID(), tok.Token, err // username = object ID
		},
	})
	defer rdb.Close()

	ctx := context.Background()
	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rdb.Get(ctx, "greeting").Val())
	whoami, _ := rdb.Do(ctx, "ACL", "WHOAMI").Text()
	fmt.Println(whoami == cred.ObjectID())

	// A token of another issuer is refused like Azure refuses it.
	other, _ := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
	bad, _ := other.Mint(entraredistest.TokenSpec{ObjectID: cred.ObjectID()})
	err = rdb.Do(ctx, "AUTH", cred.ObjectID(), bad).Err()
	fmt.Println(err)
	fmt.Println(srv.Stats().RefusedAuths)
	// Output:
	// hello
	// true
	// WRONGPASS invalid username-password pair or user is disabled.
	// 1
}

// Test a service's behaviour through a token-service outage: the emulator's
// credential fails its next two requests, which are the refresh of the
// client's first token (tokens of one second here). The refresher retries,
// and no command notices.
func ExampleCredential_FailNext() {
	srv, err := entraredistest.Start(entraredistest.Options{TokenLifetime: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	refreshed := make(chan struct{}, 8)
	rdb, err := entraredis.NewClient(ctx, srv.Credential(), &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()},
		&entraredis.Options{
			Options: entratoken.Options{
				Logger:           slog.New(slog.DiscardHandler),
				OnTokenRefreshed: func(entraredis.TokenRefreshed) { refreshed <- struct{}{} },
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	<-refreshed // the first token

	srv.Credential().FailNext(2, nil) // the next two GetToken calls fail
	failed := 0
	for done := false; !done; {
		select {
		case <-refreshed: // the next token, after two failed attempts
			done = true
		case <-time.After(5 * time.Second):
			log.Fatal("no new token within 5 s")
		default:
			if rdb.Incr(ctx, "Az:counter").Err() != nil {
				failed++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	st := rdb.Status()
	fmt.Println("failed commands:", failed)
	fmt.Println("failed refreshes by kind:", st.RefreshFailures)
	fmt.Println("expiry closes:", srv.Stats().ExpiryCloses)
	// Output:
	// failed commands: 0
	// failed refreshes by kind: map[other:2]
	// expiry closes: 0
}
