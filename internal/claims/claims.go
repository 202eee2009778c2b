// Package claims decodes the payload of a Microsoft Entra access token.
//
// It reads the claims that a Redis client needs (the object ID to use as the
// username, the expiry) and the ones that help explain a failing setup. It
// never checks the signature: the token comes from the credential the caller
// chose, and the server is the one that verifies it.
package claims

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraredis/entraredis/internal/errs"
)

// ErrMalformed is wrapped by every error that Parse returns.
var ErrMalformed = errors.New(errs.Prefix + "malformed access token")

// Claims are the decoded claims of an access token. Only the claims that
// this project uses are kept; the raw token is not.
type Claims struct {
	ObjectID        string    // oid: the principal's object ID, the Redis username
	TenantID        string    // tid
	Audience        []string  // aud
	Issuer          string    // iss
	AppID           string    // appid (v1 tokens)
	AuthorizedParty string    // azp (v2 tokens)
	IDType          string    // idtyp: "app" or "user" when present
	Version         string    // ver: "1.0" or "2.0"
	Subject         string    // sub
	UPN             string    // upn or preferred_username, when present
	ExpiresAt       time.Time // exp
	NotBefore       time.Time // nbf, zero when absent
	IssuedAt        time.Time // iat, zero when absent
}

// Parse decodes the payload of a JWT without verifying its signature.
//
// A token that is not three dot-separated parts, whose parts are not
// base64url, whose payload is not a JSON object, or that has no numeric
// "exp" claim gives an error wrapping ErrMalformed. The error never contains
// the token. A missing "oid" is not an error here: callers decide.
func Parse(raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if n := strings.Count(raw, "."); n != 2 {
		return Claims{}, fmt.Errorf("%w: a JWT has 3 dot-separated parts, this token has %d", ErrMalformed, n+1)
	}
	var mc jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &mc); err != nil {
		// jwt's messages describe the failing part without echoing the token.
		return Claims{}, fmt.Errorf("%w: %s", ErrMalformed, describe(err))
	}
	var c Claims
	exp, ok, err := numericDate(mc, "exp")
	if err != nil {
		return Claims{}, err
	}
	if !ok {
		return Claims{}, fmt.Errorf("%w: no exp claim", ErrMalformed)
	}
	c.ExpiresAt = exp
	c.NotBefore, _, _ = numericDate(mc, "nbf")
	c.IssuedAt, _, _ = numericDate(mc, "iat")
	if aud, err := mc.GetAudience(); err == nil {
		c.Audience = []string(aud)
	}
	c.ObjectID = str(mc, "oid")
	c.TenantID = str(mc, "tid")
	c.Issuer = str(mc, "iss")
	c.AppID = str(mc, "appid")
	c.AuthorizedParty = str(mc, "azp")
	c.IDType = str(mc, "idtyp")
	c.Version = str(mc, "ver")
	c.Subject = str(mc, "sub")
	c.UPN = str(mc, "upn")
	if c.UPN == "" {
		c.UPN = str(mc, "preferred_username")
	}
	return c, nil
}

// ClientID returns the application (client) ID of the token: appid for v1
// tokens, azp for v2 tokens.
func (c Claims) ClientID() string {
	if c.AppID != "" {
		return c.AppID
	}
	return c.AuthorizedParty
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly
// fractional) to the millisecond. jwt's own getters round to whole seconds.
func numericDate(mc jwt.MapClaims, name string) (time.Time, bool, error) {
	v, ok := mc[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return time.Time{}, false, fmt.Errorf("%w: the %s claim is not a number", ErrMalformed, name)
		}
	default:
		return time.Time{}, false, fmt.Errorf("%w: the %s claim is not a number", ErrMalformed, name)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%w: the %s claim is out of range", ErrMalformed, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC(), true, nil
}

func str(mc jwt.MapClaims, name string) string {
	s, _ := mc[name].(string)
	return s
}

// describe turns a jwt parse error into a short reason. jwt's errors name the
// failing segment; they never include the segment's text.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg := err.Error()
		msg = strings.TrimPrefix(msg, jwt.ErrTokenMalformed.Error()+": ")
		return msg
	default:
		return err.Error()
	}
}
