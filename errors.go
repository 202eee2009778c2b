package entraredis

import (
	"errors"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/endpoint"
	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/resp"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// Sentinel errors. Every error the package returns wraps the relevant one, so
// callers test them with errors.Is.
var (
	// ErrNoObjectID means the token has no "oid" claim and Options.Username is empty.
	ErrNoObjectID = entratoken.ErrNoObjectID
	// ErrMalformedToken means the credential returned something that is not a JWT
	// access token with an expiry.
	ErrMalformedToken = entratoken.ErrMalformedToken
	// ErrNoValidToken means no unexpired token is held right now: the first fetch
	// failed, or every refresh failed until the token expired. The refresher keeps
	// trying in the background; the wrapped error is the last failure.
	ErrNoValidToken = entratoken.ErrNoValidToken
	// ErrClosed is returned by Credentials.Subscribe and WaitReady after
	// Credentials.Close (Client and ClusterClient then return go-redis' own
	// "client is closed").
	ErrClosed = entratoken.ErrClosed
	// ErrPlaintextRemote means Options.Plaintext was set for a host that is not
	// loopback without Options.AllowPlaintextRemote.
	ErrPlaintextRemote = endpoint.ErrPlaintextRemote
)

// TokenError reports a failure to get a token from the credential: a short
// message and a Hint of what to check. It never contains a token.
type TokenError = entratoken.TokenError

// AuthError explains a WRONGPASS or NOPERM reply from the server. It wraps
// the reply, so errors.As(err, &redis.Error) and redis.HasErrorPrefix keep
// working on it; Hint says what to check.
type AuthError = entratoken.AuthError

// explainAuth is the one explanation of a refusal of the library's AUTH,
// and of NOPERM (tokensource.ExplainAuth). A *reauth.RefusedError (a
// connection's refused AUTH: go-redis sees the first one as a connection
// error, so that it closes that connection instead of going on
// unauthenticated) becomes the server's reply, explained under the user
// name the AUTH was sent with; another error is explained under the user
// name in use. nil stays nil.
func explainAuth(src *tokensource.Source, err error) error {
	if err == nil {
		return nil
	}
	user := usernameOf(src)
	var ref *reauth.RefusedError
	if errors.As(err, &ref) {
		err, user = &resp.Error{Msg: ref.Reply}, ref.Username
	}
	return tokensource.ExplainAuth(err, user, src.Scope())
}

// usernameOf returns the user name of src's token in use, or the configured
// one before the first token.
func usernameOf(src *tokensource.Source) string {
	if tok, err := src.Token(); err == nil {
		return tok.Username()
	}
	return src.Options().Username
}
