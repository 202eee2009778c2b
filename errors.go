package entraredis

import (
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/endpoint"
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
