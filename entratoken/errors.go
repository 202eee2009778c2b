package entratoken

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraredis/entraredis/internal/claims"
)

// prefix starts every message of this module's errors, once.
const prefix = "entraredis: "

// Sentinel errors. Every error the package returns wraps the relevant one, so
// callers test them with errors.Is.
var (
	// ErrNoObjectID means the token has no "oid" claim and Options.Username is
	// empty. The TokenError that wraps it says what to do (Hint).
	ErrNoObjectID = errors.New(prefix + "the token has no oid claim")
	// ErrMalformedToken means the credential returned something that is not a JWT
	// access token with an expiry.
	ErrMalformedToken = claims.ErrMalformed
	// ErrNoValidToken means no unexpired token is held right now: the first fetch
	// failed, or every refresh failed until the token expired. The refresher keeps
	// trying in the background; the wrapped error is the last failure.
	ErrNoValidToken = errors.New(prefix + "no valid Microsoft Entra token")
	// ErrClosed is returned by a Source (and entraredis.Credentials) after Close.
	ErrClosed = errors.New(prefix + "credentials closed")
	// ErrPlaintextRemote means Options.Plaintext was set for a host that is not
	// loopback without Options.AllowPlaintextRemote.
	ErrPlaintextRemote = errors.New(prefix + "plaintext refused for a non-loopback host")
)

// message returns err's message without this module's prefix, to append it
// to a message that already has it.
func message(err error) string { return strings.TrimPrefix(err.Error(), prefix) }

// wrapped is a sentinel with details: "entraredis: <sentinel>: <detail>: <cause>",
// one prefix whatever the nesting. It matches both the sentinel and the cause.
type wrapped struct {
	sentinel error
	detail   string // may be empty
	cause    error  // may be nil
}

func (e *wrapped) Error() string {
	var b strings.Builder
	b.WriteString(e.sentinel.Error())
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(message(e.cause))
	}
	return b.String()
}

func (e *wrapped) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

// TokenError reports a failure to get a token from the credential. Error
// returns a short message followed by the Hint in parentheses; it never
// contains a token.
type TokenError struct {
	Scope string // the scope asked for
	Err   error  // the credential's error, or why its token was refused
	Panic any    // the value the credential's GetToken panicked with; nil when it did not panic
}

// Error returns "entraredis: getting a token for scope ...: " with the
// credential's message, followed by the Hint in parentheses when there is one.
// It never contains the token.
func (e *TokenError) Error() string {
	msg := fmt.Sprintf(prefix+"getting a token for scope %q: %s", e.Scope, message(e.Err))
	if hint := e.Hint(); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

// Hint says what usually causes this failure and what to check; "" when
// there is nothing to add to the message.
func (e *TokenError) Hint() string {
	err := e.Err
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
	case errors.Is(err, ErrNoObjectID):
		return "set Options.Username to the object ID of the principal that holds the Redis access policy"
	case errors.Is(err, ErrMalformedToken):
		return "the credential did not return a Microsoft Entra access token"
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
// working on it. Error returns the reply followed by the Hint.
type AuthError struct {
	Username string // the user name that was sent: should be the principal's object ID
	Scope    string // the scope the token was asked for
	Err      error  // the server's reply
}

// Error returns the server's reply followed by the Hint in brackets.
func (e *AuthError) Error() string {
	return e.Err.Error() + " [" + prefix + e.Hint() + "]"
}

// Unwrap returns the server's reply.
func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what causes this reply on Azure and what to check.
func (e *AuthError) Hint() string {
	if hasReplyPrefix(e.Err, "NOPERM") {
		return fmt.Sprintf("the user %q is authenticated but its access policy does not allow this command or key: in the Azure portal, Settings > Authentication (or Data Access Configuration), assign Data Owner or Data Contributor for writes, or extend the custom access policy", e.Username)
	}
	return fmt.Sprintf("the server refused user %q with this token: check that an access policy is assigned to this principal (Settings > Authentication > Microsoft Entra Authentication, by object ID), that Microsoft Entra Authentication is enabled on the cache, that the user name is the token's oid claim (not the client ID or UPN), that the token was asked for scope %s, and that it has not expired", e.Username, cmp.Or(e.Scope, DefaultScope))
}

// ExplainAuth wraps a WRONGPASS or NOPERM reply in an AuthError; other errors
// (and errors already explained) are returned as they are, nil included.
func ExplainAuth(err error, username, scope string) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	if hasReplyPrefix(err, "WRONGPASS") || hasReplyPrefix(err, "NOPERM") {
		return &AuthError{Username: username, Scope: scope, Err: err}
	}
	return err
}

// redisReply is go-redis' redis.Error, matched without importing go-redis.
type redisReply interface {
	error
	RedisError()
}

// hasReplyPrefix reports whether err is a server reply whose text starts
// with prefix: the go-redis reply in err's chain when there is one (as
// redis.HasErrorPrefix reads it), else err's own text (rueidis' replies). An
// "ERR " before the code is skipped, as go-redis does.
func hasReplyPrefix(err error, prefix string) bool {
	msg := err.Error()
	var r redisReply
	if errors.As(err, &r) {
		msg = r.Error()
	}
	return strings.HasPrefix(strings.TrimPrefix(msg, "ERR "), prefix)
}
