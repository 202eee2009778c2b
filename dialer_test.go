package entraredis_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// recordingConn keeps every byte written through it.
type recordingConn struct {
	net.Conn
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (c recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.w.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// connSpy is a user's DialHook that wraps every connection to record what is
// written on it (as a byte counter or a wire logger would).
type connSpy struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (s *connSpy) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return recordingConn{c, &s.mu, &s.w}, nil
	}
}
func (s *connSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (s *connSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (s *connSpy) written() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// A DialHook of the user's wraps what the library's Dialer returned: the
// connection already authenticates itself below it, so the hook's wrapper
// sees go-redis' commands and never an AUTH or a token.
func TestUserDialHookSeesNoAuth(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol int) {
		srv := entraredistest.NewServer(t, entraredistest.Options{})
		rdb := newClient(t, srv, srv.Credential(), protocol, entraredis.Options{})
		spy := &connSpy{}
		rdb.AddHook(spy)
		ctx := t.Context()
		for i := range 20 {
			if err := rdb.Set(ctx, "Az:spy", i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		seen := spy.written()
		if !strings.Contains(seen, "Az:spy") {
			t.Fatalf("the hook's connection saw none of go-redis' commands (%d bytes): the test would prove nothing", len(seen))
		}
		if strings.Contains(strings.ToUpper(seen), "AUTH") || strings.Contains(seen, "eyJ") {
			t.Fatalf("a user's DialHook saw an AUTH or a token (%d bytes written; not printed, they hold a token)", len(seen))
		}
	})
}

// A Dialer of the user's that returns a connection without TLS is refused,
// with an error saying what to do, before anything is written on it.
func TestPlaintextDialerRefused(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	var mu sync.Mutex
	var written bytes.Buffer
	var dials int
	rdb, err := entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{
		Addr:          srv.Addr(),
		DialerRetries: 1,
		MaxRetries:    -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			dials++
			mu.Unlock()
			return recordingConn{c, &mu, &written}, nil
		},
	}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	err = rdb.Ping(t.Context()).Err()
	if err == nil || !strings.Contains(err.Error(), "not a TLS connection") || strings.Count(err.Error(), "entraredis:") != 1 {
		t.Fatalf("Ping through a plaintext Dialer = %v, want the explained refusal", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if dials == 0 {
		t.Fatal("the user's Dialer was never called: the test proves nothing")
	}
	if written.Len() != 0 {
		t.Fatalf("%d bytes were written on a plaintext connection (not printed: they may hold a token)", written.Len())
	}
}

// TestMaintNotificationsMode: go-redis' maintenance notifications are off
// for endpoints that have none (a local server, Azure Cache for Redis), so
// that go-redis never races on its options when the refused handshake turns
// its "auto" mode off; elsewhere (Azure Managed Redis) and when the options
// set a mode, go-redis' own setting stands.
func TestMaintNotificationsMode(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	for _, c := range []struct {
		addr string
		set  *maintnotifications.Config
		want maintnotifications.Mode
	}{
		{srv.Addr(), nil, maintnotifications.ModeDisabled},
		{"localhost:6380", nil, maintnotifications.ModeDisabled},
		{"example.redis.cache.windows.net:6380", nil, maintnotifications.ModeDisabled},
		{"example.westus.redis.azure.net:10000", nil, maintnotifications.ModeAuto},
		{srv.Addr(), &maintnotifications.Config{Mode: maintnotifications.ModeEnabled}, maintnotifications.ModeEnabled},
	} {
		rdb, err := entraredis.NewClient(t.Context(), srv.Credential(), &redis.Options{Addr: c.addr, MaintNotificationsConfig: c.set}, &entraredis.Options{Options: entratoken.Options{Logger: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		got := rdb.Options().MaintNotificationsConfig
		rdb.Close()
		if got == nil || got.Mode != c.want {
			t.Errorf("%s with %+v: mode %+v, want %q", c.addr, c.set, got, c.want)
		}
	}
}
