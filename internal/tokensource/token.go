package tokensource

import (
	"fmt"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/claims"
)

// Token is one access token and the Redis user name that goes with it. Its
// String, GoString and Format never show the secret; only Password does. The
// zero Token holds nothing (IsZero).
type Token struct{ t *token }

// token is what the library derived from one access token. It never changes
// once built.
type token struct {
	username, password string
	expiresOn          time.Time
	refreshOn          time.Time // zero when the credential gave none
	received           time.Time
	refreshAt          time.Time // when the refresher starts asking for the next one
	generation         uint64    // 1 for the first token, +1 per installed token
	tm                 timing    // the configured durations, capped by this token's life
}

// Username returns the Redis user name: Options.Username, or the token's oid claim.
func (t Token) Username() string {
	if t.t == nil {
		return ""
	}
	return t.t.username
}

// Password returns the access token itself: a bearer secret, never log it.
func (t Token) Password() string {
	if t.t == nil {
		return ""
	}
	return t.t.password
}

// ExpiresOn returns when the token expires: the earlier of its exp claim and
// the credential's ExpiresOn.
func (t Token) ExpiresOn() time.Time {
	if t.t == nil {
		return time.Time{}
	}
	return t.t.expiresOn
}

// Generation returns 1 for a Source's first token, and one more for each
// token installed after it.
func (t Token) Generation() uint64 {
	if t.t == nil {
		return 0
	}
	return t.t.generation
}

// ReauthSpread returns the window over which this token is handed to live
// connections: Options.ReauthSpread capped by the token's life (at most a
// quarter of the refresh margin), the rule of the Source's own hand-out. A
// client layer that paces connections itself (rueidisentra) uses it.
func (t Token) ReauthSpread() time.Duration {
	if t.t == nil {
		return 0
	}
	return t.t.tm.spread
}

// IsZero reports whether t holds no token.
func (t Token) IsZero() bool { return t.t == nil }

// String describes the token without the secret.
func (t Token) String() string {
	if t.t == nil {
		return "entratoken.Token{}"
	}
	return fmt.Sprintf("entratoken.Token{user: %s, token: [redacted], expires: %s, generation: %d}",
		t.t.username, t.t.expiresOn.Format(time.RFC3339), t.t.generation)
}

// GoString describes the token without the secret.
func (t Token) GoString() string { return t.String() }

// Format describes the token without the secret, whatever the verb.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// Format describes the token without the secret, whatever the verb.
func (t token) Format(f fmt.State, _ rune) { io.WriteString(f, Token{&t}.String()) }

// state is t's state at now, on a Source that is closed or not.
func (t *token) state(closed bool, now time.Time) entratoken.TokenState {
	st := entratoken.Status{Closed: closed}
	if t != nil {
		st.LastRefresh, st.ExpiresOn, st.NextRefresh = t.received, t.expiresOn, t.refreshAt
	}
	return st.StateAt(now)
}

// newToken reads the user name and expiry of an access token received at
// now. Its errors are TokenErrors that never contain the token.
func newToken(o *entratoken.Options, at azcore.AccessToken, now time.Time) (*token, error) {
	cl, err := claims.Parse(at.Token)
	if err != nil {
		return nil, &entratoken.TokenError{Scope: o.Scope, Err: err}
	}
	user := o.Username
	if user == "" {
		user = cl.ObjectID
	}
	if user == "" {
		return nil, &entratoken.TokenError{Scope: o.Scope, Err: entratoken.ErrNoObjectID}
	}
	exp := cl.ExpiresAt // the server enforces the claim; trust the earlier of the two
	if !at.ExpiresOn.IsZero() && at.ExpiresOn.Before(exp) {
		exp = at.ExpiresOn
	}
	if !exp.After(now) {
		return nil, &entratoken.TokenError{Scope: o.Scope, Err: expiredError{exp}}
	}
	return &token{
		username:  user,
		password:  at.Token,
		expiresOn: exp,
		refreshOn: at.RefreshOn,
		received:  now,
		tm:        timingFor(o, exp.Sub(now)),
	}, nil
}

// expiredError is a token the credential returned already expired.
type expiredError struct{ at time.Time }

func (e expiredError) Error() string {
	return "the credential returned a token that expired at " + e.at.Format(time.RFC3339)
}

// Hint is TokenError's Hint for an expired token.
func (expiredError) Hint() string {
	return "the credential handed out a token it should have renewed, usually from a stale token cache or because this host's clock is wrong: check the clock (NTP) and the credential's cache; the refresher keeps asking"
}
