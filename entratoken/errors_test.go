package entratoken

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
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
