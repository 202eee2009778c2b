package reauth_test

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/resp"
)

// writeLog records what is written to the socket.
type writeLog struct {
	net.Conn
	mu      sync.Mutex
	written []byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.written = append(w.written, p...)
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeLog) contains(b []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.written, b)
}

// TestClientPauseReplyWhileAuthPending (issue 25.3), on a real
// redis-server: the application writes CLIENT PAUSE 1000 and, before it
// reads the reply, the connection is handed a new token. The wrapper writes
// the AUTH at once, behind CLIENT PAUSE (the write side is between
// commands), and the server, now paused, holds that AUTH for a second. The
// reply of CLIENT PAUSE, which the server sent at once, reaches the
// application in under 50 ms, while the AUTH is still pending; the next
// command's reply waits for the pause's end as on a plain connection in the
// same run, and arrives without the AUTH's reply; the connection is then on
// the new token.
func TestClientPauseReplyWhileAuthPending(t *testing.T) {
	p := startRedis(t)
	pauseCmd := resp.AppendCommand(nil, "CLIENT", "PAUSE", "1000")
	ping := resp.AppendCommand(nil, "PING")

	// Plain go: the same two commands on a plain connection.
	plain := plainConn(t, p)
	start := time.Now()
	plain.Write(pauseCmd)
	readUntil(t, plain, []byte("+OK\r\n"))
	plainPause := time.Since(start)
	plain.Write(ping)
	readUntil(t, plain, []byte("+PONG\r\n"))
	plainPing := time.Since(start)
	if plainPing < 800*time.Millisecond {
		t.Fatalf("plain: PING answered %v after CLIENT PAUSE 1000: the server did not pause, the test proves nothing", plainPing)
	}
	time.Sleep(100 * time.Millisecond) // the pause is over

	// Through the wrapper.
	src := &source{cur: goodToken(1)}
	refused := make(chan error, 4)
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	log := &writeLog{Conn: nc}
	w, err := reauth.New[tok](log, src, reauth.Config{
		Logger: quiet,
		OnAuth: func(r reauth.Result) {
			if r.Err != nil {
				refused <- r.Err
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(ping)
	readUntil(t, w, []byte("+PONG\r\n")) // the first AUTH went in front of it

	start = time.Now()
	if _, err := w.Write(pauseCmd); err != nil {
		t.Fatal(err)
	}
	next := goodToken(2)
	src.set(next)
	w.OnToken(next)
	auth := resp.AppendCommand(nil, "AUTH", "user", next.pass)
	for !log.contains(auth) {
		if time.Since(start) > 40*time.Millisecond {
			t.Fatal("the AUTH was not written behind CLIENT PAUSE within 40 ms: the test proves nothing")
		}
		time.Sleep(time.Millisecond)
	}
	got := readUntil(t, w, []byte("+OK\r\n"))
	pauseReply := time.Since(start)
	if string(got) != "+OK\r\n" || pauseReply >= 50*time.Millisecond {
		t.Fatalf("CLIENT PAUSE's reply %q reached the application %v after it was written, want under 50 ms (plain: %v)", got, pauseReply, plainPause)
	}
	if g := w.State().Generation; g != 1 {
		t.Fatalf("the connection is on generation %d when CLIENT PAUSE's reply is read: the AUTH was not pending, the test proves nothing", g)
	}
	w.Write(ping)
	got = readUntil(t, w, []byte("+PONG\r\n"))
	wrappedPing := time.Since(start)
	if string(got) != "+PONG\r\n" {
		t.Fatalf("PING after the pause read %q, want only its reply", got)
	}
	if d := wrappedPing - plainPing; d > 250*time.Millisecond || d < -250*time.Millisecond {
		t.Fatalf("PING answered %v after CLIENT PAUSE through the wrapper, %v on the plain connection: want the same within 250 ms", wrappedPing, plainPing)
	}
	deadline := time.Now().Add(2 * time.Second)
	for w.State().Generation != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the connection is on generation %d, want 2", w.State().Generation)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-refused:
		t.Fatalf("the AUTH was refused: %v", err)
	default:
	}
	t.Logf("CLIENT PAUSE 1000's reply: %v through the wrapper with its AUTH pending, %v plain; the PING after it: %v and %v", pauseReply, plainPause, wrappedPing, plainPing)
}
