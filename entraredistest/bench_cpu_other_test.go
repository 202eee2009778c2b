//go:build !linux

package entraredistest

import (
	"testing"
	"time"
)

// cpuTime is not measured outside Linux: the cpu-ns/op metric reads 0.
func cpuTime(*testing.B, *Server) time.Duration { return 0 }
