// Command hello-world is the smallest program that talks to Azure Cache for
// Redis or Azure Managed Redis with Microsoft Entra ID: a credential, a host, a
// client. It sets a key and reads it back.
//
//	REDIS_HOST=NAME.redis.cache.windows.net go run ./examples/hello-world
//
// REDIS_PORT defaults to 6380 (Azure Cache for Redis; Azure Managed Redis
// listens on 10000). REDIS_USERNAME is needed only when the credential's
// tokens carry no oid claim. The credential is DefaultAzureCredential: az login
// on a workstation, a managed or workload identity in Azure.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
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
	if err := helloWorld(context.Background(), os.Stdout, cred, net.JoinHostPort(host, port), os.Getenv("REDIS_USERNAME"), nil); err != nil {
		log.Fatal(err)
	}
}

// helloWorld sets Az:key1 and prints it back. tlsConfig is nil for Azure
// (TLS with the system's roots); tests pass the emulator's.
func helloWorld(ctx context.Context, out io.Writer, cred azcore.TokenCredential, addr, username string, tlsConfig *tls.Config) error {
	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{
		Addr:      addr,
		Username:  username, // empty: the token's object ID (oid)
		TLSConfig: tlsConfig,
	}, nil)
	if err != nil {
		return err
	}
	defer rdb.Close()

	if err := rdb.Set(ctx, "Az:key1", "value1", 0).Err(); err != nil {
		return err
	}
	value, err := rdb.Get(ctx, "Az:key1").Result()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, value)
	return nil
}
