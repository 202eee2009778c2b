// Package entraredistest is an Azure-like Redis endpoint with Microsoft
// Entra ID authentication, for tests, demos and benchmarks.
//
// A Server is a RESP2/RESP3 proxy (TLS by default, with a throwaway CA and a
// certificate naming only "localhost") in front of a backend Redis: a real
// redis-server started on a free loopback port with one ACL user per Role,
// or, when redis-server is absent, an in-process miniredis that does not
// emulate everything (see Server.Limitations; EnvRequireRedisServer=1 turns
// the fallback into a failure).
//
// The endpoint behaves like Azure Cache for Redis / Azure Managed Redis
// with Entra authentication:
//
//   - `AUTH <oid> <token>` and `HELLO <2|3> AUTH <oid> <token> [SETNAME n]`
//     are checked: the token must be signed by the server's Issuer, not
//     expired, not before its nbf, with the Redis audience, the username
//     must be its oid claim and the principal must be known to the server
//     (Server.Credential, Server.NewCredential, Server.Allow). A refusal
//     answers exactly as Redis does,
//     "-WRONGPASS invalid username-password pair or user is disabled.", in
//     its place in a pipeline.
//   - Commands before a valid AUTH get "-NOAUTH Authentication required.".
//   - A connection is closed when the token it last authenticated with
//     expires (plus Options.Grace), whatever it is doing (subscribed,
//     blocked in BLPOP). A valid re-AUTH on the connection moves that
//     deadline; a refused one changes nothing.
//   - Roles: RoleOwner (all commands), RoleContributor (no @admin or
//     @dangerous), RoleReader (read-only): NOPERM comes from Redis' ACL.
//   - `ACL WHOAMI` answers the object ID.
//   - Faults: Server.DropConnections, Server.RefuseConnections,
//     Server.RestartBackend; the Credential injects token-service failures
//     and delays (FailNext, FailFor, SetDelay).
//   - Maintenance: Server.PublishMaintenance publishes Azure Cache for
//     Redis maintenance notifications (package azevents) on
//     AzureRedisEvents; Server.Failover closes every connection as a
//     failover does, refuses new ones for a while, then publishes
//     NodeMaintenanceFailoverComplete once the subscribers are back.
//
// Tokens are ES256 JWTs minted at run time by an Issuer (no fixture ever
// expires). A Credential is an azcore.TokenCredential, so the code under
// test uses it as it would use azidentity's credentials. Its clock is
// time.Now, which makes it usable inside testing/synctest bubbles.
//
// A client must connect to Server.Addr() ("localhost:PORT") with
// Server.TLSConfig() and use the credential's ObjectID as its username.
package entraredistest
