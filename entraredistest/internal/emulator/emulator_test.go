package emulator

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/internal/resp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func readAll(t *testing.T, in string) ([][]string, error) {
	t.Helper()
	cr := newCmdReader(bufio.NewReaderSize(strings.NewReader(in), 16))
	var out [][]string
	for {
		err := cr.next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		var args []string
		for i := 0; i < cr.nargs(); i++ {
			args = append(args, string(cr.arg(i)))
		}
		// The raw bytes are a valid RESP encoding of the arguments.
		want := encodeStrings(args)
		if string(cr.raw) != want {
			t.Fatalf("raw = %q, want %q", cr.raw, want)
		}
		out = append(out, args)
	}
}

func encodeStrings(args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func TestCmdReader(t *testing.T) {
	big := strings.Repeat("x", 100000)
	in := encodeStrings([]string{"SET", "k", big}) + "PING\r\n" + "\r\n" + "auth  user\tpass\n" + encodeStrings([]string{"GET", ""}) + encodeStrings([]string{"ECHO", "a\r\nb"})
	got, err := readAll(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"SET", "k", big}, {"PING"}, {"auth", "user", "pass"}, {"GET", ""}, {"ECHO", "a\r\nb"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commands = %.200q", got)
	}
	for _, bad := range []string{"*x\r\n", "*1\r\n:1\r\n", "*1\r\n$-1\r\n", "*1\r\n$3\r\nabcd\r\n", "*2\n"} {
		if _, err := readAll(t, bad); !errors.Is(err, resp.ErrProtocol) {
			t.Errorf("%q: %v, want a protocol error", bad, err)
		}
	}
	if _, err := readAll(t, "*2\r\n$3\r\nGET\r\n"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v, want ErrUnexpectedEOF", err)
	}
}

func TestIsCmd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{{"auth", true}, {"AUTH", true}, {"AuTh", true}, {"AUTHX", false}, {"aut", false}, {"BUTH", false}} {
		if got := isCmd([]byte(c.in), "AUTH"); got != c.want {
			t.Errorf("isCmd(%q) = %v", c.in, got)
		}
	}
}

func TestCopyReplyFixesWrongPass(t *testing.T) {
	in := "+OK\r\n-WRONGPASS invalid username-password pair\r\n$5\r\nhello\r\n*2\r\n$-1\r\n:1\r\n%1\r\n$1\r\na\r\n=7\r\ntxt:abc\r\n-WRONGPASS other\r\n"
	rd := resp.NewReader(bufio.NewReaderSize(strings.NewReader(in), 16))
	var out strings.Builder
	bw := bufio.NewWriter(&out)
	for {
		if err := copyReply(rd, bw); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
	}
	bw.Flush()
	want := strings.Replace(in, "pair\r\n", "pair or user is disabled.\r\n", 1)
	if out.String() != want {
		t.Fatalf("out = %q\nwant  %q", out.String(), want)
	}
}

func TestNewEndpointValidates(t *testing.T) {
	auth := func(string, string) (Identity, error) { return Identity{}, nil }
	users := map[string]BackendUser{"owner": {"u", "p"}}
	for _, cfg := range []EndpointConfig{
		{BackendAddr: "127.0.0.1:1", Users: users},
		{Authenticate: auth, Users: users},
		{Authenticate: auth, BackendAddr: "127.0.0.1:1"},
	} {
		if ep, err := NewEndpoint(cfg); err == nil {
			ep.Close()
			t.Errorf("NewEndpoint(%+v) accepted an incomplete config", cfg)
		}
	}
}

// loopReader replays the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// The hot path (read a command, decide it needs no rewrite, forward it)
// allocates nothing.
func TestHotPathDoesNotAllocate(t *testing.T) {
	in := encodeStrings([]string{"SET", "key:1", "value-0123456789"}) + encodeStrings([]string{"GET", "key:1"})
	cr := newCmdReader(bufio.NewReaderSize(&loopReader{b: []byte(in)}, 32<<10))
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	pc := &proxyConn{}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := cr.next(); err != nil {
			t.Fatal(err)
		}
		if pc.special(cr) {
			t.Fatal("GET/SET taken for special")
		}
		bw.Write(cr.raw)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per command, want 0", allocs)
	}
}

func BenchmarkCmdReader(b *testing.B) {
	in := encodeStrings([]string{"SET", "key:1", "value-0123456789"}) + encodeStrings([]string{"GET", "key:1"})
	cr := newCmdReader(bufio.NewReaderSize(&loopReader{b: []byte(in)}, 32<<10))
	pc := &proxyConn{}
	b.ReportAllocs()
	for b.Loop() {
		cr.next()
		pc.special(cr)
	}
}
