package tokensource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// TestOnePrefixPerMessage: the nested errors a user meets say
// "entraredis:" once, and keep every sentinel reachable.
func TestOnePrefixPerMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newIssuer(t)
		tok, err := is.Mint(entraredistest.TokenSpec{Claims: map[string]any{"oid": nil}, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := NewSource(staticCredential{tok: azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}}, (&recorder{}).options(entratoken.Options{}))
		defer s.Close()
		err = s.WaitReady(t.Context())
		_, tokErr := s.Token()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		slow, _ := NewSource(credentialFunc(func(ctx context.Context, _ tokenOptions) (accessToken, error) {
			<-ctx.Done()
			return accessToken{}, ctx.Err()
		}), (&recorder{}).options(entratoken.Options{}))
		defer slow.Close()
		ctxErr := slow.WaitReady(ctx)
		for _, e := range []error{err, tokErr} {
			if !errors.Is(e, entratoken.ErrNoValidToken) || !errors.Is(e, entratoken.ErrNoObjectID) {
				t.Fatalf("%v: sentinels not reachable", e)
			}
			want := `entraredis: no valid Microsoft Entra token: getting a token for scope "https://redis.azure.com/.default": the token has no oid claim (set Options.Username to the object ID of the principal that holds the Redis access policy)`
			if e.Error() != want {
				t.Fatalf("message\n%q\nwant\n%q", e, want)
			}
		}
		if !errors.Is(ctxErr, entratoken.ErrNoValidToken) || !errors.Is(ctxErr, context.Canceled) || strings.Count(ctxErr.Error(), "entraredis:") != 1 {
			t.Fatalf("caller's context: %v", ctxErr)
		}
	})
}

func TestExplainAuthWithoutGoRedis(t *testing.T) {
	wrongpass := errors.New("WRONGPASS invalid username-password pair or user is disabled.")
	noperm := goRedisLike("NOPERM User u has no permissions to run the 'set' command")
	wrappedReply := fmt.Errorf("pipeline: %w", goRedisLike("ERR NOPERM this user has no permissions to access one of the keys used as arguments"))
	for _, tc := range []struct {
		err     error
		explain bool
		mention string
	}{
		{wrongpass, true, "access policy is assigned"},
		{noperm, true, "Data Contributor"},
		{wrappedReply, true, "Data Contributor"},
		{errors.New("i/o timeout"), false, ""},
		{goRedisLike("ERR unknown command"), false, ""},
		{fmt.Errorf("context: %w", errors.New("talking about WRONGPASS")), false, ""},
	} {
		got := ExplainAuth(tc.err, "oid-1", "")
		var ae *entratoken.AuthError
		if errors.As(got, &ae) != tc.explain {
			t.Errorf("ExplainAuth(%v) = %v", tc.err, got)
			continue
		}
		if !tc.explain {
			if got != tc.err {
				t.Errorf("ExplainAuth changed %v into %v", tc.err, got)
			}
			continue
		}
		if !errors.Is(got, tc.err) || !strings.Contains(got.Error(), tc.mention) || !strings.Contains(ae.Hint(), tc.mention) || ae.Username != "oid-1" {
			t.Errorf("ExplainAuth(%v) = %v", tc.err, got)
		}
		if !strings.HasPrefix(got.Error(), tc.err.Error()+" [entraredis: ") {
			t.Errorf("the reply does not come first: %q", got)
		}
		var reply goRedisLike
		if _, isReply := tc.err.(goRedisLike); isReply && !errors.As(got, &reply) {
			t.Errorf("the reply is not reachable with errors.As: %v", got)
		}
		if again := ExplainAuth(got, "x", ""); again != got {
			t.Error("an explained error was explained again")
		}
	}
	if ExplainAuth(nil, "u", "") != nil {
		t.Error("nil explained")
	}
}

// goRedisLike is an error with go-redis' redis.Error method set.
type goRedisLike string

func (e goRedisLike) Error() string { return string(e) }

func (goRedisLike) RedisError() {}
