package entraredis_test

import (
	"context"
	"log"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/entraredistest"
)

// silentLogger drops go-redis' internal log lines (one per connection that
// its re-authentication hook hands back to the pool), which would bury test
// output. It is set once for the test binary.
type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	entraredistest.OmitExamplesWithoutRedisServer()
	if os.Getenv("ENTRAREDIS_TEST_GOREDIS_LOG") == "" {
		redis.SetLogger(silentLogger{})
	} else {
		redis.SetLogger(redisLogger{log.New(os.Stderr, "redis: ", log.LstdFlags)})
	}
	goleak.VerifyTestMain(m)
}

type redisLogger struct{ l *log.Logger }

func (r redisLogger) Printf(_ context.Context, format string, args ...any) {
	r.l.Printf(format, args...)
}
