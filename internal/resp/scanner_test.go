package resp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// summary is a comparable description of one frame.
func summary(f *Frame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%c N=%d size=%d", byte(f.Kind), f.N, f.Size)
	for i := 0; i < f.HeadLen; i++ {
		e := &f.Head[i]
		fmt.Fprintf(&b, " [%c %q len=%d", byte(e.Kind()), e.Bytes(), e.Len())
		if e.Truncated() {
			b.WriteString(" trunc")
		}
		if v, ok := e.Int(); ok {
			fmt.Fprintf(&b, " int=%d", v)
		}
		b.WriteString("]")
	}
	return b.String()
}

// scanChunks scans the chunks in order and returns the frames' summaries and
// the error, checking the contract of Scan on the way.
func scanChunks(t testing.TB, s *Scanner, chunks ...[]byte) ([]string, error) {
	t.Helper()
	var out []string
	for _, c := range chunks {
		for len(c) > 0 {
			n, done, err := s.Scan(c)
			if err != nil {
				return out, err
			}
			if n <= 0 || n > len(c) {
				t.Fatalf("Scan consumed %d of %d bytes", n, len(c))
			}
			if !done && n != len(c) {
				t.Fatalf("Scan stopped at %d of %d bytes without a frame", n, len(c))
			}
			if done {
				if s.InFrame() {
					t.Fatalf("InFrame after a complete frame")
				}
				out = append(out, summary(s.Frame()))
			} else if !s.InFrame() {
				t.Fatalf("consumed %d bytes but not InFrame", n)
			}
			c = c[n:]
		}
	}
	return out, nil
}

var validFrames = []struct {
	name, in string
	want     []string
}{
	{"simple string", "+OK\r\n", []string{`+ N=2 size=5 [+ "OK" len=2]`}},
	{"empty simple string", "+\r\n", []string{`+ N=0 size=3 [+ "" len=0]`}},
	{"simple error", "-ERR unknown command 'x'\r\n", []string{`- N=23 size=26 [- "ERR unknown command 'x'" len=23]`}},
	{"integer", ":1000\r\n", []string{`: N=4 size=7 [: "1000" len=4 int=1000]`}},
	{"negative integer", ":-42\r\n", []string{`: N=3 size=6 [: "-42" len=3 int=-42]`}},
	{"plus integer", ":+7\r\n", []string{`: N=2 size=5 [: "+7" len=2 int=7]`}},
	{"max integer", ":9223372036854775807\r\n", []string{`: N=19 size=22 [: "9223372036854775807" len=19 int=9223372036854775807]`}},
	{"min integer", ":-9223372036854775808\r\n", []string{`: N=20 size=23 [: "-9223372036854775808" len=20 int=-9223372036854775808]`}},
	{"bulk string", "$5\r\nhello\r\n", []string{`$ N=5 size=11 [$ "hello" len=5]`}},
	{"bulk decimal", "$3\r\n-12\r\n", []string{`$ N=3 size=9 [$ "-12" len=3 int=-12]`}},
	{"empty bulk", "$0\r\n\r\n", []string{`$ N=0 size=6 [$ "" len=0]`}},
	{"bulk with CRLF inside", "$4\r\na\r\nb\r\n", []string{`$ N=4 size=10 [$ "a\r\nb" len=4]`}},
	{"null bulk", "$-1\r\n", []string{`$ N=-1 size=5 [$ "" len=-1]`}},
	{"null array", "*-1\r\n", []string{`* N=-1 size=5`}},
	{"empty array", "*0\r\n", []string{`* N=0 size=4`}},
	{"long bulk truncated", "$70\r\n" + strings.Repeat("x", 70) + "\r\n", []string{`$ N=70 size=77 [$ "` + strings.Repeat("x", 64) + `" len=70 trunc]`}},
	{"command", "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n", []string{`* N=3 size=33 [$ "SUBSCRIBE" len=9] [$ "a" len=1] [$ "b" len=1]`}},
	{"push subscribe", ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", []string{`> N=3 size=30 [$ "subscribe" len=9] [$ "a" len=1] [: "1" len=1 int=1]`}},
	{"head keeps four", "*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", []string{`* N=5 size=24 [: "1" len=1 int=1] [: "2" len=1 int=2] [: "3" len=1 int=3] [: "4" len=1 int=4]`}},
	{"nested", "*2\r\n*2\r\n:1\r\n$1\r\nx\r\n+y\r\n", []string{`* N=2 size=23 [* "" len=2] [+ "y" len=1]`}},
	{"deep nesting", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:7\r\n", []string{`* N=1 size=24 [* "" len=1]`}},
	{"nested empty and null", "*3\r\n*0\r\n*-1\r\n$-1\r\n", []string{`* N=3 size=18 [* "" len=0] [* "" len=-1] [$ "" len=-1]`}},
	{"map", "%2\r\n+a\r\n:1\r\n+b\r\n#t\r\n", []string{`% N=4 size=20 [+ "a" len=1] [: "1" len=1 int=1] [+ "b" len=1] [# "t" len=1]`}},
	{"set", "~2\r\n,3.14\r\n(12345678901234567890\r\n", []string{`~ N=2 size=34 [, "3.14" len=4] [( "12345678901234567890" len=20]`}},
	{"double inf", ",-inf\r\n", []string{`, N=4 size=7 [, "-inf" len=4]`}},
	{"boolean", "#f\r\n", []string{`# N=1 size=4 [# "f" len=1]`}},
	{"big number", "(-3492890328409238509324850943850943825024385\r\n", []string{`( N=44 size=47 [( "-3492890328409238509324850943850943825024385" len=44]`}},
	{"null", "_\r\n", []string{`_ N=0 size=3 [_ "" len=0]`}},
	{"bulk error", "!21\r\nSYNTAX invalid syntax\r\n", []string{`! N=21 size=28 [! "SYNTAX invalid syntax" len=21]`}},
	{"verbatim", "=15\r\ntxt:Some string\r\n", []string{`= N=15 size=22 [= "txt:Some string" len=15]`}},
	{"top-level attribute then reply", "|1\r\n+key-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$5\r\nhello\r\n",
		[]string{`| N=2 size=43 [+ "key-popularity" len=14] [* "" len=2]`, `$ N=5 size=11 [$ "hello" len=5]`}},
	{"nested attribute skipped", "*2\r\n|1\r\n+ttl\r\n:3600\r\n:2039123\r\n:9\r\n", []string{`* N=2 size=35 [: "2039123" len=7 int=2039123] [: "9" len=1 int=9]`}},
	{"nested attribute last", "*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", []string{`* N=1 size=20 [: "1" len=1 int=1]`}},
	{"empty nested attribute", "*1\r\n|0\r\n:1\r\n", []string{`* N=1 size=12 [: "1" len=1 int=1]`}},
	{"empty attribute frame", "|0\r\n", []string{`| N=0 size=4`}},
	{"pipeline", "+OK\r\n:1\r\n$1\r\na\r\n", []string{`+ N=2 size=5 [+ "OK" len=2]`, `: N=1 size=4 [: "1" len=1 int=1]`, `$ N=1 size=7 [$ "a" len=1]`}},
	{"map of aggregates", "%1\r\n*1\r\n:1\r\n~1\r\n_\r\n", []string{`% N=2 size=19 [* "" len=1] [~ "" len=1]`}},
}

func TestScanWholeAndSplit(t *testing.T) {
	for _, c := range validFrames {
		t.Run(c.name, func(t *testing.T) {
			var s Scanner
			got, err := scanChunks(t, &s, []byte(c.in))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			var total int64
			for _, g := range got {
				var size int64
				fmt.Sscanf(g[strings.Index(g, "size="):], "size=%d", &size)
				total += size
			}
			if total != int64(len(c.in)) {
				t.Fatalf("frame sizes add up to %d, input is %d bytes", total, len(c.in))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			in := []byte(c.in)
			for cut := 1; cut < len(in); cut++ {
				s.Reset()
				split, err := scanChunks(t, &s, in[:cut], in[cut:])
				if err != nil || strings.Join(split, "\n") != strings.Join(got, "\n") {
					t.Fatalf("split at %d: %v, %v", cut, split, err)
				}
			}
			s.Reset()
			var bytewise [][]byte
			for i := range in {
				bytewise = append(bytewise, in[i:i+1])
			}
			one, err := scanChunks(t, &s, bytewise...)
			if err != nil || strings.Join(one, "\n") != strings.Join(got, "\n") {
				t.Fatalf("byte by byte: %v, %v", one, err)
			}
		})
	}
}

func TestScanAllFramesInOneStream(t *testing.T) {
	var stream strings.Builder
	var want []string
	for _, c := range validFrames {
		stream.WriteString(c.in)
		want = append(want, c.want...)
	}
	var s Scanner
	got, err := scanChunks(t, &s, []byte(stream.String()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d frames, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestScanErrors(t *testing.T) {
	cases := []struct{ name, in, msg string }{
		{"inline command", "PING\r\n", "inline command"},
		{"unknown nested type", "*1\r\nx\r\n", "unknown type byte"},
		{"streamed string", "$?\r\n;4\r\nHell\r\n;0\r\n", "streamed"},
		{"streamed array", "*?\r\n:1\r\n.\r\n", "streamed"},
		{"stream chunk", ";4\r\nabcd\r\n", "streamed"},
		{"stream end", ".\r\n", "streamed"},
		{"negative bulk", "$-2\r\n", "invalid length"},
		{"negative array", "*-5\r\n", "invalid length"},
		{"null map", "%-1\r\n", "invalid length"},
		{"null verbatim", "=-1\r\n", "invalid length"},
		{"empty length", "$\r\n", "invalid length"},
		{"length with letter", "*1x\r\n", "invalid length"},
		{"length overflow", "$99999999999999999999\r\n", "invalid length"},
		{"bulk too long", "$536870913\r\n", "512 MiB"},
		{"aggregate too long", "*4294967297\r\n", "too long"},
		{"map too long", "%2147483649\r\n", "too long"},
		{"integer overflow", ":9223372036854775808\r\n", "overflow"},
		{"negative integer overflow", ":-9223372036854775809\r\n", "overflow"},
		{"integer letters", ":12a\r\n", "invalid integer"},
		{"empty integer", ":\r\n", "invalid integer"},
		{"bad boolean", "#x\r\n", "invalid boolean"},
		{"long boolean", "#tt\r\n", "invalid boolean"},
		{"empty boolean", "#\r\n", "invalid boolean"},
		{"bad double", ",1.5x\r\n", "invalid double"},
		{"empty double", ",\r\n", "invalid double"},
		{"bad big number", "(12a\r\n", "invalid big number"},
		{"null with text", "_x\r\n", "invalid null"},
		{"bare LF", "+OK\n", "line feed"},
		{"CR without LF", "+OK\rX", "CRLF"},
		{"bulk without CRLF", "$2\r\nabX\r\n", "CRLF"},
		{"bulk CR without LF", "$2\r\nab\rX", "CRLF"},
		{"short verbatim", "=3\r\ntxt\r\n", "format"},
		{"verbatim without colon", "=5\r\ntxtxx\r\n", "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Scanner
			_, err := scanChunks(t, &s, []byte(c.in))
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrProtocol with %q", err, c.msg)
			}
			// Errors are final.
			if _, _, err2 := s.Scan([]byte("+OK\r\n")); err2 != err {
				t.Fatalf("after an error Scan returned %v", err2)
			}
			// Split at every byte, the same error.
			in := []byte(c.in)
			for cut := 1; cut < len(in); cut++ {
				s.Reset()
				_, err2 := scanChunks(t, &s, in[:cut], in[cut:])
				if err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("split at %d: %v, want %v", cut, err2, err)
				}
			}
			s.Reset()
			if got, err := scanChunks(t, &s, []byte("+OK\r\n")); err != nil || len(got) != 1 {
				t.Fatalf("after Reset: %v %v", got, err)
			}
		})
	}
}

func TestScanDepthLimit(t *testing.T) {
	var s Scanner
	ok := strings.Repeat("*1\r\n", MaxDepth) + ":1\r\n"
	got, err := scanChunks(t, &s, []byte(ok))
	if err != nil || len(got) != 1 {
		t.Fatalf("depth %d: %v %v", MaxDepth, got, err)
	}
	_, err = scanChunks(t, &s, []byte(strings.Repeat("*1\r\n", MaxDepth+1)+":1\r\n"))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "deeply") {
		t.Fatalf("depth %d: %v", MaxDepth+1, err)
	}
}

func TestElemEqualFoldAndInt(t *testing.T) {
	var s Scanner
	if _, err := scanChunks(t, &s, []byte("*3\r\n$4\r\nAuTh\r\n$20\r\n12345678901234567890\r\n+99\r\n")); err != nil {
		t.Fatal(err)
	}
	f := s.Frame()
	if !f.Head[0].EqualFold("auth") || !f.Head[0].EqualFold("AUTH") || f.Head[0].EqualFold("AUT") || f.Head[0].EqualFold("AUTO") {
		t.Fatalf("EqualFold on %q", f.Head[0].Bytes())
	}
	if _, ok := f.Head[1].Int(); ok {
		t.Fatalf("Int of an overflowing decimal succeeded")
	}
	if v, ok := f.Head[2].Int(); !ok || v != 99 {
		t.Fatalf("Int of +99 = %d %v", v, ok)
	}
	long := "*1\r\n$65\r\n" + strings.Repeat("a", 65) + "\r\n"
	if _, err := scanChunks(t, &s, []byte(long)); err != nil {
		t.Fatal(err)
	}
	if s.Frame().Head[0].EqualFold(strings.Repeat("a", 64)) || s.Frame().Head[0].EqualFold(strings.Repeat("a", 65)) {
		t.Fatalf("EqualFold on a truncated element")
	}
}

func TestScanNoAllocs(t *testing.T) {
	var stream strings.Builder
	for _, c := range validFrames {
		stream.WriteString(c.in)
	}
	in := []byte(stream.String())
	var s Scanner
	scanAll := func() {
		p := in
		for len(p) > 0 {
			n, _, err := s.Scan(p)
			if err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
	}
	scanAll() // grow the stack
	if a := testing.AllocsPerRun(100, scanAll); a != 0 {
		t.Fatalf("%v allocations per stream of %d frames", a, len(validFrames))
	}
}

func TestFrameIsNullAndKindNames(t *testing.T) {
	var s Scanner
	for in, want := range map[string]bool{"_\r\n": true, "$-1\r\n": true, "*-1\r\n": true, "$0\r\n\r\n": false, "*0\r\n": false, "+\r\n": false} {
		if _, err := scanChunks(t, &s, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got := s.Frame().IsNull(); got != want {
			t.Errorf("%q: IsNull = %v", in, got)
		}
	}
	if Push.String() != "push" || Kind('x').String() != `kind('x')` || !Attribute.IsAggregate() || Verbatim.IsAggregate() {
		t.Fatalf("Kind names: %s %s", Push, Kind('x'))
	}
}
