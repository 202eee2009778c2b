package entraredis

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/resp"
)

var wrongPass = &resp.Error{Msg: "WRONGPASS invalid username-password pair or user is disabled."}

// readyCredentials returns Credentials holding their first token, closed
// with the test. It runs in a bubble.
func readyCredentials(t *testing.T) *Credentials {
	t.Helper()
	is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredentials(is.NewCredential(entraredistest.CredentialOptions{}), &Options{Options: entratoken.Options{Logger: benchQuiet}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHookReportsOnlyDialAuth: which command outcomes close the dial gate.
// Only the HELLO ... AUTH of a new connection, with the token, refused with
// WRONGPASS does (the application's own, with another password, does not); a
// refused in-place re-AUTH (an AUTH command) is counted as a re-AUTH
// failure and leaves new connections alone; an accepted HELLO ... AUTH
// opens the gate again. While it is closed, the dial hook does not dial.
func TestHookReportsOnlyDialAuth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := readyCredentials(t)
		ctx := t.Context()
		h := c.Hook()
		dials := 0
		dial := h.DialHook(func(context.Context, string, string) (net.Conn, error) {
			dials++
			return nil, errors.New("no network in this test")
		})
		run := func(cmd redis.Cmder, reply error) {
			h.ProcessHook(func(context.Context, redis.Cmder) error {
				cmd.SetErr(reply)
				return reply
			})(ctx, cmd)
		}
		// go-redis' HELLO AUTH and AUTH carry the token in use.
		tok, err := c.src.Token()
		if err != nil {
			t.Fatal(err)
		}
		p := tok.Password()
		for _, step := range []struct {
			name      string
			cmd       redis.Cmder
			reply     error
			dial      entratoken.DialState
			reauthErr int64
		}{
			{"refused re-AUTH", redis.NewStatusCmd(ctx, "auth", "u", p), wrongPass, entratoken.DialOpen, 1},
			{"refused command", redis.NewStringCmd(ctx, "get", "k"), wrongPass, entratoken.DialOpen, 1},
			{"refused HELLO without AUTH", redis.NewMapStringInterfaceCmd(ctx, "hello", 3), wrongPass, entratoken.DialOpen, 1},
			{"HELLO AUTH refused for another reason", redis.NewMapStringInterfaceCmd(ctx, "hello", 3, "auth", "u", p), &resp.Error{Msg: "NOPERM no"}, entratoken.DialOpen, 1},
			{"refused AUTH of the application's own", redis.NewStatusCmd(ctx, "auth", "someone-else", "wrong"), wrongPass, entratoken.DialOpen, 1},
			{"refused HELLO AUTH of the application's own", redis.NewMapStringInterfaceCmd(ctx, "hello", 3, "auth", "someone-else", "wrong"), wrongPass, entratoken.DialOpen, 1},
			{"refused HELLO AUTH", redis.NewMapStringInterfaceCmd(ctx, "hello", 3, "auth", "u", p), wrongPass, entratoken.DialRefused, 1},
			{"accepted HELLO AUTH", redis.NewMapStringInterfaceCmd(ctx, "hello", 3, "auth", "u", p), nil, entratoken.DialOpen, 1},
		} {
			run(step.cmd, step.reply)
			st := c.Status()
			if st.Dial != step.dial || st.ReauthFailures != step.reauthErr {
				t.Fatalf("after a %s: dial %v, %d re-AUTH failures; want %v, %d", step.name, st.Dial, st.ReauthFailures, step.dial, step.reauthErr)
			}
			before := dials
			_, err := dial(ctx, "tcp", "localhost:6380")
			switch {
			case step.dial == entratoken.DialOpen && dials != before+1:
				t.Fatalf("after a %s: the dial hook did not dial (%v)", step.name, err)
			case step.dial != entratoken.DialOpen && (dials != before || !errors.Is(err, entratoken.ErrTokenRefused)):
				t.Fatalf("after a %s: dialed %d times, %v; want no dial and ErrTokenRefused", step.name, dials-before, err)
			}
		}
		// The probe, one second after a refusal, is let through alone.
		run(redis.NewMapStringInterfaceCmd(ctx, "hello", 3, "auth", "u", p), wrongPass)
		time.Sleep(time.Second)
		before := dials
		dial(ctx, "tcp", "localhost:6380")
		dial(ctx, "tcp", "localhost:6380")
		if dials != before+1 {
			t.Fatalf("%d dials after the wait, want the one probe", dials-before)
		}
	})
}

// TestDialRetryBackoff: go-redis' dial retries wait the user's backoff while
// new connections may be dialed, and not at all while they are held back.
func TestDialRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := readyCredentials(t)
		def := c.dialRetryBackoff(nil, 0)
		user := c.dialRetryBackoff(func(a int) time.Duration { return time.Duration(a) * time.Second }, 0)
		if def(1) != 100*time.Millisecond || user(3) != 3*time.Second {
			t.Fatalf("open: %v, %v; want go-redis' 100 ms and the user's 3 s", def(1), user(3))
		}
		c.src.ReportDialAuth(wrongPass)
		if def(1) != 0 || user(3) != 0 {
			t.Fatalf("held back: %v, %v; want no wait", def(1), user(3))
		}
	})
}

// TestProbeAuth: the probe is authenticated before go-redis gets it: an
// accepted AUTH opens the gate and hands the connection on with nothing of
// the reply left unread; a refused one closes the connection and the gate.
func TestProbeAuth(t *testing.T) {
	for _, tc := range []struct {
		reply string
		ok    bool
	}{
		{"+OK\r\n", true},
		{"-WRONGPASS invalid username-password pair or user is disabled.\r\n", false},
	} {
		synctest.Test(t, func(t *testing.T) {
			c := readyCredentials(t)
			c.src.ReportDialAuth(wrongPass)
			time.Sleep(time.Second) // the probe is due
			client, server := net.Pipe()
			defer server.Close()
			go func() {
				sc := bufio.NewReader(server)
				for range 7 { // *3, $4, AUTH, $n, user, $n, token
					if _, err := sc.ReadString('\n'); err != nil {
						return
					}
				}
				server.Write([]byte(tc.reply + "+NEXT\r\n"))
			}()
			h := &hook{creds: c}
			conn, err := h.probeAuth(t.Context(), client)
			st := c.Status()
			if !tc.ok {
				var ae *AuthError
				if conn != nil || !errors.As(err, &ae) || st.Dial != entratoken.DialRefused {
					t.Fatalf("refused: %v, %v, dial %v; want the explained refusal and the gate closed", conn, err, st.Dial)
				}
				return
			}
			if err != nil || conn == nil || st.Dial != entratoken.DialOpen {
				t.Fatalf("accepted: %v, dial %v", err, st.Dial)
			}
			next := make([]byte, 7)
			if _, err := io.ReadFull(conn, next); err != nil || string(next) != "+NEXT\r\n" {
				t.Fatalf("what followed the reply: %q, %v", next, err)
			}
			conn.Close()
		})
	}
}
