package entraredistest

import "time"

// principals are the identities an endpoint knows: its issuer, the principals
// it accepts with their roles, and the default principal's credential. Server
// and Cluster embed it.
type principals struct {
	issuer *Issuer
	cred   *Credential
	dir    *directory
}

// newPrincipals uses issuer (a new one when nil) and creates the default
// principal, RoleOwner, with the given token lifetime and cache window.
func newPrincipals(issuer *Issuer, lifetime, cacheWindow time.Duration) (principals, error) {
	p := principals{issuer: issuer, dir: newDirectory()}
	if p.issuer == nil {
		is, err := NewIssuer(IssuerOptions{})
		if err != nil {
			return principals{}, err
		}
		p.issuer = is
	}
	p.cred = p.NewCredential(CredentialOptions{Role: RoleOwner, Lifetime: lifetime, CacheWindow: cacheWindow})
	return p, nil
}

// Issuer returns the issuer whose tokens the endpoints accept.
func (p *principals) Issuer() *Issuer { return p.issuer }

// Credential returns the default principal's credential (RoleOwner, tokens
// of the options' TokenLifetime and CacheWindow).
func (p *principals) Credential() *Credential { return p.cred }

// NewCredential creates a new principal known to the endpoints (with
// opts.Role, default RoleOwner) and returns its credential.
func (p *principals) NewCredential(opts CredentialOptions) *Credential {
	c := newCredential(p.issuer, opts)
	p.dir.set(c.ObjectID(), c.Role())
	return c
}

// Allow gives a principal (object ID) a role on the endpoints, for tokens
// minted with Issuer.Mint. An empty role is RoleOwner.
func (p *principals) Allow(objectID string, role Role) {
	if role == "" {
		role = RoleOwner
	}
	p.dir.set(objectID, role)
}

// Revoke removes a principal's access policy, as an administrator would in
// the Azure portal: from now on its AUTHs (new connections and re-AUTHs of
// live ones) are refused with WRONGPASS; connections already authenticated
// keep working until their token expires. Allow gives it back.
func (p *principals) Revoke(objectID string) { p.dir.remove(objectID) }

func (d *directory) remove(oid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.roles, oid)
}
