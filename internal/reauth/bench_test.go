package reauth

import (
	"net"
	"testing"
	"time"
)

// replyConn answers every Read with one canned reply (after the first
// AUTH's +OK) and discards what is written.
type replyConn struct {
	first bool
	reply []byte
}

func (r *replyConn) Read(p []byte) (int, error) {
	if !r.first {
		r.first = true
		return copy(p, "+OK\r\n"), nil
	}
	return copy(p, r.reply), nil
}
func (r *replyConn) Write(p []byte) (int, error)      { return len(p), nil }
func (r *replyConn) Close() error                     { return nil }
func (r *replyConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (r *replyConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (r *replyConn) SetDeadline(time.Time) error      { return nil }
func (r *replyConn) SetReadDeadline(time.Time) error  { return nil }
func (r *replyConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkCommand is the wrapper's cost per command: one GET written and
// its reply read, both tracked, with the three deadline calls go-redis
// makes per command (goRedisCommand).
func BenchmarkCommand(b *testing.B) {
	c, err := New[testToken](&replyConn{reply: []byte("$3\r\nabc\r\n")}, &testSource{cur: tokenN(1)}, Config{Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	cmd := encode("GET", "key:000000001")
	buf := make([]byte, 64)
	c.Write(cmd)
	c.Read(buf) // the first AUTH's reply is stripped, the GET's returned
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		goRedisCommand(b, c, cmd, buf)
	}
}

// deadline is the deadline the benchmarks set, as go-redis sets its
// ReadTimeout and WriteTimeout (computed once: time.Now is not the
// wrapper's cost).
var deadline = time.Now().Add(time.Hour)

// goRedisCommand does on c what go-redis does per command: the pool's
// connection check clears the deadlines, then each of the write and the
// read of the reply sets its own deadline first.
func goRedisCommand(b *testing.B, c *Conn[testToken], cmd, buf []byte) {
	c.SetDeadline(time.Time{})
	c.SetWriteDeadline(deadline)
	if _, err := c.Write(cmd); err != nil {
		b.Fatal(err)
	}
	c.SetReadDeadline(deadline)
	if n, err := c.Read(buf); err != nil || n != 9 {
		b.Fatal(n, err)
	}
}

// BenchmarkCommandManyConns is BenchmarkCommand spread over 256 connections
// in turn, as a busy pool uses them: each command finds its connection's
// state out of the nearest caches.
func BenchmarkCommandManyConns(b *testing.B) { benchCommandOver(b, 256) }

// BenchmarkCommandColdCache is BenchmarkCommand spread over 40,000
// connections (about 70 MB of state, far more than the caches hold), so that
// each command meets its connection's state in memory, as it does in a
// process whose system calls and other goroutines have evicted it: the cost
// that the layout of Conn (the fields a command touches, together) is for.
func BenchmarkCommandColdCache(b *testing.B) { benchCommandOver(b, 40000) }

// benchCommandOver is BenchmarkCommand over n connections used in turn.
func benchCommandOver(b *testing.B, n int) {
	conns := make([]*Conn[testToken], n)
	cmd := encode("GET", "key:000000001")
	buf := make([]byte, 64)
	for i := range conns {
		c, err := New[testToken](&replyConn{reply: []byte("$3\r\nabc\r\n")}, &testSource{cur: tokenN(1)}, Config{Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		c.Write(cmd)
		c.Read(buf)
		conns[i] = c
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		goRedisCommand(b, conns[i%n], cmd, buf)
		i++
	}
}
