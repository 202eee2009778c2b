//go:build respcapture

package resp_test

// The generator of the test data: scripted RESP2 and RESP3 sessions against
// a real redis-server, recorded in both directions. It is behind a build tag
// so that it never runs in CI; re-create the files with
//
//	go test -tags respcapture -run TestCaptureCorpus ./internal/resp/

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/entraredis/entraredis/internal/redisproc"
	"github.com/entraredis/entraredis/internal/resp"
)

// maxCorpusEntry: a larger exchange (the 1 MiB value) is kept only in the .bin capture.
const maxCorpusEntry = 64 << 10

type exchange struct{ client, server []byte }

type session struct {
	t         *testing.T
	p         *redisproc.Process
	c         net.Conn
	r         *resp.Reader
	client    []byte // every byte written
	server    []byte // every byte read
	exchanges []exchange
}

// do sends args (unless empty) and reads replies frames (attributes are not counted).
func (s *session) do(replies int, args ...string) {
	s.t.Helper()
	var ex exchange
	if len(args) > 0 {
		ex.client = resp.AppendCommand(nil, args...)
		if _, err := s.c.Write(ex.client); err != nil {
			s.t.Fatal(err)
		}
		s.client = append(s.client, ex.client...)
	}
	for replies > 0 {
		raw, f, err := s.r.ReadFrame()
		if err != nil {
			s.t.Fatalf("reply to %q: %v", args, err)
		}
		ex.server = append(ex.server, raw...)
		if f.Kind != resp.Attribute {
			replies--
		}
	}
	s.server = append(s.server, ex.server...)
	s.exchanges = append(s.exchanges, ex)
}

// publish publishes from another connection.
func (s *session) publish(ch, msg string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.p.Do(ctx, "PUBLISH", ch, msg); err != nil {
		s.t.Fatal(err)
	}
}

func (s *session) other(args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.p.Do(ctx, args...); err != nil {
		s.t.Fatal(err)
	}
}

func TestCaptureCorpus(t *testing.T) {
	p, err := redisproc.Start(redisproc.Config{ExtraConfig: []string{"enable-debug-command yes"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := "testdata"
	fuzzDir := filepath.Join(dir, "fuzz", "FuzzScanner")
	old, _ := filepath.Glob(filepath.Join(fuzzDir, "resp*"))
	for _, f := range old {
		os.Remove(f)
	}
	if err := os.MkdirAll(fuzzDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []int{2, 3} {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		s := &session{t: t, p: p, c: c, r: resp.NewReader(bufio.NewReader(c))}
		script(s, proto)
		c.Close()
		name := fmt.Sprintf("resp%d", proto)
		write(t, filepath.Join(dir, name+"-client.bin"), s.client)
		write(t, filepath.Join(dir, name+"-server.bin"), s.server)
		for i, ex := range s.exchanges {
			for _, side := range []struct {
				dir string
				b   []byte
			}{{"client", ex.client}, {"server", ex.server}} {
				if len(side.b) == 0 || len(side.b) > maxCorpusEntry {
					continue
				}
				entry := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint64(%d)\n", side.b, i)
				write(t, filepath.Join(fuzzDir, fmt.Sprintf("%s-%02d-%s", name, i, side.dir)), []byte(entry))
			}
		}
	}
}

func write(t *testing.T, path string, b []byte) {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func script(s *session, proto int) {
	user, pass := s.p.AdminUser()
	resp3 := proto == 3
	if resp3 {
		s.do(1, "HELLO", "3", "AUTH", user, pass, "SETNAME", "capture")
	} else {
		s.do(1, "AUTH", user, pass)
		s.do(1, "HELLO", "2")
	}
	s.do(1, "PING")
	s.do(1, "PING", "hello")
	s.do(1, "SET", "k", "v")
	s.do(1, "GET", "k")
	s.do(1, "GET", "missing")
	s.do(1, "INCR", "counter")
	s.do(1, "DEL", "list", "h", "s", "z")
	s.do(1, "RPUSH", "list", "a", "b", "c")
	s.do(1, "LRANGE", "list", "0", "-1")
	s.do(1, "HSET", "h", "f1", "v1", "f2", "v2")
	s.do(1, "HGETALL", "h")
	s.do(1, "SADD", "s", "x", "y")
	s.do(1, "SMEMBERS", "s")
	s.do(1, "ZADD", "z", "1.5", "m")
	s.do(1, "ZSCORE", "z", "m")
	s.do(1, "ZRANGE", "z", "0", "-1", "WITHSCORES")
	s.do(1, "TTL", "k")
	s.do(1, "MULTI")
	s.do(1, "SET", "t", "1")
	s.do(1, "INCR", "t")
	s.do(1, "GET", "t")
	s.do(1, "EXEC")
	s.do(1, "MULTI")
	s.do(1, "NOSUCHCOMMAND")
	s.do(1, "EXEC")
	s.do(1, "NOSUCHCOMMAND", "x")
	s.do(1, "SET", "k")
	s.do(1, "LPUSH", "k", "x")
	s.do(1, "HELLO", "4")
	for _, typ := range []string{"attrib", "map", "set", "double", "bignum", "verbatim", "true", "false", "null", "string", "integer", "array"} {
		s.do(1, "DEBUG", "PROTOCOL", typ)
	}
	if resp3 {
		s.do(1, "SETRANGE", "big", "1048575", "x")
		s.do(1, "GET", "big")
		s.do(1, "DEL", "big")
		s.do(1, "CLIENT", "TRACKING", "ON")
		s.do(1, "GET", "k")
		s.other("SET", "k", "changed")
		s.do(1) // the invalidate push
		s.do(1, "CLIENT", "TRACKING", "OFF")
	}
	s.do(2, "SUBSCRIBE", "a", "b")
	s.do(1, "PSUBSCRIBE", "p*")
	s.publish("a", "hello")
	s.do(1)
	s.publish("pa", "hi")
	s.do(1)
	if resp3 {
		s.do(2, "PUBLISH", "b", "from myself") // the message push and the reply
		s.do(1, "GET", "k")                    // RESP3 allows any command while subscribed
	}
	s.do(1, "PING")
	s.do(2, "UNSUBSCRIBE")
	s.do(1, "PUNSUBSCRIBE", "p*")
	s.do(1, "UNSUBSCRIBE")
	s.do(1, "QUIT")
}
