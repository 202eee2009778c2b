package reauth

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// TestReadNotHeldByOwnRead (issue 25.3): while the wrapper's own reader
// waits on the socket for the reply of an AUTH it wrote on an idle
// connection (the server holds it: CLIENT PAUSE, DEBUG SLEEP), a Read of the
// client takes the read side over at once and runs under the client's
// deadline alone: it times out at that deadline exactly, as on a plain
// connection, not at the wrapper's IOTimeout; and once the server answers,
// it gets the client's reply with the AUTH's removed. (Real time: a Read
// waiting on a mutex is not durably blocked, so under testing/synctest the
// code before the fix hangs instead of failing.)
func TestReadNotHeldByOwnRead(t *testing.T) {
	func() {
		cli, srv := net.Pipe()
		c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, IOTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var in []byte // what the server received
		var wg sync.WaitGroup
		wg.Go(func() {
			buf := make([]byte, 512)
			for {
				n, err := srv.Read(buf)
				if err != nil {
					return
				}
				mu.Lock()
				in = append(in, buf[:n]...)
				mu.Unlock()
			}
		})
		defer func() { c.Close(); srv.Close(); wg.Wait() }()
		readAll := func(want string) {
			t.Helper()
			var got []byte
			buf := make([]byte, 64)
			for len(got) < len(want) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("Read: %v after %q", err, got)
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		}
		if _, err := c.Write(encode("GET", "k")); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { srv.Write([]byte("+OK\r\n$1\r\nx\r\n")) })
		readAll("$1\r\nx\r\n")

		c.OnToken(tokenN(2))
		written := false
		for i := 0; i < 200 && !written; i++ { // the AUTH is written; the wrapper's reader waits for its reply
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			written = bytes.Contains(in, encode("AUTH", "user", tokenN(2).pass))
			mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
		if !written {
			t.Fatal("no AUTH was written on the idle connection: the test proves nothing")
		}
		if _, err := c.Write(encode("GET", "k")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetReadDeadline(start.Add(100 * time.Millisecond))
		n, err := c.Read(make([]byte, 64))
		if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 || took > 400*time.Millisecond {
			t.Fatalf("Read = %d, %v after %v; want a timeout at the client's deadline, 100ms (the wrapper's IOTimeout is 1s)", n, err, took)
		}
		var sent time.Time
		wg.Go(func() {
			time.Sleep(1500 * time.Millisecond) // the server is paused past the wrapper's IOTimeout
			mu.Lock()
			sent = time.Now()
			mu.Unlock()
			srv.Write([]byte("+OK\r\n$1\r\ny\r\n"))
		})
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		readAll("$1\r\ny\r\n")
		mu.Lock()
		late := time.Since(sent)
		mu.Unlock()
		if late > 200*time.Millisecond {
			t.Fatalf("the reply reached the client %v after the server sent it", late)
		}
	}()
}
