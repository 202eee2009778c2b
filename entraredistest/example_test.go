package entraredistest_test

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/entraredistest"
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
