package reauth_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/redisproc"
	"github.com/entraredis/entraredis/internal/resp"
)

// readUntil reads from nc until what was read ends with end.
func readUntil(t *testing.T, nc net.Conn, end []byte) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !bytes.HasSuffix(got, end) {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("read: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	return got
}

// plainConn is a connection to p authenticated as the ACL user, with no
// wrapper: what the application would see without the library. The test's
// cleanup closes it.
func plainConn(t *testing.T, p *redisproc.Process) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.Write(resp.AppendCommand(nil, "AUTH", "user", "tok-0"))
	readUntil(t, nc, []byte("+OK\r\n"))
	return nc
}

// TestClientReplyAcrossRotations (issue 25.4): one connection through the
// wrapper and one plain, side by side on a real redis-server, run the same
// seeded sequences of CLIENT REPLY ON, OFF and SKIP among plain commands
// and transactions, with a new token handed to the wrapper between every
// two batches (some while replies are off): every byte the client reads is
// the plain connection's, and the connection moves to every token (none
// retired, none refused).
func TestClientReplyAcrossRotations(t *testing.T) {
	p := startRedis(t)
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 25))
			src := &source{cur: goodToken(1)}
			var accepted, refused, retired int
			results := make(chan reauth.Result, 64)
			wnc, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			w, err := reauth.New[tok](wnc, src, reauth.Config{
				Logger:   quiet,
				OnAuth:   func(res reauth.Result) { results <- res },
				OnRetire: func(string) { retired++ },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			plain := plainConn(t, p)

			gen := uint64(1)
			for batch := range 10 {
				var out []byte
				for range 1 + r.IntN(12) {
					switch r.IntN(10) {
					case 0:
						out = resp.AppendCommand(out, "CLIENT", "REPLY", "OFF")
					case 1:
						out = resp.AppendCommand(out, "CLIENT", "REPLY", "SKIP")
					case 2:
						out = resp.AppendCommand(out, "CLIENT", "REPLY", "ON")
					case 3:
						out = resp.AppendCommand(out, "MULTI")
						out = resp.AppendCommand(out, "ECHO", "tx"+strconv.Itoa(r.IntN(1000)))
						out = resp.AppendCommand(out, "EXEC")
					case 4:
						out = resp.AppendCommand(out, "NOSUCHCOMMAND")
					default:
						out = resp.AppendCommand(out, "ECHO", "c"+strconv.Itoa(r.IntN(1000))) // each reply tells which command it answers
					}
				}
				for _, c := range []net.Conn{w, plain} {
					if _, err := c.Write(out); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(10 * time.Millisecond)
				gen++
				next := goodToken(gen)
				src.set(next)
				w.OnToken(next) // with replies off it waits for CLIENT REPLY ON
				time.Sleep(10 * time.Millisecond)
				marker := "end-" + strconv.Itoa(batch)
				end := resp.AppendCommand(nil, "CLIENT", "REPLY", "ON")
				end = resp.AppendCommand(end, "ECHO", marker)
				want := []byte("$" + strconv.Itoa(len(marker)) + "\r\n" + marker + "\r\n")
				var got [2][]byte
				for i, c := range []net.Conn{w, plain} {
					if _, err := c.Write(end); err != nil {
						t.Fatal(err)
					}
					got[i] = readUntil(t, c, want)
				}
				if !bytes.Equal(got[0], got[1]) {
					t.Fatalf("batch %d %q:\n through the wrapper: %q\n plain:               %q", batch, out, got[0], got[1])
				}
				// The AUTH went out at the first place it could, and was accepted.
				deadline := time.After(2 * time.Second)
				for w.State().Generation != gen {
					select {
					case res := <-results:
						if res.Err != nil {
							refused++
						} else if !res.First {
							accepted++
						}
					case <-deadline:
						t.Fatalf("batch %d: the connection is on generation %d, want %d (state %+v)", batch, w.State().Generation, gen, w.State())
					}
				}
			}
			if retired != 0 || refused != 0 || w.State().Retired != "" {
				t.Fatalf("%d retired (%q), %d refused", retired, w.State().Retired, refused)
			}
			t.Logf("10 batches identical; the connection moved to each of 10 tokens (generation %d)", w.State().Generation)
		})
	}
}
