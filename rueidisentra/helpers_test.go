package rueidisentra_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/rueidisentra"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// connect returns a rueidisentra client for addrs, closed at the end of the test.
func connect(t testing.TB, cred azcore.TokenCredential, addrs []string, tc *tls.Config, opt rueidis.ClientOption, o rueidisentra.Options) rueidis.Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	opt.InitAddress = addrs
	opt.TLSConfig = tc
	c, err := rueidisentra.NewClient(t.Context(), cred, opt, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// status returns the client's Status, failing the test for a foreign client.
func status(t testing.TB, c rueidis.Client) rueidisentra.ClientStatus {
	t.Helper()
	st, ok := rueidisentra.Status(c)
	if !ok {
		t.Fatalf("Status(%T) = false", c)
	}
	return st
}
