package tokensource

// Micro-benchmarks of the token core. Run them with
//
//	go test -run '^$' -bench . -benchmem ./entratoken/

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/claims"
)

// BenchmarkTokenParse is the cost of reading a new token: claims.Parse alone,
// and newToken (parse, user name, expiry checks) as the refresher runs it
// once per rotation.
func BenchmarkTokenParse(b *testing.B) {
	is, err := entraredistest.NewIssuer(entraredistest.IssuerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cred := is.NewCredential(entraredistest.CredentialOptions{})
	o := withDefaults(&entratoken.Options{})
	at, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{entratoken.DefaultScope}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("claims.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := claims.Parse(at.Token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("newToken", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		for b.Loop() {
			if _, err := newToken(&o, azcore.AccessToken{Token: at.Token, ExpiresOn: at.ExpiresOn}, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
