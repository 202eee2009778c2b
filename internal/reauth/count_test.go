package reauth

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/entraredis/entraredis/internal/resp"
)

// TestPlainOwedModes follows plainOwed through the states where it counts the
// plain replies owed, and those where the queue does.
func TestPlainOwedModes(t *testing.T) {
	m := &memConn{}
	c, err := New[testToken](m, &testSource{cur: tokenN(1)}, Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	step := func(what string, write []byte, replies string, want int64) {
		t.Helper()
		if write != nil {
			if _, err := c.Write(write); err != nil {
				t.Fatalf("%s: write: %v", what, err)
			}
		}
		if replies != "" {
			m.in = append(m.in, replies...)
			for len(m.in) > 0 {
				if _, err := c.Read(buf); err != nil {
					t.Fatalf("%s: read: %v", what, err)
				}
			}
		}
		if got := c.plainOwed.Load(); got != want {
			t.Fatalf("%s: plainOwed %d, want %d", what, got, want)
		}
	}
	get := encode("GET", "k")
	step("first GET, behind the first AUTH", get, "", countedByQueue)
	step("the AUTH's and the GET's replies", nil, "+OK\r\n$1\r\nx\r\n", 0)
	step("two GETs in one write", append(append([]byte{}, get...), get...), "", 2)
	step("one reply", nil, "$1\r\nx\r\n", 1)
	step("the other", nil, "$1\r\nx\r\n", 0)
	step("MULTI (a plain entry: only the state changes)", encode("MULTI"), "", 1)
	step("its reply", nil, "+OK\r\n", 0)
	step("a queued SET", encode("SET", "k", "v"), "+QUEUED\r\n", 0)
	step("EXEC (plain too)", encode("EXEC"), "", 1)
	step("its reply", nil, "*1\r\n+OK\r\n", 0)
	step("ASKING and its reply", encode("ASKING"), "+OK\r\n", countedByQueue) // it applies to the next command
	step("the command it applies to", get, "", 1)
	step("its reply", nil, "$1\r\nx\r\n", 0)
	step("a RESP2 SUBSCRIBE and its reply", encode("SUBSCRIBE", "ch"), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", countedByQueue)
	step("UNSUBSCRIBE and its reply", encode("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n", 0)
	step("HELLO 3", encode("HELLO", "3"), "", countedByQueue)
	step("its reply", nil, "%1\r\n$5\r\nproto\r\n:3\r\n", 0)
	step("a RESP3 SUBSCRIBE", encode("SUBSCRIBE", "ch"), "", countedByQueue)
	step("its reply: RESP3-subscribed, plain replies are counted", nil, ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", 0)
	step("a GET beside the subscription", get, "", 1)
	step("a message before the GET's reply", nil, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", 1)
	step("the GET's reply", nil, "$1\r\nx\r\n", 0)
	step("UNSUBSCRIBE and its reply", encode("UNSUBSCRIBE"), ">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n", 0)
	step("a user's AUTH retires the connection", encode("AUTH", "u", "p"), "+OK\r\n", countedByQueue)
	step("after retirement", get, "$1\r\nx\r\n", countedByQueue)
}

// TestPlainOwedConcurrent runs a writer, a reader and new tokens at once on
// one connection, so that plainOwed moves between its modes while commands
// and replies go through both (go test -race checks the rest): every reply
// of the client's arrives, once and in order, and no AUTH reply does.
func TestPlainOwedConcurrent(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Go(func() { serveGets(srv) })
	src := &testSource{cur: tokenN(1)}
	c, err := New[testToken](cli, src, Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	wg.Go(func() {
		for i := 0; i < n; {
			k := min(1+i%3, n-i) // pipelines of 1 to 3 commands
			var b []byte
			for range k {
				b = append(b, encode("GET", "k")...)
			}
			if _, err := c.Write(b); err != nil {
				t.Error(err)
				return
			}
			i += k
		}
	})
	wg.Go(func() {
		for g := uint64(2); g < 200; g++ {
			tok := tokenN(g)
			src.set(tok)
			c.OnToken(tok)
			c.State()
			time.Sleep(50 * time.Microsecond)
		}
	})
	var got []byte
	buf := make([]byte, 512)
	want := bytes.Repeat([]byte("$1\r\nx\r\n"), n)
	for len(got) < len(want) {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:k]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the client read %d bytes, not %d replies of its own (first: %q)", len(got), n, got[:min(64, len(got))])
	}
	c.Close()
	wg.Wait()
	if s := c.State(); s.Retired != "" || s.Generation < 2 {
		t.Fatalf("state %+v: the connection should have moved to new tokens and kept going", s)
	}
}

// serveGets answers every command on nc: +OK to AUTH, $1 x to anything else.
func serveGets(nc net.Conn) {
	var in, out []byte
	buf := make([]byte, 4096)
	for {
		k, err := nc.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:k]...)
		out = out[:0]
		for {
			m, name, _, ok := resp.ScanCommand(in)
			if !ok {
				break
			}
			if string(name) == "AUTH" {
				out = append(out, "+OK\r\n"...)
			} else {
				out = append(out, "$1\r\nx\r\n"...)
			}
			in = in[m:]
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}
