package resp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// Each benchmark operation scans one stream of frames; allocs/op is thus
// the allocations of a whole stream, and 0 means none per frame.

var benchCommands = string(AppendCommand(nil, "SET", "key:1", strings.Repeat("v", 100))) +
	string(AppendCommand(nil, "GET", "key:1")) +
	string(AppendCommand(nil, "HELLO", "3", "AUTH", "user", strings.Repeat("t", 1500))) +
	string(AppendCommand(nil, "SUBSCRIBE", "a", "b", "c")) +
	string(AppendCommand(nil, "MULTI")) + string(AppendCommand(nil, "INCR", "n")) + string(AppendCommand(nil, "EXEC"))

var benchReplies = "+OK\r\n" + ":1\r\n" + "$100\r\n" + strings.Repeat("v", 100) + "\r\n" + "$-1\r\n" + "_\r\n" +
	"-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
	"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n" +
	">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n" +
	">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n" +
	">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n" +
	"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$5\r\nreply\r\n" +
	"~2\r\n,3.14\r\n(12345678901234567890\r\n" + "=15\r\ntxt:Some string\r\n" + "#t\r\n" +
	"*3\r\n+OK\r\n:2\r\n*2\r\n*1\r\n$1\r\nx\r\n!5\r\nERROR\r\n"

func countFrames(tb testing.TB, in []byte) int {
	var s Scanner
	frames := 0
	for p := in; len(p) > 0; {
		n, done, err := s.Scan(p)
		if err != nil {
			tb.Fatal(err)
		}
		if done {
			frames++
		}
		p = p[n:]
	}
	return frames
}

func benchScan(b *testing.B, in []byte, piece int) {
	frames := countFrames(b, in)
	var s Scanner
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got := 0
		for off := 0; off < len(in); {
			end := min(off+piece, len(in))
			p := in[off:end]
			for len(p) > 0 {
				n, done, err := s.Scan(p)
				if err != nil {
					b.Fatal(err)
				}
				if done {
					got++
				}
				p = p[n:]
				off += n
			}
		}
		if got != frames {
			b.Fatalf("%d frames, want %d", got, frames)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/frame")
	b.ReportMetric(float64(frames), "frames/op")
}

func BenchmarkScanCommands(b *testing.B) { benchScan(b, []byte(benchCommands), 1<<30) }
func BenchmarkScanReplies(b *testing.B)  { benchScan(b, []byte(benchReplies), 1<<30) }

// BenchmarkScanRepliesSplit feeds the replies in 7-byte pieces.
func BenchmarkScanRepliesSplit(b *testing.B) { benchScan(b, []byte(benchReplies), 7) }

// BenchmarkScanBigBulk scans a 1 MiB bulk string in 32 KiB reads.
func BenchmarkScanBigBulk(b *testing.B) {
	benchScan(b, []byte("$1048576\r\n"+strings.Repeat("x", 1<<20)+"\r\n"), 32<<10)
}

// BenchmarkReadCommand reads commands with the Reader (as the emulator does).
func BenchmarkReadCommand(b *testing.B) {
	in := []byte(strings.Repeat(benchCommands, 64))
	frames := countFrames(b, in)
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 32<<10)
	r := NewReader(br)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		for range frames {
			if _, err := r.ReadCommand(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(frames), "frames/op")
}
