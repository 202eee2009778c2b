package tokensource

import (
	"errors"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/errs"
)

// ExplainAuth wraps a WRONGPASS or NOPERM reply in an AuthError; other errors
// (and errors already explained) are returned as they are, nil included.
func ExplainAuth(err error, username, scope string) error {
	if err == nil {
		return nil
	}
	var ae *entratoken.AuthError
	if errors.As(err, &ae) {
		return err
	}
	if errs.ReplyHasPrefix(err, "WRONGPASS") || errs.ReplyHasPrefix(err, "NOPERM") {
		return &entratoken.AuthError{Username: username, Scope: scope, Err: err}
	}
	return err
}
