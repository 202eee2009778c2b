package entratoken

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestTokenErrorHint(t *testing.T) {
	cases := []struct {
		err  error
		hint string
	}{
		{context.DeadlineExceeded, "timed out"},
		{ErrNoObjectID, "Options.Username"},
		{fmt.Errorf("%w: no exp claim", ErrMalformedToken), "not return a Microsoft Entra access token"},
		{errors.New("AADSTS500011: The resource principal named x was not found"), DefaultScope},
		{errors.New("DefaultAzureCredential: failed to acquire a token: no credential available"), "not available in this environment"},
		{errors.New("something else"), ""},
		{hinted{}, "its own hint"},
	}
	for _, tc := range cases {
		e := &TokenError{Scope: "s", Err: tc.err}
		h := e.Hint()
		if (tc.hint == "") != (h == "") || !strings.Contains(h, tc.hint) {
			t.Errorf("Hint() of %v = %q, want it to mention %q", tc.err, h, tc.hint)
		}
		want := `entraredis: getting a token for scope "s": ` + strings.TrimPrefix(tc.err.Error(), "entraredis: ")
		if h != "" {
			want += " (" + h + ")"
		}
		if e.Error() != want {
			t.Errorf("Error() = %q, want %q", e.Error(), want)
		}
	}
}

// hinted is an error of the library that knows its own Hint (as the
// refresher's errors for a panic or an expired token do).
type hinted struct{}

func (hinted) Error() string { return "a known cause" }
func (hinted) Hint() string  { return "its own hint" }

func TestFailureKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want FailureKind
	}{
		{&TokenError{Err: context.DeadlineExceeded}, FailureTimeout},
		{fmt.Errorf("x: %w", context.Canceled), FailureCanceled},
		{&TokenError{Err: ErrNoObjectID}, FailureNoObjectID},
		{fmt.Errorf("%w: no exp", ErrMalformedToken), FailureMalformedToken},
		{errors.New("AADSTS500011: resource principal not found"), FailureInvalidScope},
		{errors.New("ManagedIdentityCredential: no credential available"), FailureUnavailable},
		// azidentity's unavailable credential, whatever its text says.
		{fmt.Errorf("getting a token: %w", azidentity.NewCredentialUnavailableError("AzureCLICredential: executable not found on path")), FailureUnavailable},
		{errors.New("boom"), FailureOther},
		{nil, FailureOther},
	} {
		if got := FailureKindOf(tc.err); got != tc.want {
			t.Errorf("FailureKindOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	// The Hint follows the same classification.
	if h := (&TokenError{Err: context.DeadlineExceeded}).Hint(); h == "" || (&TokenError{Err: errors.New("boom")}).Hint() != "" {
		t.Errorf("Hint: %q", h)
	}
}
