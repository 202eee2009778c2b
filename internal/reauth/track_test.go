package reauth

import (
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/entraredis/entraredis/internal/resp"
)

// tracker drives a state with whole commands and replies, as Conn does.
type tracker struct {
	t  *testing.T
	st state
}

func newTracker(t *testing.T) *tracker { return &tracker{t: t, st: newState()} }

func encode(args ...string) []byte { return resp.AppendCommand(nil, args...) }

func scanOne(t *testing.T, b []byte) *resp.Frame {
	t.Helper()
	var s resp.Scanner
	n, done, err := s.Scan(b)
	if err != nil || !done || n != len(b) {
		t.Fatalf("scan %q: n=%d done=%v err=%v", b, n, done, err)
	}
	return s.Frame()
}

func (x *tracker) cmd(args ...string) cmdInfo {
	x.t.Helper()
	return x.st.command(scanOne(x.t, encode(args...)))
}

// reply feeds one reply and returns whether it was stripped, and the result.
func (x *tracker) reply(raw string) (bool, replyResult) {
	x.t.Helper()
	strip := x.st.stripsNext(raw[0])
	r := x.st.reply(scanOne(x.t, []byte(raw)), strip)
	return strip, r
}

func (x *tracker) mustKeep(raw string) replyResult {
	x.t.Helper()
	strip, r := x.reply(raw)
	if strip || r.auth || r.desync != "" {
		x.t.Fatalf("reply %q: stripped=%v auth=%v desync=%q, want kept", raw, strip, r.auth, r.desync)
	}
	return r
}

func (x *tracker) mustStrip(raw string, gen uint64) replyResult {
	x.t.Helper()
	strip, r := x.reply(raw)
	if !strip || !r.auth || r.gen != gen || r.desync != "" {
		x.t.Fatalf("reply %q: stripped=%v auth=%v gen=%d desync=%q, want the AUTH reply of generation %d", raw, strip, r.auth, r.gen, r.desync, gen)
	}
	return r
}

func (x *tracker) inject(gen uint64) {
	x.t.Helper()
	if !x.st.canInject() {
		x.t.Fatal("canInject is false where an AUTH may go")
	}
	x.st.pushAuth(gen, false)
}

func (x *tracker) noInject(why string) {
	x.t.Helper()
	if x.st.canInject() {
		x.t.Fatalf("canInject is true %s", why)
	}
}

func (x *tracker) empty() {
	x.t.Helper()
	if n := x.st.q.len(); n != 0 {
		x.t.Fatalf("%d entries still owed: %+v", n, x.st.q.q[x.st.q.h:])
	}
}

func TestTrackerPlainAndPipeline(t *testing.T) {
	x := newTracker(t)
	x.st.pushAuth(1, true)
	x.cmd("HELLO", "3")
	x.cmd("CLIENT", "SETINFO", "LIB-NAME", "go-redis")
	x.mustStrip("+OK\r\n", 1)
	if x.st.gen != 1 {
		t.Fatalf("gen %d after the first AUTH", x.st.gen)
	}
	x.mustKeep("%1\r\n+server\r\n+redis\r\n")
	if x.st.proto != 3 {
		t.Fatal("HELLO 3 did not switch to RESP3")
	}
	x.inject(2) // between two commands, while replies are owed
	x.cmd("GET", "k")
	x.mustKeep("-ERR unknown subcommand\r\n")
	x.mustStrip("+OK\r\n", 2)
	x.mustKeep("$-1\r\n")
	x.empty()
	// A pipeline: one run-length entry.
	for range 100 {
		x.cmd("INCR", "n")
	}
	if x.st.q.len() != 1 {
		t.Fatalf("%d entries for a pipeline of plain commands", x.st.q.len())
	}
	x.inject(3)
	for i := range 100 {
		x.mustKeep(":" + strconv.Itoa(i+1) + "\r\n")
	}
	x.mustStrip("-WRONGPASS invalid username-password pair\r\n", 3)
	if x.st.gen != 2 {
		t.Fatalf("a refused AUTH changed the generation to %d", x.st.gen)
	}
	x.empty()
}

func TestTrackerTransactions(t *testing.T) {
	x := newTracker(t)
	x.cmd("WATCH", "k")
	x.inject(1) // between WATCH and MULTI is fine
	x.cmd("MULTI")
	x.noInject("inside MULTI")
	x.cmd("SET", "k", "v")
	x.noInject("inside MULTI")
	x.cmd("EXEC")
	x.inject(2)
	x.mustKeep("+OK\r\n")
	x.mustStrip("+OK\r\n", 1)
	x.mustKeep("+OK\r\n")
	x.mustKeep("+QUEUED\r\n")
	x.mustKeep("*1\r\n+OK\r\n")
	x.mustStrip("+OK\r\n", 2)
	// DISCARD ends it too; a blocking command inside MULTI does not block.
	x.cmd("MULTI")
	x.cmd("BLPOP", "l", "0")
	if x.st.blocked != 0 {
		t.Fatal("BLPOP inside MULTI counted as blocking")
	}
	x.cmd("DISCARD")
	x.inject(3)
	// RESET inside MULTI ends it.
	x.cmd("MULTI")
	x.cmd("RESET")
	if !x.st.canInject() {
		t.Fatal("RESET did not end the transaction")
	}
	// A subscribe command inside MULTI retires the connection.
	y := newTracker(t)
	y.cmd("MULTI")
	if info := y.cmd("SUBSCRIBE", "a"); info.retire == "" {
		t.Fatal("SUBSCRIBE inside MULTI did not retire")
	}
	y.noInject("after retirement")
}

func TestTrackerNextCommandModifiers(t *testing.T) {
	for _, args := range [][]string{{"ASKING"}, {"CLIENT", "CACHING", "yes"}} {
		x := newTracker(t)
		x.cmd(args...)
		x.noInject("right after " + strings.Join(args, " "))
		x.cmd("GET", "k")
		x.inject(1)
	}
}

func TestTrackerRetires(t *testing.T) {
	for _, args := range [][]string{
		{"AUTH", "u", "p"}, {"AUTH", "p"}, {"HELLO", "3", "AUTH", "u", "p"}, {"HELLO", "3", "SETNAME", "x", "AUTH", "u", "p"},
		{"CLIENT", "REPLY", "FOO"}, {"CLIENT", "REPLY"}, {"MONITOR"}, {"SYNC"}, {"PSYNC", "?", "-1"},
	} {
		x := newTracker(t)
		x.inject(1)
		if info := x.cmd(args...); info.retire == "" {
			t.Fatalf("%q did not retire the connection", args)
		}
		x.noInject("after " + strings.Join(args, " "))
		if !x.st.unmovable() {
			t.Fatal("a retired connection is not unmovable")
		}
		// The AUTH written before still has its reply removed.
		x.mustStrip("+OK\r\n", 1)
	}
	// A HELLO without AUTH is followed.
	x := newTracker(t)
	if info := x.cmd("HELLO", "3", "SETNAME", "name"); info.retire != "" {
		t.Fatalf("HELLO 3 SETNAME retired: %s", info.retire)
	}
	x.mustKeep("%1\r\n+proto\r\n:3\r\n")
	if x.st.proto != 3 {
		t.Fatal("no switch to RESP3")
	}
	x.cmd("HELLO", "2")
	x.mustKeep("*2\r\n$5\r\nproto\r\n:2\r\n")
	if x.st.proto != 2 {
		t.Fatal("no switch back to RESP2")
	}
	x.cmd("HELLO", "3")
	x.mustKeep("-NOPROTO unsupported protocol version\r\n")
	if x.st.proto != 2 {
		t.Fatal("a refused HELLO switched the protocol")
	}
	// A reply to no command retires.
	if _, r := x.reply("+OK\r\n"); r.desync == "" || x.st.retired == "" {
		t.Fatal("a reply to no command was accepted")
	}
}

func TestTrackerBlocking(t *testing.T) {
	for _, args := range [][]string{
		{"BLPOP", "a", "1"}, {"brpop", "a", "1"}, {"BLMOVE", "a", "b", "LEFT", "RIGHT", "1"}, {"BRPOPLPUSH", "a", "b", "1"},
		{"BZPOPMIN", "z", "1"}, {"BZPOPMAX", "z", "1"}, {"BLMPOP", "1", "1", "a", "LEFT"}, {"BZMPOP", "1", "1", "z", "MIN"},
		{"WAIT", "0", "10"}, {"WAITAOF", "0", "0", "10"}, {"XREAD", "BLOCK", "10", "STREAMS", "s", "$"},
		{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "s", ">"},
	} {
		x := newTracker(t)
		info := x.cmd(args...)
		if !info.blocking || !x.st.unmovable() {
			t.Fatalf("%q: blocking=%v unmovable=%v", args, info.blocking, x.st.unmovable())
		}
		x.noInject("behind a blocking command")
		if _, r := x.reply("*-1\r\n"); !r.unblocked {
			t.Fatalf("%q: the reply did not unblock", args)
		}
		if x.st.unmovable() {
			t.Fatal("still unmovable after the reply")
		}
	}
	x := newTracker(t)
	if info := x.cmd("XREAD", "COUNT", "1", "STREAMS"); info.blocking {
		t.Fatal("XREAD without BLOCK counted as blocking")
	}
}

func TestTrackerRESP3PubSub(t *testing.T) {
	x := newTracker(t)
	x.cmd("HELLO", "3")
	x.mustKeep("%0\r\n")
	x.cmd("SUBSCRIBE", "a", "b")
	x.inject(1) // RESP3: AUTH is fine while subscribing
	x.cmd("PING")
	x.mustKeep(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	x.mustKeep(">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n") // answers nothing
	x.mustKeep(">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
	x.mustKeep(">3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$2\r\nhi\r\n")
	x.mustStrip("+OK\r\n", 1)
	x.mustKeep(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
	x.mustKeep("+PONG\r\n")
	x.empty()
	if x.st.chans != 2 || !x.st.subscribed() {
		t.Fatalf("chans=%d", x.st.chans)
	}
	x.cmd("PSUBSCRIBE", "p*")
	x.mustKeep(">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n")
	// A bare UNSUBSCRIBE: one reply per channel held (two), not per pattern.
	x.cmd("UNSUBSCRIBE")
	x.inject(2)
	x.mustKeep(">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n")
	x.mustKeep(">4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$1\r\nm\r\n")
	x.mustKeep(">3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n")
	x.mustStrip("+OK\r\n", 2)
	x.cmd("PUNSUBSCRIBE")
	x.cmd("UNSUBSCRIBE") // none held: one "unsubscribe _ 0"
	x.inject(3)
	x.mustKeep(">3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n")
	x.mustKeep(">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n")
	x.mustStrip("+OK\r\n", 3)
	x.empty()
	if x.st.subscribed() {
		t.Fatal("still subscribed")
	}
	// Shard channels, and an unsolicited sunsubscribe (slot moved away).
	x.cmd("SSUBSCRIBE", "s")
	x.mustKeep(">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n")
	x.inject(4)
	x.mustKeep(">3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n")
	x.mustStrip("+OK\r\n", 4)
	// A subscribe command refused as a whole.
	x.cmd("SUBSCRIBE", "a", "b")
	x.inject(5)
	x.mustKeep("-NOPERM no permissions to access a channel\r\n")
	x.mustStrip("+OK\r\n", 5)
	x.empty()
	// Attributes are not replies.
	x.cmd("GET", "k")
	x.inject(6)
	x.mustKeep("|1\r\n+key-popularity\r\n%0\r\n")
	x.mustKeep("$1\r\nv\r\n")
	x.mustStrip("+OK\r\n", 6)
}

func TestTrackerRESP2PubSub(t *testing.T) {
	x := newTracker(t)
	x.cmd("LRANGE", "l", "0", "-1")
	x.cmd("SUBSCRIBE", "a", "b")
	x.noInject("after SUBSCRIBE on RESP2")
	// Before the subscription takes effect, an array that looks like a
	// subscribe frame is a reply.
	x.mustKeep("*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n")
	x.mustKeep("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	x.mustKeep("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n")
	x.mustKeep("*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
	x.empty()
	x.noInject("on a RESP2 subscribed connection")
	if !x.st.unmovable() {
		t.Fatal("a RESP2 subscribed connection is not unmovable")
	}
	x.cmd("PING")
	x.mustKeep("*2\r\n$4\r\npong\r\n$0\r\n\r\n")
	x.cmd("UNSUBSCRIBE")
	x.mustKeep("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n")
	x.noInject("before the last unsubscribe reply")
	x.mustKeep("*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
	x.empty()
	x.inject(1)
	x.cmd("UNSUBSCRIBE")
	x.mustStrip("+OK\r\n", 1)
	x.mustKeep("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
	x.empty()
}

func TestTrackerReset(t *testing.T) {
	x := newTracker(t)
	x.cmd("HELLO", "3")
	x.mustKeep("%0\r\n")
	x.cmd("SUBSCRIBE", "a")
	x.mustKeep(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	x.st.gen = 7
	if info := x.cmd("RESET"); !info.reset {
		t.Fatal("RESET not reported")
	}
	x.st.pushAuth(8, false) // Conn writes it right after RESET, whatever the state
	x.mustKeep("+RESET\r\n")
	if x.st.proto != 2 || x.st.subscribed() || x.st.gen != 0 {
		t.Fatalf("after RESET: proto %d subscribed %v gen %d", x.st.proto, x.st.subscribed(), x.st.gen)
	}
	x.mustStrip("+OK\r\n", 8)
	if x.st.gen != 8 {
		t.Fatal("not authenticated again after RESET")
	}
}

func TestTrackerDesync(t *testing.T) {
	x := newTracker(t)
	x.inject(1)
	if _, r := x.reply(":1\r\n"); r.desync == "" {
		t.Fatal("an integer accepted as the reply of AUTH")
	}
	y := newTracker(t)
	y.inject(1)
	if _, r := y.reply("+QUEUED\r\n"); r.desync == "" {
		t.Fatal("+QUEUED accepted as the reply of AUTH")
	}
}

func TestCloseCallsOnCloseOnce(t *testing.T) {
	n := 0
	c, err := New[testToken](&memConn{}, &testSource{cur: tokenN(1)}, Config{Logger: discard, OnClose: func() { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
	c.OnToken(tokenN(2)) // after Close: nothing starts
	if c.State().Generation != 0 {
		t.Fatal("a closed connection moved")
	}
}

// TestUnparsableReply: bytes that are not RESP retire the connection and pass
// through when no AUTH reply is owed; they fail it when one is.
func TestUnparsableReply(t *testing.T) {
	// The first AUTH's reply comes first, then garbage.
	mc := &memConn{in: []byte("+OK\r\n+PONG\r\n?garbage\r\n")}
	c, err := New[testToken](mc, &testSource{cur: tokenN(1)}, Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	c.Write(encode("PING"))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "+PONG\r\n?garbage\r\n" {
		t.Fatalf("read %q, %v; want the garbage passed through", got, err)
	}
	if st := c.State(); st.Retired == "" || !st.Unmovable {
		t.Fatalf("state %+v, want retired", st)
	}
	mc = &memConn{in: []byte("?garbage\r\n+OK\r\n")}
	c, err = New[testToken](mc, &testSource{cur: tokenN(1)}, Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	c.Write(encode("PING"))
	if _, err := io.ReadAll(c); err == nil || !strings.Contains(err.Error(), "lost track") {
		t.Fatalf("garbage where the AUTH reply is owed: %v", err)
	}
}

// TestTrackerClientReply (issue 25.4): CLIENT REPLY ON, OFF and SKIP are
// followed as redis-server 7 runs them (each sequence below was checked
// against it byte for byte): unanswered commands owe nothing, and no AUTH is
// written where its reply would be suppressed: while replies are off, and
// right after SKIP. Where an AUTH may go again, it is written and its reply
// removed.
func TestTrackerClientReply(t *testing.T) {
	for _, tc := range []struct {
		cmds    [][]string
		replies []string // what redis-server answers to cmds
	}{
		{[][]string{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"}, {"ECHO", "a"}}, []string{"+OK\r\n", "$1\r\na\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "OFF"}, {"CLIENT", "REPLY", "SKIP"}, {"ECHO", "x"}, {"CLIENT", "REPLY", "ON"}, {"ECHO", "a"}}, []string{"+OK\r\n", "$1\r\na\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "SKIP"}, {"client", "reply", "skip"}, {"ECHO", "x"}, {"ECHO", "y"}}, []string{"$1\r\ny\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "OFF"}, {"ECHO", "x"}, {"CLIENT", "REPLY", "ON"}, {"ECHO", "y"}}, []string{"+OK\r\n", "$1\r\ny\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "SKIP"}, {"MULTI"}, {"ECHO", "x"}, {"EXEC"}, {"ECHO", "y"}}, []string{"+QUEUED\r\n", "*1\r\n$1\r\nx\r\n", "$1\r\ny\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "SKIP"}, {"NOSUCHCMD"}, {"ECHO", "y"}}, []string{"$1\r\ny\r\n"}},
		{[][]string{{"CLIENT", "REPLY", "OFF"}, {"NOSUCHCMD"}, {"GET", "k"}, {"CLIENT", "REPLY", "ON"}, {"ECHO", "y"}}, []string{"+OK\r\n", "$1\r\ny\r\n"}},
	} {
		x := newTracker(t)
		for _, c := range tc.cmds {
			if info := x.cmd(c...); info.retire != "" {
				t.Fatalf("%v retired: %s", tc.cmds, info.retire)
			}
			if x.st.silent() {
				x.noInject("while " + strings.Join(c, " ") + " suppresses the next reply")
			}
		}
		if x.st.silent() || x.st.unmovable() {
			t.Fatalf("%v: still silent or unmovable", tc.cmds)
		}
		x.inject(7)
		for _, r := range tc.replies {
			x.mustKeep(r)
		}
		x.mustStrip("+OK\r\n", 7)
		x.empty()
	}
	// While replies are off the connection is unmovable, and an unanswered
	// command that changes what the tracker follows retires it.
	for _, c := range [][]string{{"SUBSCRIBE", "a"}, {"HELLO", "3"}, {"RESET"}, {"BLPOP", "l", "1"}, {"AUTH", "p"}} {
		x := newTracker(t)
		x.cmd("CLIENT", "REPLY", "OFF")
		if !x.st.unmovable() {
			t.Fatal("replies off, and the connection is not unmovable")
		}
		info := x.cmd(c...)
		if info.retire == "" {
			t.Fatalf("%v with replies off did not retire", c)
		}
		if info.ownAuth != (c[0] == "AUTH") {
			t.Fatalf("%v with replies off: ownAuth %v", c, info.ownAuth)
		}
	}
}
