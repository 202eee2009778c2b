//go:build linux

package entraredistest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time used so far by this process and the
// server's redis-server.
func cpuTime(b *testing.B, srv *Server) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if rb, ok := srv.be.(*redisServerBackend); ok {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(rb.p.Pid()) + "/stat")
		if err == nil {
			// Fields after the command name "(...)": utime and stime are
			// the 12th and 13th, in clock ticks (100 per second on Linux).
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				total += time.Duration(ut+st) * 10 * time.Millisecond
			}
		}
	}
	return total
}
