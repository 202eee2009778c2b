package entratoken

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraredis/entraredis/internal/tokenspy"
)

// TestRefusedHintByCredential: a refusal by Microsoft Entra ID is explained
// for the kind of credential that met it, with azidentity's own errors (real
// credentials, a fake transport), not a client secret's advice for a managed
// identity.
func TestRefusedHintByCredential(t *testing.T) {
	opts := azcore.ClientOptions{Transport: tokenspy.EntraRefusal{Status: http.StatusBadRequest, Body: `{"error":"invalid_request","error_description":"Identity not found"}`},
		Retry: policy.RetryOptions{MaxRetries: -1}}
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID("00000000-0000-0000-0000-000000000001"), ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	secretOpts := opts
	secretOpts.Transport = tokenspy.EntraRefusal{Status: http.StatusUnauthorized, Body: `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`}
	secret, err := azidentity.NewClientSecretCredential("tenant", "00000000-0000-0000-0000-000000000002", "not-the-secret",
		&azidentity.ClientSecretCredentialOptions{ClientOptions: secretOpts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cred azcore.TokenCredential
		want string
	}{
		{"user-assigned managed identity", mi, "managed identity is assigned to this resource"},
		{"client secret", secret, "client ID, tenant and secret"},
	} {
		_, err := tc.cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{DefaultScope}})
		if err == nil {
			t.Fatalf("%s: the fake refusal was accepted", tc.name)
		}
		if k := FailureKindOf(err); k != FailureRefused {
			t.Fatalf("%s: %v is %q, want %q", tc.name, err, k, FailureRefused)
		}
		if h := (&TokenError{Scope: DefaultScope, Err: err}).Hint(); !strings.Contains(h, tc.want) {
			t.Errorf("%s: Hint() = %q, want it to mention %q", tc.name, h, tc.want)
		}
	}
	// The credentials whose refusal needs a token file or a CLI: by the
	// message azidentity gives them ("<credential type> authentication failed").
	for msg, want := range map[string]string{
		"WorkloadIdentityCredential authentication failed. AADSTS70021: No matching federated identity record found":      "federated identity credential",
		"AzureCLICredential: ERROR: AADSTS50173: The provided grant has expired":                                          "az login",
		"ClientCertificateCredential authentication failed. AADSTS700027: Client assertion contains an invalid signature": "secret or certificate",
	} {
		if h := credentialHint(FailureRefused, msg); !strings.Contains(h, want) {
			t.Errorf("credentialHint(FailureRefused, %q) = %q, want it to mention %q", msg, h, want)
		}
	}
}
