package resp

import (
	"bytes"
	"testing"
)

// checkFast holds SkipFrame and ScanCommand to the Scanner on data: when
// either returns ok, the Scanner, given the same bytes, completes one frame
// of the same size (and kind, count and name).
func checkFast(t *testing.T, data []byte) (skipped, command bool) {
	t.Helper()
	scan := func() (int, *Frame) {
		var s Scanner
		n, done, err := s.Scan(data)
		if err != nil || !done {
			return -1, nil
		}
		return n, s.Frame()
	}
	if n, k, ok := SkipFrame(data); ok {
		sn, f := scan()
		if sn != n || f.Kind != k {
			t.Fatalf("SkipFrame(%q) = %d, %v; the Scanner: %d bytes, frame %+v", data, n, k, sn, f)
		}
		skipped = true
	}
	if n, name, count, ok := ScanCommand(data); ok {
		sn, f := scan()
		if sn != n || f.Kind != Array || f.N != count || f.Head[0].Kind() != BulkString {
			t.Fatalf("ScanCommand(%q) = %d, %q, %d; the Scanner: %d bytes, frame %+v", data, n, name, count, sn, f)
		}
		if h := &f.Head[0]; !h.Truncated() && !bytes.Equal(h.Bytes(), name) || h.Truncated() && !bytes.HasPrefix(name, h.Bytes()) {
			t.Fatalf("ScanCommand(%q): name %q, the Scanner's %q", data, name, h.Bytes())
		}
		command = true
	}
	return skipped, command
}

// FuzzFast: go test -run X -fuzz FuzzFast ./internal/resp/
func FuzzFast(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, _ uint64) {
		data = data[:min(len(data), maxFuzzInput)]
		checkFast(t, data)
		// Every frame boundary of the input is a start too.
		var s Scanner
		for i := 0; i < len(data); {
			n, done, err := s.Scan(data[i:])
			if err != nil {
				return
			}
			i += n
			if done {
				checkFast(t, data[i:])
			}
		}
	})
}

// TestFastCoverage: the frames a client exchanges most take the fast paths,
// and the ones they do not handle fall through (to the Scanner).
func TestFastCoverage(t *testing.T) {
	for _, c := range []struct {
		in            string
		skip, command bool
	}{
		{"+OK\r\n", true, false},
		{"-ERR no\r\n", true, false},
		{":-42\r\n", true, false},
		{"$3\r\nabc\r\n", true, false},
		{"$0\r\n\r\n", true, false},
		{"$-1\r\n", true, false},
		{"*-1\r\n", true, false},
		{"_\r\n", true, false},
		{"*0\r\n", true, false},
		{"%1\r\n+a\r\n:1\r\n", true, false},
		{"~2\r\n+a\r\n+b\r\n", true, false},
		{"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", true, true},
		{"*1\r\n$4\r\nPING\r\n", true, true},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", true, true},
		// Left to the Scanner.
		{"*2\r\n$3\r\nGET\r\n$3\r\nke", false, false}, // incomplete
		{"$3\r\nab", false, false},
		{">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", false, false}, // push
		{"|1\r\n+a\r\n+b\r\n+OK\r\n", false, false},                     // attribute
		{",1.5\r\n", false, false},
		{"#t\r\n", false, false},
		{"=7\r\ntxt:abc\r\n", false, false},
		{"!3\r\nERR\r\n", false, false},
		{"*1\r\n:1\r\n", true, false}, // not a command
		{"*0\r\n", true, false},
		{"$-01\r\n", false, false}, // the Scanner accepts it; the fast path does not try
		{"+O\nK\r\n", false, false},
		{"PING\r\n", false, false},
		{"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n", false, false}, // 9 deep
		{"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n", true, false},        // 8 deep
	} {
		skip, cmd := checkFast(t, []byte(c.in))
		if skip != c.skip || cmd != c.command {
			t.Errorf("%q: SkipFrame ok %v, ScanCommand ok %v; want %v, %v", c.in, skip, cmd, c.skip, c.command)
		}
	}
}

func BenchmarkSkipFrame(b *testing.B) {
	reply := []byte("$16\r\n0123456789abcdef\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := SkipFrame(reply); !ok {
			b.Fatal("not skipped")
		}
	}
}

func BenchmarkScanCommand(b *testing.B) {
	cmd := []byte("*3\r\n$3\r\nSET\r\n$13\r\nkey:000000001\r\n$16\r\n0123456789abcdef\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, ok := ScanCommand(cmd); !ok {
			b.Fatal("not scanned")
		}
	}
}
