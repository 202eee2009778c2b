// Command rueidis is the smallest rueidis program that talks to Azure Cache
// for Redis or Azure Managed Redis with Microsoft Entra ID: a credential, a
// host, a client. It sets a key, reads it back, and reads it once more from
// rueidis' client-side cache.
//
//	REDIS_HOST=NAME.redis.cache.windows.net go run ./examples/rueidis
//
// REDIS_PORT defaults to 6380 (Azure Cache for Redis; Azure Managed Redis
// listens on 10000, with the OSS cluster policy too: rueidis detects a
// cluster). REDIS_USERNAME is needed only when the credential's tokens carry
// no oid claim. The credential is DefaultAzureCredential: az login on a
// workstation, a managed or workload identity in Azure.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/rueidisentra"
)

func main() {
	host, port := os.Getenv("REDIS_HOST"), os.Getenv("REDIS_PORT")
	if host == "" {
		log.Fatal("set REDIS_HOST to your cache's host name, for example NAME.redis.cache.windows.net")
	}
	if port == "" {
		port = "6380"
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(context.Background(), os.Stdout, cred, net.JoinHostPort(host, port), os.Getenv("REDIS_USERNAME"), nil); err != nil {
		log.Fatal(err)
	}
}

// run sets Az:key1, prints it back, then prints it from the client-side
// cache. tlsConfig is nil for Azure (TLS with the system's roots); tests pass
// the emulator's.
func run(ctx context.Context, out io.Writer, cred azcore.TokenCredential, addr, username string, tlsConfig *tls.Config) error {
	client, err := rueidisentra.NewClient(ctx, cred, rueidis.ClientOption{
		InitAddress: []string{addr},
		TLSConfig:   tlsConfig,
	}, &rueidisentra.Options{Options: entratoken.Options{
		Username: username, // empty: the token's object ID (oid)
	}})
	if err != nil {
		return err // a wrong credential, scope or user name: the error says what to fix
	}
	defer client.Close() // also stops the token refresher

	if err := client.Do(ctx, client.B().Set().Key("Az:key1").Value("value1").Build()).Error(); err != nil {
		return err // no access policy for this principal: an explained WRONGPASS or NOPERM
	}
	value, err := client.Do(ctx, client.B().Get().Key("Az:key1").Build()).ToString()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, value)

	cached := client.DoCache(ctx, client.B().Get().Key("Az:key1").Cache(), time.Minute)
	if value, err = cached.ToString(); err != nil {
		return err
	}
	fmt.Fprintln(out, value)

	if st, ok := rueidisentra.Status(client); ok {
		fmt.Fprintf(out, "user %s, token valid until %s\n", st.Username, st.ExpiresOn.Format(time.RFC3339))
	}
	return nil
}
