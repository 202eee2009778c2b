package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func readCommands(t *testing.T, in string) ([]string, error) {
	t.Helper()
	r := NewReader(bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(in)), 16))
	var out []string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		if re := AppendCommand(nil, args...); !bytes.Equal(re, r.Raw()) {
			t.Fatalf("Raw = %q, the arguments encode as %q", r.Raw(), re)
		}
		out = append(out, fmt.Sprintf("%q", args))
	}
}

func TestReadCommand(t *testing.T) {
	big := strings.Repeat("x", 100000)
	in := string(AppendCommand(nil, "SET", "k", big)) + "PING\r\n" + "\r\n" + "  \n" + "auth  user\tpass\n" + "*0\r\n" +
		string(AppendCommand(nil, "GET", "")) + string(AppendCommand(nil, "ECHO", "a\r\nb")) + "+OK\r\n"
	got, err := readCommands(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%q", []string{"SET", "k", big}), `["PING"]`, `["auth" "user" "pass"]`, `[]`, `["GET" ""]`, `["ECHO" "a\r\nb"]`, `["+OK"]`}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("commands = %.300s", got)
	}
	for _, c := range []struct{ in, msg string }{
		{"*x\r\n", "invalid length"},
		{"*1\r\n:1\r\n", "expected '$', got ':'"},
		{"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", "expected '$', got '*'"},
		{"*1\r\n$-1\r\n", "invalid bulk length"},
		{"*-1\r\n", "invalid multibulk length"},
		{"*1048577\r\n", "invalid multibulk length"},
		{"*1\r\n$3\r\nabcd\r\n", "CRLF"},
		{"*2\n", "line feed"},
		{strings.Repeat("a", MaxInlineLen+1) + "\n", "too big inline request"},
	} {
		_, err := readCommands(t, c.in)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.40q: %v, want a protocol error with %q", c.in, err, c.msg)
		}
	}
	for _, in := range []string{"*2\r\n$3\r\nGET\r\n", "*2\r\n$3\r\nGE", "PING"} {
		if _, err := readCommands(t, in); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated %q: %v, want ErrUnexpectedEOF", in, err)
		}
	}
}

// timeoutOnce returns the first n bytes, then a timeout error once, then the rest.
type timeoutOnce struct {
	b     []byte
	n     int
	fired bool
}

func (r *timeoutOnce) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if !r.fired && r.n == 0 {
		r.fired = true
		return 0, os.ErrDeadlineExceeded
	}
	k := len(r.b)
	if !r.fired {
		k = min(k, r.n)
		r.n -= k
	}
	k = copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// A read error inside a frame (a deadline) does not lose the frame: the
// next read goes on with it.
func TestReadResumesAfterReadError(t *testing.T) {
	cmd := AppendCommand(nil, "SET", "key", strings.Repeat("v", 40))
	for cut := 1; cut < len(cmd); cut++ {
		r := NewReader(bufio.NewReaderSize(&timeoutOnce{b: bytes.Clone(cmd), n: cut}, 16))
		if _, err := r.ReadCommand(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut %d: %v, want the timeout", cut, err)
		}
		args, err := r.ReadCommand()
		if err != nil || len(args) != 3 || string(args[2]) != strings.Repeat("v", 40) || !bytes.Equal(r.Raw(), cmd) {
			t.Fatalf("cut %d: %q %v", cut, args, err)
		}
	}
}

func TestReadValue(t *testing.T) {
	in := "+OK\r\n-ERR no\r\n:-5\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n_\r\n#t\r\n,1.5\r\n(123\r\n=7\r\ntxt:abc\r\n!3\r\nBAD\r\n" +
		"|1\r\n+a\r\n+b\r\n" + "*3\r\n:1\r\n|1\r\n+ttl\r\n:9\r\n*1\r\n$1\r\nx\r\n%1\r\n+k\r\n~1\r\n:2\r\n" + ">2\r\n$7\r\nmessage\r\n$1\r\nm\r\n"
	r := NewReader(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16))
	var got []string
	for {
		v, err := r.ReadValue()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%c:%#v", byte(v.Kind), v.Any()))
	}
	want := []string{`+:"OK"`, `-:&resp.Error{Msg:"ERR no"}`, `::-5`, `$:"abc"`, `$:<nil>`, `*:<nil>`, `_:<nil>`, `#:true`,
		`,:"1.5"`, `(:"123"`, `=:"abc"`, `!:&resp.Error{Msg:"BAD"}`, `*:[]interface {}{1, []interface {}{"x"}, []interface {}{"k", []interface {}{2}}}`,
		`>:[]interface {}{"message", "m"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e := &Error{Msg: "WRONGPASS invalid username-password pair"}
	if e.Code() != "WRONGPASS" || e.Error() != e.Msg {
		t.Fatalf("Error %q: Code %q", e.Msg, e.Code())
	}
}

func TestReadCommandNoAllocs(t *testing.T) {
	in := bytes.Repeat([]byte(benchCommands), 8)
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	r := NewReader(br)
	n := countFrames(t, in)
	read := func() {
		src.Reset(in)
		br.Reset(src)
		for range n {
			if _, err := r.ReadCommand(); err != nil {
				t.Fatal(err)
			}
		}
	}
	read()
	if a := testing.AllocsPerRun(20, read); a != 0 {
		t.Fatalf("%v allocations per %d commands", a, n)
	}
}
