package rueidisentra_test

import (
	"context"
	"log"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/rueidis"

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
