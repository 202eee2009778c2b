package rueidisentra_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/entraredistest"
)

// rueidis' lazy cluster-topology refresh (singleflight.go, call.DelayDo)
// sleeps up to about a second on a goroutine of its own that Close does not
// stop, then finds the client closed and returns: it is rueidis', bounded, and
// not a leak of this package's. Likewise, after a topology refresh that
// replaced connections, rueidis closes the old ones from a goroutine that
// sleeps 5 s first (cluster.go, clusterClient._refresh).
func TestMain(m *testing.M) {
	entraredistest.OmitExamplesWithoutRedisServer() // its example needs CLIENT TRACKING, which the in-process Redis lacks
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}
