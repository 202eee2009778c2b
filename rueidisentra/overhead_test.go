package rueidisentra

import (
	"context"
	"net"
	"testing"

	"github.com/redis/rueidis"
)

// fakeClient answers every command at once with an empty reply: what is left
// of a command's cost is the wrapper's.
type fakeClient struct {
	rueidis.Client
	r rueidis.RedisResult
}

func (f *fakeClient) Do(context.Context, rueidis.Completed) rueidis.RedisResult { return f.r }

// nopConn is a net.Conn whose Read and Write do nothing.
type nopConn struct{ net.Conn }

func (nopConn) Read(p []byte) (int, error)  { return len(p), nil }
func (nopConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkOverhead measures what rueidisentra adds to each command: the
// client wrapper (explaining WRONGPASS/NOPERM) and the tracked connection
// (one more call per Read and Write), against the same calls made directly.
// Compare with a command's round trip (tens of microseconds through TLS).
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	fake := &fakeClient{r: rueidis.NewResult(rueidis.RedisMessage{}, nil)}
	c := &client{Client: fake}
	var cmd rueidis.Completed
	b.Run("Do/direct", func(b *testing.B) {
		var raw rueidis.Client = fake
		for b.Loop() {
			_ = raw.Do(ctx, cmd).Error()
		}
	})
	b.Run("Do/rueidisentra", func(b *testing.B) {
		var wrapped rueidis.Client = c
		for b.Loop() {
			_ = wrapped.Do(ctx, cmd).Error()
		}
	})
	buf := make([]byte, 64)
	b.Run("ReadWrite/direct", func(b *testing.B) {
		var nc net.Conn = nopConn{}
		for b.Loop() {
			nc.Write(buf)
			nc.Read(buf)
		}
	})
	b.Run("ReadWrite/rueidisentra", func(b *testing.B) {
		var nc net.Conn = &trackedConn{Conn: nopConn{}, addr: &connAddr{st: &connState{}}}
		for b.Loop() {
			nc.Write(buf)
			nc.Read(buf)
		}
	})
}
