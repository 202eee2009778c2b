package entratoken

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraredis/entraredis/internal/claims"
	"github.com/entraredis/entraredis/internal/errs"
)

// prefix starts every message of this module's errors, once.
const prefix = errs.Prefix

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
	// ErrClosed is returned by a client's token source after Close
	// (entraredis.Credentials, a rueidisentra client).
	ErrClosed = errors.New(prefix + "credentials closed")
)

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
	msg := fmt.Sprintf(prefix+"getting a token for scope %q: %s", e.Scope, errs.Message(e.Err))
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
	var own interface{ Hint() string } // an error of the library that knows its cause (a panic, an expired token)
	if errors.As(e.Err, &own) {
		return own.Hint()
	}
	switch kind := FailureKindOf(e.Err); kind {
	case FailureTimeout:
		return "timed out: check that this host reaches Microsoft Entra ID (login.microsoftonline.com) or the managed identity endpoint, or raise Options.AttemptTimeout"
	case FailureCanceled:
		return "canceled by the caller"
	case FailureNoObjectID:
		return "set Options.Username to the object ID of the principal that holds the Redis access policy"
	case FailureMalformedToken:
		return "the credential did not return a Microsoft Entra access token"
	case FailureInvalidScope:
		return "the scope is not valid for this tenant: Azure Cache for Redis and Azure Managed Redis use " + DefaultScope
	case FailureUnavailable, FailureRefused:
		return credentialHint(kind, errs.Message(e.Err))
	}
	return ""
}

// credentialAdvice is what to check after a token request failed in one
// way, when the message names one of names (azidentity's messages name the
// credential first); no names: whatever the credential.
type credentialAdvice struct {
	names []string
	text  string
}

// credentialHints are the Hints of the failures whose cause depends on the
// kind of credential: a lead, then the first advice that applies.
var credentialHints = map[FailureKind]struct {
	lead   string
	advice []credentialAdvice
}{
	FailureRefused: {"Microsoft Entra ID refused the request: ", []credentialAdvice{
		{[]string{"ManagedIdentityCredential"}, "check that a managed identity is assigned to this resource (VM, App Service, container, AKS node pool) and, for a user-assigned one, that the client ID, object ID or resource ID configured is that identity's"},
		{[]string{"WorkloadIdentityCredential"}, "check the federated identity credential of the app registration or managed identity (issuer and subject: the cluster's OIDC issuer and the service account) and the AZURE_CLIENT_ID and AZURE_TENANT_ID the pod gets"},
		{[]string{"AzureCLICredential", "AzureDeveloperCLICredential"}, "sign in again (az login, or azd auth login) with an account of the cache's tenant"},
		{nil, "check the credential's client ID, tenant and secret or certificate"},
	}},
	FailureUnavailable: {"the credential is not available in this environment: ", []credentialAdvice{
		{[]string{"AzureCLICredential"}, "install the Azure CLI and run az login, or use the credential made for where this runs: a managed identity on Azure, workload identity on AKS"},
		{[]string{"ManagedIdentityCredential"}, "no managed identity endpoint answers on this host; outside Azure, use another credential: az login, or a service principal"},
		{nil, "check its configuration (environment variables, managed identity, az login), or use another credential"},
	}},
}

// credentialHint is the Hint of a failure of kind whose message is msg.
func credentialHint(kind FailureKind, msg string) string {
	h := credentialHints[kind]
	for _, a := range h.advice {
		if len(a.names) == 0 || slices.ContainsFunc(a.names, func(name string) bool { return strings.Contains(msg, name) }) {
			return h.lead + a.text
		}
	}
	return ""
}

// FailureKind is the kind of a failed token refresh, for metrics and
// alerts: a short, fixed string that never holds a token or an error text.
type FailureKind string

// The kinds of refresh failures, as FailureKindOf tells them apart.
const (
	FailureTimeout        FailureKind = "timeout"                // the attempt ran out of Options.AttemptTimeout
	FailureCanceled       FailureKind = "canceled"               // the caller's context was canceled
	FailureNoObjectID     FailureKind = "no_object_id"           // the token has no oid claim and no Username is set
	FailureMalformedToken FailureKind = "malformed_token"        // the credential's token is not a JWT with an expiry
	FailureInvalidScope   FailureKind = "invalid_scope"          // Microsoft Entra ID refused the scope
	FailureUnavailable    FailureKind = "credential_unavailable" // the credential cannot work in this environment
	FailureRefused        FailureKind = "authentication_failed"  // Microsoft Entra ID refused the credential
	FailureOther          FailureKind = "other"                  // anything else
)

// FailureKindOf classifies a refresh failure (the error of RefreshFailed,
// Status.LastError, or TokenError.Err): the one classification behind both
// TokenError.Hint and Status.RefreshFailures.
func FailureKindOf(err error) FailureKind {
	var failed *azidentity.AuthenticationFailedError
	// azidentity's error for a credential that cannot work here (Azure CLI
	// not installed, no managed identity endpoint, no environment
	// variables) is unexported; it is the one of its errors that is
	// NonRetriable and not an AuthenticationFailedError.
	var unavailable interface{ NonRetriable() }
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return FailureTimeout
	case errors.Is(err, context.Canceled):
		return FailureCanceled
	case errors.Is(err, ErrNoObjectID):
		return FailureNoObjectID
	case errors.Is(err, ErrMalformedToken):
		return FailureMalformedToken
	case strings.Contains(msg, "AADSTS500011"), strings.Contains(msg, "AADSTS70011"), strings.Contains(msg, "invalid_scope"):
		return FailureInvalidScope
	case errors.As(err, &failed):
		return FailureRefused
	case errors.As(err, &unavailable), strings.Contains(msg, "no credential"), strings.Contains(msg, "unavailable"):
		return FailureUnavailable
	}
	return FailureOther
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
	if errs.ReplyHasPrefix(e.Err, "NOPERM") {
		return fmt.Sprintf("the user %q is authenticated but its access policy does not allow this command or key: in the Azure portal, Settings > Authentication (or Data Access Configuration), assign Data Owner or Data Contributor for writes, or extend the custom access policy", e.Username)
	}
	return fmt.Sprintf("the server refused user %q with this token: check that an access policy is assigned to this principal (Settings > Authentication > Microsoft Entra Authentication, by object ID), that Microsoft Entra Authentication is enabled on the cache, that the user name is the token's oid claim (not the client ID or UPN), that the token was asked for scope %s, and that it has not expired", e.Username, cmp.Or(e.Scope, DefaultScope))
}

// ErrTokenRefused means a new connection was not dialed because the server
// refused the token in use for a new connection a moment ago (see
// RefusedError).
var ErrTokenRefused = errors.New(prefix + "the server refused the token in use")
