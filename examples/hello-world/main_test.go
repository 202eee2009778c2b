package main

import (
	"strings"
	"testing"

	"github.com/entraredis/entraredis/entraredistest"
)

func TestHelloWorld(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	var out strings.Builder
	if err := helloWorld(t.Context(), &out, srv.Credential(), srv.Addr(), "", srv.TLSConfig()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "value1\n" {
		t.Fatalf("printed %q, want value1", out.String())
	}
}

func TestHelloWorldWrongUsername(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	err := helloWorld(t.Context(), &strings.Builder{}, srv.Credential(), srv.Addr(), "not-the-oid", srv.TLSConfig())
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "oid") {
		t.Fatalf("err = %v, want an explained WRONGPASS", err)
	}
}
