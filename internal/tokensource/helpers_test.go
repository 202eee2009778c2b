package tokensource

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Test plumbing: the names the tests used when they tested the go-redis
// provider of package entraredis, on the Source they now test directly.

// BasicAuth returns the user name and the token, as go-redis' credentials do.
func (t Token) BasicAuth() (string, string) { return t.Username(), t.Password() }

// ready is what the go-redis layer's dial hook asks: nil when a new
// connection can authenticate now.
func (s *Source) ready() error {
	_, err := s.Token()
	return err
}

// peek returns the token in use, nil before the first one.
func (s *Source) peek() *token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

// Short names for the test credentials' signatures.
type (
	contextT        = context.Context
	tokenOptions    = policy.TokenRequestOptions
	accessToken     = azcore.AccessToken
	tokenCredential = azcore.TokenCredential
)

// credentialFunc is a credential made of a function.
type credentialFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f credentialFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}
