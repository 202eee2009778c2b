package reauth

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/entraredis/entraredis/internal/resp"
)

// startStates are tracker states a command or reply may meet.
func startStates(t *testing.T) map[string]func() *tracker {
	after := func(args ...string) func() *tracker {
		return func() *tracker {
			x := newTracker(t)
			x.cmd(args...)
			return x
		}
	}
	return map[string]func() *tracker{
		"fresh":        func() *tracker { return newTracker(t) },
		"in MULTI":     after("MULTI"),
		"after ASKING": after("ASKING"),
		"RESP3 subscribed": func() *tracker {
			x := newTracker(t)
			x.cmd("HELLO", "3")
			x.mustKeep("%1\r\n$5\r\nproto\r\n:3\r\n")
			x.cmd("SUBSCRIBE", "a")
			x.mustKeep(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
			return x
		},
		"RESP2 subscribed": func() *tracker {
			x := newTracker(t)
			x.cmd("SUBSCRIBE", "a")
			x.mustKeep("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
			return x
		},
		"AUTH owed": func() *tracker {
			x := newTracker(t)
			x.cmd("GET", "k")
			x.inject(7)
			return x
		},
		"retired": after("MONITOR"),
	}
}

// TestSpecialNames holds the write side's fast path to command: for every
// command redis-server 7 knows (testdata/commands.txt, from COMMAND LIST),
// in upper and lower case, with a few kinds of arguments, from several
// states, a name special does not claim changes the state exactly as
// plainCommand does.
func TestSpecialNames(t *testing.T) {
	f, err := os.Open("testdata/commands.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		names = append(names, sc.Text())
	}
	if len(names) < 200 {
		t.Fatalf("%d command names, want the whole list", len(names))
	}
	names = append(names, "XREAD", "xreadgroup", "WAITAOF", "NOSUCHCOMMAND", strings.Repeat("X", 40))
	argSets := [][]string{nil, {"k"}, {"BLOCK", "0", "STREAMS", "s", "0"}, {"CACHING", "yes"}, {"REPLY", "OFF"}, {"3"}, {"a", "b", "c", "d", "e"}}
	plain, claimed := 0, 0
	for _, name := range names {
		for _, n := range []string{strings.ToUpper(name), strings.ToLower(name)} {
			var buf nameBuf
			if special(upper([]byte(n), &buf)) {
				claimed++
				continue
			}
			plain++
			for sname, mk := range startStates(t) {
				for _, args := range argSets {
					viaCommand, viaPlain := mk(), mk()
					info := viaCommand.cmd(append([]string{n}, args...)...)
					viaPlain.st.plainCommand()
					if info != (cmdInfo{}) || !reflect.DeepEqual(viaCommand.st, viaPlain.st) {
						t.Fatalf("%s %q from %s: command gives %+v, state\n%+v\nplainCommand gives\n%+v", n, args, sname, info, viaCommand.st, viaPlain.st)
					}
				}
			}
		}
	}
	if claimed < 2*27 || plain < 300 {
		t.Fatalf("special claimed %d names, left %d plain", claimed, plain)
	}
}

// TestPlainReply holds the read side's fast path to reply: for every frame
// resp.SkipFrame measures, from states whose queue starts with a plain
// command, plainReply either declines or changes the state exactly as reply
// does, which then reports nothing (no AUTH, no desync, nothing unblocked).
func TestPlainReply(t *testing.T) {
	frames := []string{"+OK\r\n", "-ERR x\r\n", "-WRONGPASS no\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "_\r\n",
		"*0\r\n", "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
		"*2\r\n$4\r\npong\r\n$0\r\n\r\n", "%1\r\n+a\r\n:1\r\n", "~1\r\n+a\r\n"}
	taken := 0
	for sname, mk := range startStates(t) {
		for _, raw := range frames {
			if _, _, ok := resp.SkipFrame([]byte(raw)); !ok {
				t.Fatalf("SkipFrame does not measure %q", raw)
			}
			a, b := mk(), mk()
			a.cmd("GET", "k") // a plain command is owed (behind whatever the state owes)
			b.cmd("GET", "k")
			if !a.st.plainReply() {
				continue
			}
			taken++
			strip, r := b.reply(raw)
			if strip || r != (replyResult{}) || !reflect.DeepEqual(a.st, b.st) {
				t.Fatalf("%q from %s: reply strips %v, gives %+v, state\n%+v\nplainReply gives\n%+v", raw, sname, strip, r, b.st, a.st)
			}
		}
	}
	if taken < 3*len(frames) {
		t.Fatalf("the fast path took %d frames only", taken)
	}
}
