// Package tokenspy holds test helpers for credentials: a credential that
// remembers every token it hands out, so that a test can check that none of
// them reaches an output (logs, errors, printed values, hooks), and
// EntraRefusal, a fake Microsoft Entra ID for azidentity's credentials.
package tokenspy

import (
	"context"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Credential wraps an azcore.TokenCredential and records the tokens it
// returns. It is safe for concurrent use.
type Credential struct {
	inner azcore.TokenCredential

	mu     sync.Mutex // guards tokens
	tokens []string
}

// New returns a Credential that asks inner for its tokens.
func New(inner azcore.TokenCredential) *Credential { return &Credential{inner: inner} }

// GetToken asks the wrapped credential and records the token it returned.
func (c *Credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	at, err := c.inner.GetToken(ctx, o)
	if err == nil {
		c.mu.Lock()
		c.tokens = append(c.tokens, at.Token)
		c.mu.Unlock()
	}
	return at, err
}

// Tokens returns a copy of every token handed out so far, oldest first.
func (c *Credential) Tokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.tokens...)
}
