package entraredis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/tokenspy"
)

// recordingCred remembers every token its credential hands out.
type recordingCred struct{ *tokenspy.Credential }

// secrets returns the parts of the handed-out tokens that identify them: a
// JWT's header is the same for every token, its payload and signature are not.
func (c recordingCred) secrets() []string {
	var s []string
	for _, t := range c.Tokens() {
		parts := strings.Split(t, ".")
		if len(parts) != 3 || len(parts[1]) < 16 || len(parts[2]) < 16 {
			panic("not a JWT")
		}
		s = append(s, parts[1], parts[2])
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the loggers' goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// goRedisLog records go-redis' internal logger.
type goRedisLog struct{ w *syncBuffer }

func (l goRedisLog) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(l.w, format+"\n", v...)
}

// TestNoTokenInLogsOrErrors: through rotations, a failed refresh, a refused
// re-AUTH and a refused first AUTH, no token reaches the library's logs at
// Debug level, go-redis' own logger, an error the application sees, or any
// fmt verb of the values it holds. (Hooks: TestNoTokenReachesGoRedis.)
func TestNoTokenInLogsOrErrors(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{TokenLifetime: 2 * time.Second})
	var logs, redisLogs syncBuffer
	redis.SetLogger(goRedisLog{&redisLogs})
	t.Cleanup(func() { redis.SetLogger(goRedisLog{&syncBuffer{}}) })

	good := srv.Credential()
	// The stranger's token is refused, so the connections stay on the first
	// token, which expires about when a token of the same life as the
	// stranger's would be replaced: a shorter life brings its replacement
	// (after one failed request) well before the first token expires, so
	// that a loaded machine does not turn the refusal into expired
	// connections that redial with the refused token.
	stranger := srv.Issuer().NewCredential(entraredistest.CredentialOptions{Lifetime: 800 * time.Millisecond})
	cred := recordingCred{tokenspy.New(&strangerSecond{good: good, stranger: stranger})}
	var mu sync.Mutex
	var seen []error // errors the callbacks were given
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rdb, err := entraredis.NewClient(t.Context(), cred, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), PoolSize: 4}, &entraredis.Options{
		Options: entratoken.Options{
			Logger:          logger,
			OnRefreshFailed: func(e entraredis.RefreshFailed) { mu.Lock(); seen = append(seen, e.Err); mu.Unlock() },
			OnReauthFailed:  func(e entraredis.ReauthFailed) { mu.Lock(); seen = append(seen, e.Err); mu.Unlock() },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	good.FailNext(1, errors.New("token service down")) // the third request fails, the fourth succeeds

	ctx := t.Context()
	res := runLoad(ctx, rdb, 8, 7*time.Second, 1_000_000)
	if res.errs != 0 {
		t.Fatal(res.firstErrs)
	}
	st := rdb.Status()
	if st.Rotations < 2 || st.ReauthFailures == 0 {
		t.Fatalf("%d rotations, %d refused re-AUTHs: the test proves nothing", st.Rotations, st.ReauthFailures)
	}

	refused := recordingCred{tokenspy.New(srv.Issuer().NewCredential(entraredistest.CredentialOptions{}))}
	rdb2, err := entraredis.NewClient(ctx, refused, &redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()}, &entraredis.Options{Options: entratoken.Options{Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb2.Close()
	wrongPass := rdb2.Ping(ctx).Err()
	var ae *entraredis.AuthError
	if !errors.As(wrongPass, &ae) {
		t.Fatalf("a principal without access policy: %v", wrongPass)
	}

	time.Sleep(200 * time.Millisecond) // callbacks run on the event goroutine
	mu.Lock()
	values := []any{rdb, rdb.Client, rdb.Options(), rdb.Status(), rdb2.Status(), wrongPass, ae}
	for _, e := range seen {
		values = append(values, e)
	}
	mu.Unlock()
	if len(values) < 9 {
		t.Fatalf("the callbacks got %d errors, want a refresh failure and a refused re-AUTH", len(values)-7)
	}
	var printed strings.Builder
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			fmt.Fprintf(&printed, verb+"\n", v)
		}
	}
	out := map[string]string{"the library's logs": logs.String(), "go-redis' logs": redisLogs.String(), "printed values": printed.String()}
	for _, want := range []string{"token refreshed", "refused", "token service down"} {
		if !strings.Contains(out["the library's logs"], want) {
			t.Fatalf("the logs do not mention %q: the test proves less than it says\n%s", want, out["the library's logs"])
		}
	}
	secrets := append(cred.secrets(), refused.secrets()...)
	if len(secrets) < 2*4 {
		t.Fatalf("%d token parts recorded, want at least four tokens", len(secrets))
	}
	for where, text := range out {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("%s contain a token", where)
			}
		}
	}
}
