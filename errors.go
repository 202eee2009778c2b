package entraredis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/claims"
)

// Sentinel errors. Every error the package returns wraps the relevant one, so
// callers test them with errors.Is.
var (
	// ErrNoObjectID means the token has no "oid" claim and Options.Username is empty.
	ErrNoObjectID = errors.New("entraredis: the token has no oid claim; set Options.Username to the object ID of the principal that holds the Redis access policy")
	// ErrMalformedToken means the credential returned something that is not a JWT
	// access token with an expiry.
	ErrMalformedToken = claims.ErrMalformed
	// ErrNoValidToken means no unexpired token is held right now: the first fetch
	// failed, or every refresh failed until the token expired. The refresher keeps
	// trying in the background; the wrapped error is the last failure.
	ErrNoValidToken = errors.New("entraredis: no valid Microsoft Entra token")
	// ErrClosed is returned by Credentials.Subscribe and WaitReady after
	// Credentials.Close (Client and ClusterClient then return go-redis' own
	// "client is closed").
	ErrClosed = errors.New("entraredis: credentials closed")
	// ErrPlaintextRemote means Options.Plaintext was set for a host that is not
	// loopback without Options.AllowPlaintextRemote.
	ErrPlaintextRemote = errors.New("entraredis: plaintext refused for a non-loopback host: Azure requires TLS, and the token would cross the network in clear; remove Options.Plaintext (or set Options.AllowPlaintextRemote if you really mean it)")
)

// TokenError reports a failure to get a token from the credential. Its message
// says what failed and what to check; it never contains a token.
type TokenError struct {
	Scope string // the scope asked for
	Err   error  // the credential's error, or the parse error
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "entraredis: getting a token for scope %q: %v", e.Scope, e.Err)
	if hint := tokenHint(e.Err); hint != "" {
		b.WriteString(" (")
		b.WriteString(hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

func tokenHint(err error) string {
	var failed *azidentity.AuthenticationFailedError
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: check that this host reaches Microsoft Entra ID (login.microsoftonline.com) or the managed identity endpoint, or raise Options.AttemptTimeout"
	case errors.Is(err, context.Canceled):
		return "canceled by the caller"
	case errors.Is(err, ErrNoObjectID), errors.Is(err, ErrMalformedToken):
		return ""
	case strings.Contains(msg, "AADSTS500011"), strings.Contains(msg, "AADSTS70011"), strings.Contains(msg, "invalid_scope"):
		return "the scope is not valid for this tenant: Azure Cache for Redis and Azure Managed Redis use " + DefaultScope
	case strings.Contains(msg, "no credential") || strings.Contains(msg, "unavailable"):
		return "the credential is not available in this environment: check its configuration (environment variables, managed identity, az login), or use another credential"
	case errors.As(err, &failed):
		return "Microsoft Entra ID refused the request: check the credential's client ID, tenant and secret or certificate"
	}
	return ""
}

// AuthError explains a WRONGPASS or NOPERM reply from the server. It wraps the
// reply itself, so errors.As(err, &redis.Error) and redis.HasErrorPrefix keep
// working on it.
type AuthError struct {
	Username string // the user name that was sent: should be the principal's object ID
	Scope    string // the scope the token was asked for
	Err      error  // the server's reply
}

func (e *AuthError) Error() string {
	return e.Err.Error() + " [entraredis: " + e.Hint() + "]"
}

// Unwrap returns the server's reply.
func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what causes this reply on Azure and what to check.
func (e *AuthError) Hint() string {
	if redis.HasErrorPrefix(e.Err, "NOPERM") {
		return fmt.Sprintf("the user %q is authenticated but its access policy does not allow this command or key: in the Azure portal, Settings > Authentication (or Data Access Configuration), assign Data Owner or Data Contributor for writes, or extend the custom access policy", e.Username)
	}
	return fmt.Sprintf("the server refused user %q with this token: check that an access policy is assigned to this principal (Settings > Authentication > Microsoft Entra Authentication, by object ID), that Microsoft Entra Authentication is enabled on the cache, that the user name is the token's oid claim (not the client ID or UPN), that the token was asked for scope %s, and that it has not expired", e.Username, cmp.Or(e.Scope, DefaultScope))
}

// explainAuth wraps WRONGPASS and NOPERM replies in an AuthError; other errors
// are returned as they are.
func explainAuth(err error, username, scope string) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	if redis.HasErrorPrefix(err, "WRONGPASS") || redis.HasErrorPrefix(err, "NOPERM") {
		return &AuthError{Username: username, Scope: scope, Err: err}
	}
	return err
}
