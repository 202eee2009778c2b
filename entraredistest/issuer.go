package entraredistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraredis/entraredis/internal/claims"
	"github.com/entraredis/entraredis/internal/errs"
)

// DefaultAudience is the audience of the tokens an Issuer mints by default,
// the resource of Azure Cache for Redis and Azure Managed Redis.
const DefaultAudience = "https://redis.azure.com"

// legacyRedisAppID is the application ID of the Redis resource (the older
// scope "acca5fbb-.../.default"); tokens may carry it as their audience.
const legacyRedisAppID = "acca5fbb-b7e4-4009-81f1-37e38fd66d78"

// ErrInvalidToken is wrapped by every error of Issuer.Verify.
var ErrInvalidToken = errors.New("entraredistest: invalid token")

// IssuerOptions configures NewIssuer.
type IssuerOptions struct {
	// TenantID is the tid claim and part of the iss claim. Default: a random UUID.
	TenantID string
	// Audience is the aud claim of minted tokens. Default DefaultAudience.
	// Verify accepts this audience and, when it is the default, its
	// variants with a trailing slash and the legacy Redis application ID.
	Audience string
}

// Issuer mints and verifies Entra-like access tokens: JWTs signed with its
// own ECDSA P-256 key (ES256). Tokens of one Issuer do not verify with
// another. An Issuer is safe for concurrent use.
type Issuer struct {
	key      *ecdsa.PrivateKey
	tenantID string
	audience string
	kid      string
}

// NewIssuer creates an issuer with a fresh signing key.
func NewIssuer(opts IssuerOptions) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("entraredistest: generating the signing key: %w", err)
	}
	if opts.TenantID == "" {
		opts.TenantID = newUUID()
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	return &Issuer{key: key, tenantID: opts.TenantID, audience: opts.Audience, kid: newUUID()[:8]}, nil
}

// TenantID returns the tenant ID (tid) of the issuer's tokens.
func (is *Issuer) TenantID() string { return is.tenantID }

// Audience returns the audience (aud) of the issuer's tokens.
func (is *Issuer) Audience() string { return is.audience }

// IssuerURL returns the iss claim of the issuer's version 2.0 tokens,
// "https://login.microsoftonline.com/<tenant>/v2.0".
func (is *Issuer) IssuerURL() string {
	return "https://login.microsoftonline.com/" + is.tenantID + "/v2.0"
}

// TokenSpec describes a token for Issuer.Mint. Zero fields take defaults,
// so TokenSpec{} is a valid token for a random principal, valid for one hour.
type TokenSpec struct {
	ObjectID  string    // oid; default: a random UUID
	TenantID  string    // tid; default: the issuer's
	Audience  string    // aud; default: the issuer's
	AppID     string    // azp; default: a random UUID
	IDType    string    // idtyp; default "app"
	Version   string    // ver; default "2.0" (iss is then the v2.0 URL, else the v1.0 "https://sts.windows.net/<tid>/")
	IssuedAt  time.Time // iat; default: now
	NotBefore time.Time // nbf; default: IssuedAt
	ExpiresAt time.Time // exp; default: IssuedAt + 1h
	// Claims are set last: they add claims or override the ones above; a
	// nil value removes a claim (say "oid").
	Claims map[string]any
}

// Mint signs a token described by spec. Times are encoded as whole seconds
// when they are whole seconds, else with millisecond precision (a fractional
// NumericDate, which JWT parsers accept), so that short test lifetimes are
// exact.
func (is *Issuer) Mint(spec TokenSpec) (string, error) {
	now := time.Now()
	if spec.ObjectID == "" {
		spec.ObjectID = newUUID()
	}
	if spec.TenantID == "" {
		spec.TenantID = is.tenantID
	}
	if spec.Audience == "" {
		spec.Audience = is.audience
	}
	if spec.AppID == "" {
		spec.AppID = newUUID()
	}
	if spec.IDType == "" {
		spec.IDType = "app"
	}
	if spec.Version == "" {
		spec.Version = "2.0"
	}
	if spec.IssuedAt.IsZero() {
		spec.IssuedAt = now
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = spec.IssuedAt
	}
	if spec.ExpiresAt.IsZero() {
		spec.ExpiresAt = spec.IssuedAt.Add(time.Hour)
	}
	iss := "https://login.microsoftonline.com/" + spec.TenantID + "/v2.0"
	if spec.Version != "2.0" {
		iss = "https://sts.windows.net/" + spec.TenantID + "/"
	}
	mc := jwt.MapClaims{
		"aud":   spec.Audience,
		"iss":   iss,
		"iat":   numericDate(spec.IssuedAt),
		"nbf":   numericDate(spec.NotBefore),
		"exp":   numericDate(spec.ExpiresAt),
		"oid":   spec.ObjectID,
		"sub":   spec.ObjectID,
		"tid":   spec.TenantID,
		"azp":   spec.AppID,
		"idtyp": spec.IDType,
		"ver":   spec.Version,
	}
	if spec.Version != "2.0" {
		delete(mc, "azp")
		mc["appid"] = spec.AppID
	}
	for k, v := range spec.Claims {
		if v == nil {
			delete(mc, k)
			continue
		}
		if t, ok := v.(time.Time); ok {
			v = numericDate(t)
		}
		mc[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, mc)
	tok.Header["kid"] = is.kid
	s, err := tok.SignedString(is.key)
	if err != nil {
		return "", fmt.Errorf("entraredistest: signing a token: %w", err)
	}
	return s, nil
}

// numericDate encodes t as JWT NumericDate: an integer when t is a whole
// second, else seconds with millisecond precision.
func numericDate(t time.Time) any {
	if t.Nanosecond() == 0 {
		return t.Unix()
	}
	return float64(t.UnixMilli()) / 1000
}

// Claims are the decoded claims of a token, as Verify returns them: oid,
// tid, aud, iss, appid/azp, idtyp, ver, exp, nbf, iat.
type Claims = claims.Claims

// Verify checks a token as the emulated Redis does: an ES256 signature by
// this issuer, now before exp, nbf not after now, an oid claim, and an
// audience this issuer accepts. Errors wrap ErrInvalidToken and never
// contain the token.
func (is *Issuer) Verify(token string, now time.Time) (Claims, error) {
	var mc jwt.MapClaims
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithoutClaimsValidation(),
	).ParseWithClaims(token, &mc, func(*jwt.Token) (any, error) { return &is.key.PublicKey, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return claims.Claims{}, fmt.Errorf("%w: signature not valid (not signed by this issuer)", ErrInvalidToken)
		}
		return claims.Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := claims.Parse(token)
	if err != nil {
		return claims.Claims{}, fmt.Errorf("%w: %s", ErrInvalidToken, errs.Message(err))
	}
	// claims.Parse (via jwt) truncates times to whole seconds; the emulator
	// needs the exact (millisecond) times it minted.
	exactTime(mc, "exp", &c.ExpiresAt)
	exactTime(mc, "nbf", &c.NotBefore)
	exactTime(mc, "iat", &c.IssuedAt)
	switch {
	case !now.Before(c.ExpiresAt):
		return c, fmt.Errorf("%w: expired at %s (now %s)", ErrInvalidToken, c.ExpiresAt.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore):
		return c, fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalidToken, c.NotBefore.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	case c.ObjectID == "":
		return c, fmt.Errorf("%w: no oid claim", ErrInvalidToken)
	case !is.audienceOK(c.Audience):
		return c, fmt.Errorf("%w: audience %q is not %q", ErrInvalidToken, c.Audience, is.audience)
	}
	return c, nil
}

// exactTime replaces *t by the NumericDate claim name of mc, with
// sub-second precision, when it is a number.
func exactTime(mc jwt.MapClaims, name string, t *time.Time) {
	f, ok := mc[name].(float64)
	if !ok {
		return
	}
	sec, frac := math.Modf(f)
	*t = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}

func (is *Issuer) audienceOK(auds []string) bool {
	for _, a := range auds {
		if a == is.audience {
			return true
		}
		if is.audience == DefaultAudience && (a == DefaultAudience+"/" || a == legacyRedisAppID) {
			return true
		}
	}
	return false
}

// NewCredential returns a credential for a new principal whose tokens this
// issuer signs. A Server accepts the principal only once it knows it: use
// Server.NewCredential (or Server.Allow) for principals of a Server.
func (is *Issuer) NewCredential(opts CredentialOptions) *Credential {
	return newCredential(is, opts)
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
