package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/entraredis/entraredis/entratoken"
)

func TestCheckAddr(t *testing.T) {
	cases := []struct {
		in, want string   // want "" means refused
		mention  []string // what the error must say
	}{
		{"c.redis.cache.windows.net:6380", "c.redis.cache.windows.net:6380", nil},
		{"c.westeurope.redis.azure.net:10000", "c.westeurope.redis.azure.net:10000", nil},
		{"[::1]:6380", "[::1]:6380", nil},
		{"127.0.0.1:7000", "127.0.0.1:7000", nil},
		{"rediss://c.westeurope.redis.azure.net:10000", "c.westeurope.redis.azure.net:10000", nil},
		{"rediss://c.westeurope.redis.azure.net:10000/", "c.westeurope.redis.azure.net:10000", nil},
		{"REDISS://c.redis.cache.windows.net:6380", "c.redis.cache.windows.net:6380", nil},
		{"rediss://[::1]:6380", "[::1]:6380", nil},
		{"c.redis.cache.windows.net", "", []string{"no port", "6380", "10000", "c.redis.cache.windows.net:6380"}},
		{"rediss://c.westeurope.redis.azure.net", "", []string{"no port", "6380", "10000"}},
		{"redis://c.redis.cache.windows.net:6380", "", []string{"TLS", "rediss://c.redis.cache.windows.net:6380"}},
		{"rediss://user:s3cr3t-key@c.redis.cache.windows.net:6380", "", []string{"user info", "secret"}},
		{"rediss://:s3cr3t-key@c.redis.cache.windows.net:6380", "", []string{"user info"}},
		{"rediss://c.redis.cache.windows.net:6380/2", "", []string{"database"}},
		{"http://c.redis.cache.windows.net:6380", "", []string{"scheme"}},
		{"c.redis.cache.windows.net:port", "", []string{"port"}},
		{"c.redis.cache.windows.net:0", "", []string{"1 to 65535"}},
		{":6380", "", []string{"no host"}},
		{"", "", []string{"no host"}},
		{"::1", "", []string{"not host:port"}},
	}
	for _, tc := range cases {
		got, err := CheckAddr(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("CheckAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("CheckAddr(%q) = %q, want an error", tc.in, got)
			continue
		}
		msg := err.Error()
		for _, m := range tc.mention {
			if !strings.Contains(msg, m) {
				t.Errorf("CheckAddr(%q): %q does not mention %q", tc.in, msg, m)
			}
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("CheckAddr(%q): the error shows the secret: %q", tc.in, msg)
		}
		if strings.Count(msg, "entraredis:") != 1 {
			t.Errorf("CheckAddr(%q): %q has not one prefix", tc.in, msg)
		}
	}
}

// TestSplitAddr: the doctor command's parser, CheckAddr with an optional port.
func TestSplitAddr(t *testing.T) {
	for in, want := range map[string]string{
		"c.redis.cache.windows.net":                    "c.redis.cache.windows.net 0",
		"c.redis.cache.windows.net:6380":               "c.redis.cache.windows.net 6380",
		"rediss://c.westeurope.redis.azure.net/":       "c.westeurope.redis.azure.net 0",
		"rediss://c.westeurope.redis.azure.net:10000/": "c.westeurope.redis.azure.net 10000",
		"[::1]":                             "::1 0",
		"[::1]:6380":                        "::1 6380",
		"redis://c.redis.cache.windows.net": "error",
		"c:notaport":                        "error",
	} {
		h, p, err := SplitAddr(in)
		got := fmt.Sprintf("%s %d", h, p)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("SplitAddr(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	user := &tls.Config{MinVersion: tls.VersionTLS10}
	c, err := TLSConfig([]string{"c.redis.cache.windows.net:6380", "10.0.0.1:6380"}, user, entratoken.Options{})
	if err != nil || c.ServerName != "c.redis.cache.windows.net" || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLSConfig = %+v, %v", c, err)
	}
	if user.MinVersion != tls.VersionTLS10 || user.ServerName != "" {
		t.Fatal("the user's config was changed")
	}
	if c, err := TLSConfig([]string{"localhost:6379", "[::1]:6379"}, nil, entratoken.Options{Plaintext: true}); c != nil || err != nil {
		t.Fatalf("plaintext on loopback: %v, %v", c, err)
	}
	_, err = TLSConfig([]string{"localhost:6379", "cache.example.com:6379"}, nil, entratoken.Options{Plaintext: true})
	if !errors.Is(err, ErrPlaintextRemote) || !strings.Contains(err.Error(), "cache.example.com") || strings.Count(err.Error(), "entraredis:") != 1 {
		t.Fatalf("plaintext to a remote host: %v", err)
	}
	if _, err := TLSConfig([]string{"cache.example.com:6379"}, nil, entratoken.Options{Plaintext: true, AllowPlaintextRemote: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig([]string{"localhost:6379"}, user, entratoken.Options{Plaintext: true}); err == nil {
		t.Fatal("Plaintext with a TLSConfig accepted")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "a.localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"c.redis.cache.windows.net": false, "10.0.0.1": false, "localhost.example.com": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}
