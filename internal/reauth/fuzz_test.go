package reauth

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testToken is a Token for tests.
type testToken struct {
	user, pass string
	gen        uint64
	exp        time.Time
}

func (t testToken) Username() string     { return t.user }
func (t testToken) Password() string     { return t.pass }
func (t testToken) Generation() uint64   { return t.gen }
func (t testToken) ExpiresOn() time.Time { return t.exp }

// testSource is a Source whose current token the test sets.
type testSource struct {
	mu  sync.Mutex
	cur testToken
	err error
}

func (s *testSource) Token() (testToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.err
}

func (s *testSource) set(t testToken) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
}

func tokenN(n uint64) testToken {
	return testToken{user: "user", pass: "tok-" + string(rune('a'+n%26)) + strings.Repeat("x", int(n%5)), gen: n, exp: time.Now().Add(time.Hour)}
}

// memConn is a net.Conn over in-memory buffers: Read returns the server's
// bytes in the chunk sizes given, Write records what the client sent.
type memConn struct {
	in     []byte
	chunks []int
	out    bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error) {
	if len(m.in) == 0 {
		return 0, io.EOF
	}
	n := len(m.in)
	if len(m.chunks) > 0 {
		n = max(1, min(n, m.chunks[0]))
		m.chunks = m.chunks[1:]
	}
	n = copy(p, m.in[:n])
	m.in = m.in[n:]
	return n, nil
}
func (m *memConn) Write(p []byte) (int, error)      { return m.out.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// Reply frames that answer one command, and frames that answer none.
var (
	fuzzReplies = []string{
		"+OK\r\n", "-ERR wrong\r\n", ":12\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*2\r\n$1\r\na\r\n:1\r\n",
		"*2\r\n*1\r\n+x\r\n%1\r\n+k\r\n:1\r\n", "$0\r\n\r\n", "*0\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
		"$" + "5000\r\n" + strings.Repeat("v", 5000) + "\r\n", "+QUEUED\r\n", "-WRONGPASS no\r\n", "*1\r\n$2\r\nOK\r\n", "+PONG\r\n",
	}
	fuzzReplies3 = []string{
		"_\r\n", ",1.5\r\n", "#t\r\n", "(12345678901234567890\r\n", "=7\r\ntxt:abc\r\n", "!5\r\nERR x\r\n", "~1\r\n+a\r\n",
		"%1\r\n+a\r\n+b\r\n", "*1\r\n|1\r\n+a\r\n+b\r\n+c\r\n",
	}
	fuzzUnsolicited = []string{
		">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n", "|1\r\n+a\r\n+b\r\n",
		">4\r\n$8\r\npmessage\r\n$1\r\np\r\n$1\r\nc\r\n$1\r\nm\r\n", ">2\r\n$10\r\ninvalidate\r\n_\r\n",
	}
)

// chooser hands out the fuzz input's bytes as choices (0 once exhausted).
type chooser []byte

func (c *chooser) next() int {
	if len(*c) == 0 {
		return 0
	}
	b := (*c)[0]
	*c = (*c)[1:]
	return int(b)
}

// FuzzFramer writes a random pipeline of commands through a Conn with an
// AUTH injected at a random place, feeds it a server stream of random
// replies (split at random bytes, with unsolicited pushes and attributes in
// between) in which the AUTH's reply sits where the server would put it, and
// checks that the client reads exactly the stream without that reply, and
// that the server got exactly the commands with the AUTHs in front. With
// mode bit 2 a CLIENT REPLY ON/OFF/SKIP sequence (whose unanswered commands
// get no reply) comes first.
func FuzzFramer(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{1, 1, 0x21, 0x42, 0x63, 0x84, 0xa5, 0x06, 0x17, 0x28, 3, 1, 7, 200, 9})
	f.Add([]byte{1, 0, 0xff, 0xfe, 0xfd, 0, 0, 0, 1, 1, 1, 1, 1})
	f.Add([]byte{0, 7, 11, 11, 11, 11, 11, 11, 11, 11, 11, 5, 2, 250, 1, 1, 1})
	f.Add([]byte{3, 4, 2, 1, 3, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{2, 2, 0, 4, 1, 5, 7, 1, 9, 30, 2, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		ch := chooser(in)
		mode := ch.next()
		resp3 := mode&1 == 1
		ncmd := 1 + ch.next()%12
		inj := ch.next() % (ncmd + 1) // the AUTH goes before command inj (ncmd: after the last one)

		var server, client bytes.Buffer // the server's replies; what the client should read
		var wantW bytes.Buffer          // what the server should receive
		first := tokenN(1)
		second := tokenN(2)
		wantW.Write(appendAuth(nil, first))
		server.WriteString("+OK\r\n") // the first AUTH
		var cmds [][]byte
		if resp3 {
			cmds = append(cmds, encode("HELLO", "3"))
			server.WriteString("%1\r\n+proto\r\n:3\r\n")
			client.WriteString("%1\r\n+proto\r\n:3\r\n")
		}
		if mode&2 == 2 {
			// A CLIENT REPLY sequence that ends with replies on; "" marks a
			// command the server does not answer.
			seqs := [][][2]string{
				{{"SKIP", ""}, {"GET", ""}},
				{{"OFF", ""}, {"GET", ""}, {"SKIP", ""}, {"GET", ""}, {"ON", "+OK\r\n"}},
				{{"SKIP", ""}, {"ON", "+OK\r\n"}},
				{{"SKIP", ""}, {"SKIP", ""}, {"GET", ""}, {"GET", "?"}},
				{{"SKIP", ""}, {"OFF", ""}, {"GET", ""}, {"ON", "+OK\r\n"}},
			}
			for _, c := range seqs[ch.next()%len(seqs)] {
				if c[0] == "GET" {
					cmds = append(cmds, encode("GET", "p"))
				} else {
					cmds = append(cmds, encode("CLIENT", "REPLY", c[0]))
				}
				r := c[1]
				if r == "?" {
					r = fuzzReplies[ch.next()%len(fuzzReplies)]
				}
				server.WriteString(r)
				client.WriteString(r)
			}
		}
		base := len(cmds)
		for i := range ncmd {
			cmds = append(cmds, encode("GET", strings.Repeat("k", 1+i)))
		}
		// Replies in order; the AUTH's after the replies of the commands before it.
		for i := range ncmd + 1 {
			if i == inj {
				if resp3 && ch.next()%3 == 0 {
					u := fuzzUnsolicited[ch.next()%len(fuzzUnsolicited)]
					server.WriteString(u)
					client.WriteString(u)
				}
				server.WriteString("+OK\r\n")
			}
			if i == ncmd {
				break
			}
			c := ch.next()
			if resp3 && c&0x30 == 0x30 {
				u := fuzzUnsolicited[(c>>6)%len(fuzzUnsolicited)]
				server.WriteString(u)
				client.WriteString(u)
			}
			r := fuzzReplies[c%len(fuzzReplies)]
			if resp3 && c&0x40 != 0 {
				r = fuzzReplies3[c%len(fuzzReplies3)]
			}
			server.WriteString(r)
			client.WriteString(r)
		}
		var chunks []int
		for range 64 {
			chunks = append(chunks, 1+ch.next()%40)
		}
		mc := &memConn{in: server.Bytes(), chunks: chunks}
		src := &testSource{cur: first}
		c, err := New[testToken](mc, src, Config{Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		// Writes: the commands, each split at a random byte, the AUTH made
		// pending just before command inj is written.
		for i, cmd := range cmds {
			if i == base+inj {
				c.locked(func() { c.pending = second; c.setPendingLocked(true) })
				wantW.Write(appendAuth(nil, second))
			}
			wantW.Write(cmd)
			cut := ch.next() % (len(cmd) + 1)
			for _, part := range [][]byte{cmd[:cut], cmd[cut:]} {
				if len(part) == 0 {
					continue
				}
				if n, err := c.Write(part); err != nil || n != len(part) {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
		}
		if base+inj == len(cmds) {
			c.locked(func() { c.pending = second; c.setPendingLocked(true) })
			c.injectIdle()
			wantW.Write(appendAuth(nil, second))
		}
		if !bytes.Equal(mc.out.Bytes(), wantW.Bytes()) {
			t.Fatalf("the server got\n%q\nwant\n%q", mc.out.Bytes(), wantW.Bytes())
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, client.Bytes()) {
			t.Fatalf("the client read\n%q\nwant\n%q", got, client.Bytes())
		}
		if st := c.State(); st.Generation != 2 || st.Retired != "" {
			t.Fatalf("state %+v, want generation 2", st)
		}
	})
}

// FuzzReadGarbage feeds arbitrary server bytes to a Conn that owes the reply
// of its first AUTH: it must never panic, and must either return an error or
// bytes that came from the input in order, without the AUTH reply.
func FuzzReadGarbage(f *testing.F) {
	f.Add([]byte("+OK\r\n$3\r\nabc\r\n"), uint8(3))
	f.Add([]byte("-WRONGPASS x\r\n"), uint8(1))
	f.Add([]byte("*2\r\n+a\r\n"), uint8(2))
	f.Add([]byte(">2\r\n$7\r\nmessage\r\n+OK\r\n+OK\r\n:1\r\n"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		mc := &memConn{in: append([]byte(nil), in...), chunks: []int{int(chunk%16) + 1, 7, 1, 3}}
		c, err := New[testToken](mc, &testSource{cur: tokenN(1)}, Config{Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(encode("PING")); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		var refused *RefusedError
		var desync *errDesync
		if err != nil && !errors.As(err, &refused) && !errors.As(err, &desync) && !strings.Contains(err.Error(), "internal error") {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("panic: %v", err)
		}
		if err == nil && !isSubsequence(got, in) {
			t.Fatalf("read %q from %q", got, in)
		}
		if err == nil && bytes.HasPrefix(in, []byte("+OK\r\n")) && bytes.HasPrefix(got, []byte("+OK\r\n")) && !bytes.HasPrefix(in[5:], []byte("+OK\r\n")) {
			t.Fatalf("the AUTH reply reached the client: %q", got)
		}
	})
}

func isSubsequence(sub, s []byte) bool {
	i := 0
	for _, b := range s {
		if i < len(sub) && sub[i] == b {
			i++
		}
	}
	return i == len(sub)
}
