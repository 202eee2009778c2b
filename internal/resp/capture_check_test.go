package resp

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (re-create with: go test -tags respcapture -run TestCaptureCorpus ./internal/resp/)", err)
	}
	return b
}

// TestCapturedCommands reads the commands of the captured sessions and
// checks that re-encoding each one gives back its bytes, and that Frame.Head
// names the command.
func TestCapturedCommands(t *testing.T) {
	for _, name := range []string{"resp2-client.bin", "resp3-client.bin"} {
		b := readCapture(t, name)
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(b), 16))
		n := 0
		for {
			args, err := r.ReadCommand()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: command %d: %v", name, n, err)
			}
			if re := AppendCommand(nil, args...); !bytes.Equal(re, r.Raw()) {
				t.Fatalf("%s: command %d re-encoded as %q, read %q", name, n, re, r.Raw())
			}
			if f := r.s.Frame(); f.Kind != Array || f.N != int64(len(args)) || !f.Head[0].EqualFold(string(args[0])) {
				t.Fatalf("%s: command %d: frame %s for %q", name, n, summary(f), args)
			}
			n++
		}
		if n < 50 {
			t.Fatalf("%s: %d commands", name, n)
		}
	}
}

// TestCapturedReplies checks that the captured replies hold every kind the
// seed corpus is meant to cover, read by the Scanner and by ReadValue.
func TestCapturedReplies(t *testing.T) {
	cases := []struct {
		name   string
		kinds  []Kind   // top-level or nested kinds that must occur
		pushes []string // first elements of pushes (RESP2: arrays) that must occur
	}{
		{"resp2-server.bin", []Kind{SimpleString, SimpleError, Integer, BulkString, Array},
			[]string{"subscribe", "psubscribe", "message", "pmessage", "pong", "unsubscribe", "punsubscribe"}},
		{"resp3-server.bin", []Kind{SimpleString, SimpleError, Integer, BulkString, Array, Map, Set, Push, Attribute,
			Verbatim, Double, Boolean, BigNumber, Null},
			[]string{"subscribe", "psubscribe", "message", "pmessage", "unsubscribe", "punsubscribe", "invalidate"}},
	}
	for _, c := range cases {
		b := readCapture(t, c.name)
		seen := map[Kind]bool{}
		pushes := map[string]bool{}
		var s Scanner
		var biggest int64
		frames := 0
		for p := b; len(p) > 0; {
			n, done, err := s.Scan(p)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			p = p[n:]
			if !done {
				t.Fatalf("%s: ends inside a frame", c.name)
			}
			f := s.Frame()
			frames++
			seen[f.Kind] = true
			for i := 0; i < f.HeadLen; i++ {
				seen[f.Head[i].Kind()] = true
			}
			if (f.Kind == Push || f.Kind == Array) && f.HeadLen > 0 {
				pushes[string(f.Head[0].Bytes())] = true
			}
			if f.Kind == BulkString && f.N > biggest {
				biggest = f.N
			}
		}
		for _, k := range c.kinds {
			if !seen[k] {
				t.Errorf("%s: no %s in %d frames", c.name, k, frames)
			}
		}
		for _, p := range c.pushes {
			if !pushes[p] {
				t.Errorf("%s: no %q push or array", c.name, p)
			}
		}
		if c.name == "resp3-server.bin" && biggest < 1<<20 {
			t.Errorf("%s: the largest bulk string is %d bytes, want the 1 MiB value", c.name, biggest)
		}
		r := NewReader(bufio.NewReader(bytes.NewReader(b)))
		values := 0
		for {
			_, err := r.ReadValue()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: ReadValue: %v", c.name, err)
			}
			values++
		}
		attrs := 0
		if seen[Attribute] {
			attrs = 1
		}
		if values != frames-attrs {
			t.Fatalf("%s: %d values, %d frames of which %d attributes", c.name, values, frames, attrs)
		}
	}
}
