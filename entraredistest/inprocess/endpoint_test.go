package inprocess

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/entraredis/entraredis/entraredistest/internal/emulator"
	"github.com/entraredis/entraredis/internal/resp"
)

// The emulator's endpoint in front of miniredis, whose short WRONGPASS text it
// corrects (FixWrongPass). Moved here from package emulator with miniredis.

// TestEndpointWithMiniredis checks the endpoint on its own: rewriting,
// identity, counters, expiry, Close.
func TestEndpointWithMiniredis(t *testing.T) {
	m := miniredis.NewMiniRedis()
	m.RequireUserAuth("u-owner", "pw")
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exp := time.Now().Add(time.Second)
	ep, err := emulator.NewEndpoint(emulator.EndpointConfig{
		Authenticate: func(user, token string) (emulator.Identity, error) {
			if token != "good" {
				return emulator.Identity{}, errors.New("bad token")
			}
			return emulator.Identity{ObjectID: user, Role: "owner", Expires: exp}, nil
		},
		BackendAddr:  m.Addr(),
		Users:        map[string]emulator.BackendUser{"owner": {Name: "u-owner", Password: "pw"}},
		FixWrongPass: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	c, err := net.Dial("tcp", ep.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte(string(resp.AppendCommand(nil, "PING")) + string(resp.AppendCommand(nil, "AUTH", "me", "bad")) +
		string(resp.AppendCommand(nil, "AUTH", "me", "good")) + string(resp.AppendCommand(nil, "ACL", "WHOAMI")) + "SET k v\r\n"))
	for i, want := range []string{
		"-NOAUTH Authentication required.\r\n",
		"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
		"+OK\r\n",
		"$2\r\n",
		"me\r\n",
		"+OK\r\n",
	} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("reply line %d = %q, %v; want %q", i, line, err, want)
		}
	}
	st := ep.Stats()
	if st.Accepted != 1 || st.Open != 1 || st.Auths != 1 || st.RefusedAuths != 1 || st.Commands != 5 {
		t.Fatalf("Stats = %+v", st)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read a byte, want the connection closed at expiry")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed at the token's expiry")
	}
	deadline := time.Now().Add(time.Second)
	for ep.Stats().ExpiryCloses != 1 || ep.Stats().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want ExpiryCloses 1 Open 0", ep.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
