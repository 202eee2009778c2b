package doctor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/internal/claims"
	"github.com/entraredis/entraredis/internal/errs"
)

// RedisAudienceGUID is the application ID of Azure Cache for Redis, accepted
// as a token audience like https://redis.azure.com.
const RedisAudienceGUID = "acca5fbb-b7e4-4009-81f1-37e38fd66d78"

// ExpirySoon is the remaining life under which a token is reported as about to expire.
const ExpirySoon = 5 * time.Minute

// AudienceOK reports whether one of the audiences is Redis:
// https://redis.azure.com (with or without a trailing slash) or its GUID.
func AudienceOK(aud []string) bool {
	for _, a := range aud {
		a = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(a), "/"))
		if a == "https://redis.azure.com" || a == RedisAudienceGUID || a == "api://"+RedisAudienceGUID {
			return true
		}
	}
	return false
}

// Warning is something wrong with a token.
type Warning struct {
	Cause string `json:"cause"`
	Fix   string `json:"fix"`
}

// TokenInfo is what the doctor tells about a token: its claims (never the
// token itself), its remaining life and what looks wrong.
// Fields are named after the claims; Remaining is the life left when described.
type TokenInfo struct {
	ObjectID   string    `json:"oid,omitempty"`
	TenantID   string    `json:"tid,omitempty"`
	Audience   []string  `json:"aud,omitempty"`
	Issuer     string    `json:"iss,omitempty"`
	AppID      string    `json:"appid,omitempty"`
	AZP        string    `json:"azp,omitempty"`
	IDType     string    `json:"idtyp,omitempty"`
	Version    string    `json:"ver,omitempty"`
	UPN        string    `json:"upn,omitempty"`
	IssuedAt   time.Time `json:"iat,omitzero"`
	NotBefore  time.Time `json:"nbf,omitzero"`
	ExpiresAt  time.Time `json:"exp"`
	Remaining  string    `json:"remaining"`
	RemainingS float64   `json:"remaining_seconds"`
	Warnings   []Warning `json:"warnings,omitempty"`
}

// DescribeClaims turns claims into a TokenInfo, with warnings for a missing
// oid, an audience that is not Redis, an expired or nearly expired token and
// a token not yet valid.
func DescribeClaims(c claims.Claims, now time.Time) TokenInfo {
	ti := TokenInfo{
		ObjectID: c.ObjectID, TenantID: c.TenantID, Audience: c.Audience, Issuer: c.Issuer,
		AppID: c.AppID, AZP: c.AuthorizedParty, IDType: c.IDType, Version: c.Version, UPN: c.UPN,
		IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, ExpiresAt: c.ExpiresAt,
	}
	left := c.ExpiresAt.Sub(now)
	ti.RemainingS = left.Seconds()
	ti.Remaining = roundDur(left).String()
	if c.ObjectID == "" {
		ti.Warnings = append(ti.Warnings, Warning{
			Cause: "the token has no oid claim: the Redis username (the principal's object ID) cannot be read from it",
			Fix:   "pass --username with the principal's object ID",
		})
	}
	if !AudienceOK(c.Audience) {
		ti.Warnings = append(ti.Warnings, Warning{
			Cause: fmt.Sprintf("the token's audience is %q, not Redis (https://redis.azure.com or %s): the cache will refuse it", strings.Join(c.Audience, ", "), RedisAudienceGUID),
			Fix:   "request the scope https://redis.azure.com/.default (--scope)",
		})
	}
	switch {
	case left <= 0:
		ti.Warnings = append(ti.Warnings, Warning{
			Cause: fmt.Sprintf("the token expired at %s (%s ago)", c.ExpiresAt.UTC().Format(time.RFC3339), roundDur(-left)),
			Fix:   "the credential handed out an expired token: check this machine's clock, and any token cache in front of the credential",
		})
	case left < ExpirySoon:
		ti.Warnings = append(ti.Warnings, Warning{
			Cause: fmt.Sprintf("the token expires in %s", roundDur(left)),
			Fix:   "fine for one check; a long-running client must re-authenticate its connections before expiry (entraredis does)",
		})
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore) {
		ti.Warnings = append(ti.Warnings, Warning{
			Cause: fmt.Sprintf("the token is not valid before %s: this machine's clock is behind", c.NotBefore.UTC().Format(time.RFC3339)),
			Fix:   "synchronise this machine's clock (NTP)",
		})
	}
	return ti
}

// Summary is a one-line description of the claims.
func (ti TokenInfo) Summary() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	oid := ti.ObjectID
	if oid == "" {
		oid = "(none)"
	}
	add("oid", oid)
	add("tid", ti.TenantID)
	add("aud", strings.Join(ti.Audience, ","))
	add("appid", ti.AppID)
	add("azp", ti.AZP)
	add("idtyp", ti.IDType)
	add("upn", ti.UPN)
	add("ver", ti.Version)
	s := strings.Join(parts, " ")
	return fmt.Sprintf("%s; expires %s (%s)", s, ti.ExpiresAt.UTC().Format(time.RFC3339), remainingText(ti.RemainingS))
}

func remainingText(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	if d <= 0 {
		return "expired " + roundDur(-d).String() + " ago"
	}
	return "in " + roundDur(d).String()
}

// TokenResult is the answer of GetTokenInfo.
type TokenResult struct {
	// Credential names the credential asked; Source the member of a chain that answered.
	Credential string `json:"credential"`
	Source     string `json:"source,omitempty"`
	// Scope is the scope asked for.
	Scope string `json:"scope"`
	// ExpiresOn is the expiry the credential reported.
	ExpiresOn time.Time `json:"expires_on"`
	// Claims are the decoded claims.
	Claims TokenInfo `json:"claims"`
	// Token is set only when GetTokenInfo is asked for the raw token.
	Token string `json:"token,omitempty"`
}

// GetTokenInfo asks cred for a token for scope (default DefaultScope) and
// decodes it. The raw token is kept in the result only when raw is true.
// Errors never contain the token.
func GetTokenInfo(ctx context.Context, cred azcore.TokenCredential, name string, source func() string, scope string, raw bool, now time.Time) (*TokenResult, error) {
	if scope == "" {
		scope = DefaultScope
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		cause, fix := ExplainCredentialError(name, scope, err, ctx.Err() != nil)
		return nil, &CredentialError{Cause: cause, Fix: fix, Err: err}
	}
	c, err := claims.Parse(tok.Token)
	if err != nil {
		return nil, errors.New("decode the token: " + errs.Message(err)) // printed after "entraredis token: "
	}
	res := &TokenResult{Credential: name, Scope: scope, ExpiresOn: tok.ExpiresOn, Claims: DescribeClaims(c, now)}
	if source != nil {
		res.Source = source()
	}
	if raw {
		res.Token = tok.Token
	}
	return res, nil
}

// CredentialError is a failed GetToken, explained.
type CredentialError struct {
	Cause, Fix string // what went wrong and what to do, never the token
	Err        error  // the credential's error
}

func (e *CredentialError) Error() string { return e.Cause }

// Unwrap returns the credential's error.
func (e *CredentialError) Unwrap() error { return e.Err }

// jwtShape matches anything that looks like a JWT (three base64url parts, the
// first two starting with "eyJ", the encoding of `{"`).
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// Redact removes token, and anything shaped like a JWT, from s.
func Redact(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[REDACTED]")
	}
	return jwtShape.ReplaceAllString(s, "[REDACTED]")
}
