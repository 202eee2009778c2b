// Package doctor diagnoses a connection to Azure Cache for Redis or Azure
// Managed Redis with Microsoft Entra ID: it walks the chain credential →
// token → DNS → TCP → TLS → AUTH → commands step by step and, for each step
// that fails, says why and how to fix it.
//
// It is the logic behind the entraredis command (cmd/entraredis). Nothing
// here ever prints, logs or returns the access token: every text the report
// carries is scrubbed of it before it leaves Run.
package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/internal/claims"
	"github.com/entraredis/entraredis/internal/errs"
	"github.com/entraredis/entraredis/internal/resp"
)

// DefaultScope is the scope the doctor asks the credential for when
// Config.Scope is empty.
const DefaultScope = "https://redis.azure.com/.default"

// DefaultTimeout bounds each step when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Well-known ports.
const (
	PortCache     = 6380  // Azure Cache for Redis, TLS
	PortManaged   = 10000 // Azure Managed Redis, TLS
	PortPlaintext = 6379  // the non-TLS port, disabled by Azure by default
)

// Step names, in the order Run reports them.
const (
	StepCredential = "credential"
	StepToken      = "token"
	StepDNS        = "dns"
	StepTCP        = "tcp"
	StepTLS        = "tls"
	StepAuth       = "auth"
	StepPing       = "ping"
	StepWhoami     = "acl-whoami"
	StepRead       = "read"
	StepWrite      = "write"
	StepCluster    = "cluster"
)

// Status is the outcome of one step.
type Status string

// The statuses of a step.
const (
	StatusOK      Status = "ok"
	StatusWarn    Status = "warn"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Config is what the doctor checks. Only Host and Credential are required.
type Config struct {
	// Host is the cache's host name, e.g. "mycache.redis.cache.windows.net".
	Host string
	// Port defaults to 10000 for a host ending in ".redis.azure.net" (Azure
	// Managed Redis) and to 6380 (Azure Cache for Redis) otherwise.
	Port int
	// Username to AUTH with. Default: the token's oid claim.
	Username string
	// Scope requested from the credential. Default DefaultScope.
	Scope string
	// Credential gives the access token. Required.
	Credential azcore.TokenCredential
	// CredentialName describes the credential in the report, e.g.
	// "DefaultAzureCredential". Default: its Go type.
	CredentialName string
	// CredentialSource, when set, is called after a successful GetToken and
	// names the credential of a chain that produced the token (empty when
	// unknown).
	CredentialSource func() string
	// Write also checks a write: SET of a throwaway key with a 60 s expiry,
	// then DEL. Default false: the doctor only reads.
	Write bool
	// Timeout bounds each step. Default DefaultTimeout.
	Timeout time.Duration
	// RootCAs verifies the server certificate. Default nil: the system roots.
	RootCAs *x509.CertPool
	// CertWarnBefore is the remaining certificate life under which the TLS
	// step warns. Default 7 days.
	CertWarnBefore time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Step is the result of one check.
type Step struct {
	// Name is one of the Step* constants.
	Name string `json:"name"`
	// Status is ok, warn, failed or skipped.
	Status Status `json:"status"`
	// Duration is how long the step took (zero when skipped).
	Duration time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Detail says what was found (also on success).
	Detail string `json:"detail,omitempty"`
	// Cause explains a failure or a warning.
	Cause string `json:"cause,omitempty"`
	// Fix says what to do about it.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of Run.
type Report struct {
	// Host and Port are the endpoint checked.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Username is the username sent with AUTH (empty when AUTH was not tried).
	Username string `json:"username,omitempty"`
	// OK is true when no step failed (warnings allowed).
	OK bool `json:"ok"`
	// Client is the entraredis constructor to use, when the cluster step could tell.
	Client string `json:"client,omitempty"`
	// Steps are the checks, in order.
	Steps []Step `json:"steps"`
}

// Step returns the step with the given name and whether it exists.
func (r *Report) Step(name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// run carries the state shared by the steps of one Run.
type run struct {
	cfg      Config
	timeout  time.Duration
	now      func() time.Time
	port     int
	rep      *Report
	token    string // never leaves this package's memory: scrubbed from every text
	claims   *claims.Claims
	username string
	tlsConn  *tls.Conn
	resp     *respConn
	ipHost   bool
	readOK   bool
}

// Run walks the chain and returns the report. It never returns the token.
// A step whose prerequisite failed is reported as skipped. Run honours ctx
// and bounds every step with Config.Timeout.
func Run(ctx context.Context, cfg Config) *Report {
	r := &run{cfg: cfg, timeout: cfg.Timeout, now: cfg.Now}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.cfg.Scope == "" {
		r.cfg.Scope = DefaultScope
	}
	r.cfg.Host = strings.TrimSpace(r.cfg.Host)
	r.port = cfg.Port
	if r.port == 0 {
		r.port = DefaultPort(r.cfg.Host)
	}
	r.rep = &Report{Host: r.cfg.Host, Port: r.port}
	defer func() {
		if r.resp != nil {
			_ = r.resp.Close()
		}
	}()

	credOK := r.step(ctx, StepCredential, nil, r.checkCredential)
	tokenOK := r.step(ctx, StepToken, dep(credOK, StepCredential), r.checkToken)
	dnsOK := r.step(ctx, StepDNS, nil, r.checkDNS)
	tcpOK := r.step(ctx, StepTCP, dep(dnsOK, StepDNS), r.checkTCP)
	tlsOK := r.step(ctx, StepTLS, dep(tcpOK, StepTCP), r.checkTLS)
	authDeps := dep(tokenOK, StepToken)
	if authDeps == nil {
		authDeps = dep(tlsOK, StepTLS)
	}
	authOK := r.step(ctx, StepAuth, authDeps, r.checkAuth)
	after := dep(authOK, StepAuth)
	pingOK := r.step(ctx, StepPing, after, r.checkPing)
	if after == nil {
		after = dep(pingOK, StepPing)
	}
	r.step(ctx, StepWhoami, after, r.checkWhoami)
	r.step(ctx, StepRead, after, r.checkRead)
	if !r.cfg.Write {
		r.add(Step{Name: StepWrite, Status: StatusSkipped, Detail: "not checked: pass --write to check a write (SET of a throwaway key with a 60 s expiry, then DEL)"})
	} else {
		// A read refused for permissions does not stop the write check.
		r.step(ctx, StepWrite, after, r.checkWrite)
	}
	r.step(ctx, StepCluster, after, r.checkCluster)

	r.rep.Username = r.username
	r.rep.OK = true
	for _, s := range r.rep.Steps {
		if s.Status == StatusFailed {
			r.rep.OK = false
		}
	}
	r.scrub()
	return r.rep
}

// DefaultPort returns the TLS port for host: 10000 for Azure Managed Redis
// (*.redis.azure.net), 6380 otherwise.
func DefaultPort(host string) int {
	if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".redis.azure.net") {
		return PortManaged
	}
	return PortCache
}

// dep returns nil when ok, else the reason a dependent step is skipped.
func dep(ok bool, name string) *string {
	if ok {
		return nil
	}
	s := "skipped: the " + name + " step did not pass"
	return &s
}

// stepFunc fills in s (Status defaults to ok when left empty).
type stepFunc func(ctx context.Context, s *Step)

func (r *run) add(s Step) { r.rep.Steps = append(r.rep.Steps, s) }

// step runs fn unless skip is set; it reports whether the step did not fail.
func (r *run) step(ctx context.Context, name string, skip *string, fn stepFunc) bool {
	if skip != nil {
		r.add(Step{Name: name, Status: StatusSkipped, Detail: *skip})
		return false
	}
	if err := ctx.Err(); err != nil {
		r.add(Step{Name: name, Status: StatusSkipped, Detail: "skipped: " + err.Error()})
		return false
	}
	sctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	s := Step{Name: name}
	start := time.Now()
	fn(sctx, &s)
	s.Duration = time.Since(start)
	s.DurationMS = float64(s.Duration.Microseconds()) / 1000
	if s.Status == "" {
		s.Status = StatusOK
	}
	r.add(s)
	return s.Status != StatusFailed
}

// scrub removes the token (and anything shaped like a JWT) from every text of the report.
func (r *run) scrub() {
	for i := range r.rep.Steps {
		s := &r.rep.Steps[i]
		s.Detail = Redact(s.Detail, r.token)
		s.Cause = Redact(s.Cause, r.token)
		s.Fix = Redact(s.Fix, r.token)
	}
}

// ---- credential and token ----

func (r *run) checkCredential(ctx context.Context, s *Step) {
	name := r.cfg.CredentialName
	if r.cfg.Credential == nil {
		s.Status, s.Cause, s.Fix = StatusFailed, "no credential configured", "pass --credential"
		return
	}
	if name == "" {
		name = strings.TrimPrefix(fmt.Sprintf("%T", r.cfg.Credential), "*")
	}
	s.Detail = fmt.Sprintf("asked %s for a token for scope %s", name, r.cfg.Scope)
	tok, err := r.cfg.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{r.cfg.Scope}})
	if err != nil {
		s.Status = StatusFailed
		s.Cause, s.Fix = ExplainCredentialError(name, r.cfg.Scope, err, ctx.Err() != nil)
		return
	}
	if tok.Token == "" {
		s.Status, s.Cause, s.Fix = StatusFailed, name+" returned an empty token", "report this credential's behaviour; nothing to send as the password"
		return
	}
	r.token = tok.Token
	src := ""
	if r.cfg.CredentialSource != nil {
		src = r.cfg.CredentialSource()
	}
	if src != "" && src != name {
		s.Detail = fmt.Sprintf("%s produced a token for scope %s (the chain's %s answered)", name, r.cfg.Scope, src)
	} else {
		s.Detail = fmt.Sprintf("%s produced a token for scope %s", name, r.cfg.Scope)
	}
	if !tok.ExpiresOn.IsZero() {
		s.Detail += fmt.Sprintf("; ExpiresOn %s", tok.ExpiresOn.UTC().Format(time.RFC3339))
	}
	if src != "" && name == "DefaultAzureCredential" {
		s.Detail += "; the chain tries, in order: environment, workload identity, managed identity, Azure CLI, azd, Azure PowerShell, and keeps the first that answers"
	}
}

func (r *run) checkToken(_ context.Context, s *Step) {
	c, err := claims.Parse(r.token)
	if err != nil {
		s.Status = StatusFailed
		s.Cause = "the credential's token is not a JWT the doctor can read: " + errs.Message(err)
		s.Fix = "use a Microsoft Entra credential (azidentity); Redis needs an Entra access token as the password"
		return
	}
	r.claims = &c
	info := DescribeClaims(c, r.now())
	s.Detail = info.Summary()
	var causes, fixes []string
	for _, w := range info.Warnings {
		causes = append(causes, w.Cause)
		fixes = append(fixes, w.Fix)
	}
	r.username = r.cfg.Username
	if r.username == "" {
		r.username = c.ObjectID
	}
	if c.ObjectID != "" && r.cfg.Username != "" && r.cfg.Username != c.ObjectID {
		causes = append(causes, fmt.Sprintf("--username %q is not the token's oid %s: Azure expects the object ID of the principal the token was issued to", r.cfg.Username, c.ObjectID))
		fixes = append(fixes, "drop --username (the oid is used), unless you know the cache expects this name")
	}
	if len(causes) > 0 {
		s.Status = StatusWarn
		s.Cause = strings.Join(causes, "; ")
		s.Fix = strings.Join(dedup(fixes), "; ")
	}
}

// ---- network ----

func (r *run) checkDNS(ctx context.Context, s *Step) {
	host := r.cfg.Host
	if host == "" {
		s.Status, s.Cause, s.Fix = StatusFailed, "no host given", "pass --host NAME, e.g. mycache.redis.cache.windows.net or mycache.westeurope.redis.azure.net"
		return
	}
	if ip := net.ParseIP(host); ip != nil {
		r.ipHost = true
		s.Status = StatusWarn
		s.Detail = host + " is an IP address: no DNS lookup"
		s.Cause = "Azure's server certificates name the cache's host name, never an IP address, so TLS verification against an IP fails"
		s.Fix = "pass the host name (mycache.redis.cache.windows.net, mycache.<region>.redis.azure.net); with a private endpoint, the same name resolves to the private IP"
		return
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		s.Status = StatusFailed
		s.Cause = "the host name does not resolve: " + err.Error()
		s.Fix = "check the cache's name and suffix (.redis.cache.windows.net for Azure Cache for Redis, .<region>.redis.azure.net for Azure Managed Redis); with a private endpoint, the private DNS zone (privatelink.redis.cache.windows.net / privatelink.redis.azure.net) must be linked to this network"
		if ctx.Err() != nil {
			s.Cause = fmt.Sprintf("DNS lookup of %s did not answer within %s", host, r.timeout)
		}
		return
	}
	var ips []string
	private := false
	for _, a := range addrs {
		ips = append(ips, a.IP.String())
		if a.IP.IsPrivate() {
			private = true
		}
	}
	s.Detail = fmt.Sprintf("%s → %s", host, strings.Join(ips, ", "))
	if private {
		s.Detail += " (private address: a private endpoint or VNet)"
	}
}

func (r *run) addr() string { return net.JoinHostPort(r.cfg.Host, strconv.Itoa(r.port)) }

func (r *run) checkTCP(ctx context.Context, s *Step) {
	d := net.Dialer{Timeout: r.timeout}
	conn, err := d.DialContext(ctx, "tcp", r.addr())
	if err != nil {
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainDialError(err, ctx)
		return
	}
	s.Detail = fmt.Sprintf("connected to %s (%s)", r.addr(), conn.RemoteAddr())
	// The TLS step takes over the connection.
	r.tlsConn = tls.Client(conn, r.tlsConfig())
	if w := portWarning(r.cfg.Host, r.port); w != "" {
		s.Status = StatusWarn
		s.Cause = w
		s.Fix = fmt.Sprintf("use port %d (Azure Cache for Redis) or %d (Azure Managed Redis), both TLS", PortCache, PortManaged)
	}
}

// portWarning returns why the port looks wrong for host, or "".
func portWarning(host string, port int) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case port == PortPlaintext:
		return "6379 is Redis' plaintext port, which Azure disables (and Microsoft Entra authentication requires TLS)"
	case strings.HasSuffix(h, ".redis.azure.net") && port != PortManaged:
		return fmt.Sprintf("Azure Managed Redis listens on %d (TLS); port %d is unusual for it", PortManaged, port)
	case strings.HasSuffix(h, ".redis.cache.windows.net") && port != PortCache:
		return fmt.Sprintf("Azure Cache for Redis listens on %d (TLS); port %d is unusual for it (only shard ports 1300x/1500x of a clustered cache)", PortCache, port)
	}
	return ""
}

func (r *run) explainDialError(err error, ctx context.Context) (cause, fix string) {
	var ne net.Error
	switch {
	case isRefused(err):
		cause = fmt.Sprintf("connection refused: nothing listens on %s", r.addr())
		fix = fmt.Sprintf("check the port (%d for Azure Cache for Redis, %d for Azure Managed Redis; %d, the plaintext port, is disabled on Azure)", PortCache, PortManaged, PortPlaintext)
		if r.port == PortPlaintext {
			cause += " — 6379 is the plaintext port that Azure disables"
		}
	case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		cause = fmt.Sprintf("no answer from %s within %s (packets dropped)", r.addr(), r.timeout)
		fix = "a firewall rule, public network access disabled on the cache (use its private endpoint from a connected network), or an outbound rule on this network blocks the port; check the cache's Networking settings"
	default:
		cause = "TCP connect failed: " + err.Error()
		fix = "check the host, the port and this machine's network route to the cache"
	}
	return cause, fix
}

func (r *run) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: r.cfg.Host,
		RootCAs:    r.cfg.RootCAs,
	}
}

func (r *run) checkTLS(ctx context.Context, s *Step) {
	conn := r.tlsConn
	r.tlsConn = nil
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainTLSError(err, ctx)
		return
	}
	r.resp = newRESPConn(conn)
	st := conn.ConnectionState()
	leaf := st.PeerCertificates[0]
	names := leaf.DNSNames
	left := time.Until(leaf.NotAfter)
	s.Detail = fmt.Sprintf("%s, %s; certificate for %s (issuer %q), valid until %s (%s left); verified against %q",
		tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), strings.Join(names, ", "),
		leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), roundDur(left), r.cfg.Host)
	warnBefore := r.cfg.CertWarnBefore
	if warnBefore <= 0 {
		warnBefore = 7 * 24 * time.Hour
	}
	if left < warnBefore {
		s.Status = StatusWarn
		s.Cause = fmt.Sprintf("the server certificate expires in %s", roundDur(left))
		s.Fix = "Azure rotates its certificates itself; if this persists, check that nothing (a proxy) intercepts TLS"
	}
}

func (r *run) explainTLSError(err error, ctx context.Context) (cause, fix string) {
	var (
		hostErr   x509.HostnameError
		uaErr     x509.UnknownAuthorityError
		invErr    x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &hostErr):
		names := "(none)"
		if hostErr.Certificate != nil && len(hostErr.Certificate.DNSNames) > 0 {
			names = strings.Join(hostErr.Certificate.DNSNames, ", ")
		}
		if r.ipHost {
			cause = fmt.Sprintf("certificate name mismatch: you dialed the IP address %s while the certificate names %s (and no IP address): %v", r.cfg.Host, names, hostErr)
			fix = "connect with the host name the certificate names; if you must dial an IP (a cluster node from the topology), keep verifying against the host name: tls.Config.ServerName = the cache's host name (entraredis.NewClusterClient does this for you)"
		} else {
			cause = fmt.Sprintf("certificate name mismatch: the certificate names %s, not %s: %v", names, r.cfg.Host, hostErr)
			fix = "pass the cache's own host name (as shown in the portal); a CNAME or custom domain of your own is not in Azure's certificate, so verify against the Azure host name (tls.Config.ServerName)"
		}
	case errors.As(err, &uaErr):
		cause = "the server certificate is signed by an unknown authority: " + uaErr.Error()
		fix = "install the system CA bundle (ca-certificates) on this machine; if a corporate proxy inspects TLS, add its CA to the roots or bypass it for the cache"
	case errors.As(err, &invErr) && invErr.Reason == x509.Expired:
		cause = "the server certificate has expired or is not yet valid: " + invErr.Error()
		fix = "check this machine's clock; Azure's certificates are rotated before they expire"
	case errors.As(err, &recordErr):
		cause = fmt.Sprintf("the server on %s does not speak TLS (its first bytes are not a TLS record)", r.addr())
		fix = fmt.Sprintf("this is a plaintext port; Azure's TLS ports are %d (Azure Cache for Redis) and %d (Azure Managed Redis)", PortCache, PortManaged)
	case ctx.Err() != nil:
		cause = fmt.Sprintf("the TLS handshake did not finish within %s", r.timeout)
		fix = "something accepts the TCP connection but does not answer TLS: check the port and any proxy in between"
	default:
		cause = "TLS handshake failed: " + err.Error()
		fix = "the server closed or refused the handshake: the port may not be a TLS port, or this client's TLS version is too old (TLS 1.2 minimum)"
	}
	return cause, fix
}

// ---- AUTH and commands ----

func (r *run) cmd(ctx context.Context, args ...string) (any, error) {
	t := r.timeout
	if dl, ok := ctx.Deadline(); ok {
		t = time.Until(dl)
	}
	return r.resp.do(t, args...)
}

func (r *run) checkAuth(ctx context.Context, s *Step) {
	if r.username == "" {
		s.Status = StatusFailed
		s.Cause = "no username: the token has no oid claim and --username was not given"
		s.Fix = "pass --username with the object ID of the principal the token is issued to"
		return
	}
	s.Detail = fmt.Sprintf("AUTH %s <token, %d bytes, not shown>", r.username, len(r.token))
	_, err := r.cmd(ctx, "AUTH", r.username, r.token)
	if err == nil {
		s.Detail = fmt.Sprintf("AUTH as %s accepted", r.username)
		return
	}
	s.Status = StatusFailed
	var re *resp.Error
	if errors.As(err, &re) {
		switch re.Code() {
		case "WRONGPASS":
			s.Cause, s.Fix = r.explainWrongpass(re.Msg)
			return
		case "ERR":
			if strings.Contains(strings.ToLower(re.Msg), "without any password configured") {
				s.Cause = "the server has no authentication configured: " + re.Msg
				s.Fix = "this is not an Azure cache with Microsoft Entra authentication: check --host"
				return
			}
		}
		s.Cause = "AUTH refused: " + re.Msg
		s.Fix = "see the server's message; Azure expects AUTH <object ID> <Entra access token>"
		return
	}
	s.Cause = "AUTH got no answer: " + err.Error()
	s.Fix = "the server closed the connection during AUTH: is this a Redis endpoint? (an idle or rate-limited connection is also closed)"
}

// explainWrongpass maps WRONGPASS to the seed's checklist, naming what the doctor knows.
func (r *run) explainWrongpass(msg string) (cause, fix string) {
	c := r.claims
	var likely []string
	if c != nil {
		if !c.ExpiresAt.IsZero() && !r.now().Before(c.ExpiresAt) {
			likely = append(likely, fmt.Sprintf("the token expired at %s (%s ago)", c.ExpiresAt.UTC().Format(time.RFC3339), roundDur(r.now().Sub(c.ExpiresAt))))
		}
		if !c.NotBefore.IsZero() && r.now().Before(c.NotBefore) {
			likely = append(likely, fmt.Sprintf("the token is not valid before %s (clock skew?)", c.NotBefore.UTC().Format(time.RFC3339)))
		}
		if c.ObjectID != "" && r.username != c.ObjectID {
			what := ""
			switch r.username {
			case c.ClientID():
				what = " (that is the client/application ID)"
			case c.UPN:
				what = " (that is the user principal name)"
			case c.TenantID:
				what = " (that is the tenant ID)"
			}
			likely = append(likely, fmt.Sprintf("the username sent, %s%s, is not the token's oid %s", r.username, what, c.ObjectID))
		}
		if !AudienceOK(c.Audience) {
			likely = append(likely, fmt.Sprintf("the token's audience is %s, not Redis (https://redis.azure.com)", strings.Join(c.Audience, ", ")))
		}
	}
	oid := "(unknown: the token has no oid)"
	if c != nil && c.ObjectID != "" {
		oid = c.ObjectID
	}
	cause = fmt.Sprintf("the server refused the username/token pair (%s); principal oid %s, username sent %s", msg, oid, r.username)
	if len(likely) > 0 {
		cause += "; most likely: " + strings.Join(likely, "; ")
	}
	fix = strings.Join([]string{
		"check, in order:",
		fmt.Sprintf("(1) Data Access Configuration (Azure Cache for Redis) or Authentication → Microsoft Entra (Azure Managed Redis): an access policy is assigned to THIS principal, object ID %s (for a managed identity: its principal/object ID, not its client ID)", oid),
		"(2) Microsoft Entra Authentication is enabled on the cache (Advanced settings / Authentication)",
		fmt.Sprintf("(3) the username is the token's oid (%s), not the client ID or the UPN", oid),
		"(4) the token was requested for the scope https://redis.azure.com/.default",
		"(5) the token has not expired (a new connection must always use the current token)",
	}, "\n")
	return cause, fix
}

func (r *run) checkPing(ctx context.Context, s *Step) {
	v, err := r.cmd(ctx, "PING")
	if err != nil {
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainCommandError("PING", "", err)
		return
	}
	s.Detail = fmt.Sprintf("PING → %v", v)
}

func (r *run) checkWhoami(ctx context.Context, s *Step) {
	v, err := r.cmd(ctx, "ACL", "WHOAMI")
	if err != nil {
		// Informational: a policy may forbid ACL; the server decides.
		s.Status = StatusWarn
		s.Cause, s.Fix = r.explainCommandError("ACL WHOAMI", "", err)
		return
	}
	who, _ := v.(string)
	s.Detail = fmt.Sprintf("ACL WHOAMI → %s", who)
	if who != r.username {
		s.Status = StatusWarn
		s.Cause = fmt.Sprintf("the server says this connection is %q, not %q", who, r.username)
		s.Fix = "a proxy or the server maps identities: check which user the access policy is for"
	}
}

func randomKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "entraredis-doctor:" + hex.EncodeToString(b[:])
}

func (r *run) checkRead(ctx context.Context, s *Step) {
	key := randomKey()
	v, err := r.cmd(ctx, "GET", key)
	if msg, ok := redirected(err); ok {
		r.readOK = true
		s.Detail = fmt.Sprintf("GET %s → %s: allowed (ACLs are checked before the redirection); the key's slot is on another shard of this OSS cluster", key, msg)
		return
	}
	if err != nil {
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainCommandError("GET", key, err)
		return
	}
	r.readOK = true
	if v == nil {
		s.Detail = fmt.Sprintf("GET %s → (nil), as expected", key)
	} else {
		s.Detail = fmt.Sprintf("GET %s answered", key)
	}
}

func (r *run) checkWrite(ctx context.Context, s *Step) {
	key := randomKey()
	_, err := r.cmd(ctx, "SET", key, "entraredis doctor", "EX", "60", "NX")
	if msg, ok := redirected(err); ok {
		s.Detail = fmt.Sprintf("SET %s → %s: allowed (ACLs are checked before the redirection), nothing written; the key's slot is on another shard of this OSS cluster", key, msg)
		return
	}
	if err != nil {
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainCommandError("SET", key, err)
		return
	}
	n, err := r.cmd(ctx, "DEL", key)
	if err != nil {
		s.Status = StatusWarn
		s.Detail = fmt.Sprintf("SET %s EX 60 → OK", key)
		s.Cause, s.Fix = r.explainCommandError("DEL", key, err)
		s.Fix += " (the key expires by itself within 60 s)"
		return
	}
	s.Detail = fmt.Sprintf("SET %s EX 60 → OK, DEL → %v", key, n)
}

func (r *run) checkCluster(ctx context.Context, s *Step) {
	v, err := r.cmd(ctx, "CLUSTER", "INFO")
	if err == nil {
		info, _ := v.(string)
		if strings.Contains(info, "cluster_enabled:0") {
			r.rep.Client = "entraredis.NewClient"
			s.Detail = "CLUSTER INFO: cluster disabled → non-clustered: use entraredis.NewClient"
			return
		}
		state := "unknown"
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
				state = v
			}
		}
		r.rep.Client = "entraredis.NewClusterClient"
		s.Detail = fmt.Sprintf("CLUSTER INFO answered (cluster_state:%s) → OSS cluster policy: use entraredis.NewClusterClient (the topology names nodes by IP address; it verifies each node's certificate against %s)", state, r.cfg.Host)
		return
	}
	var re *resp.Error
	if !errors.As(err, &re) {
		s.Status = StatusFailed
		s.Cause, s.Fix = r.explainCommandError("CLUSTER INFO", "", err)
		return
	}
	low := strings.ToLower(re.Msg)
	switch {
	case strings.Contains(low, "cluster support disabled"):
		r.rep.Client = "entraredis.NewClient"
		s.Detail = "CLUSTER INFO: cluster support disabled → non-clustered: use entraredis.NewClient"
	case strings.Contains(low, "unknown command") || strings.Contains(low, "not supported") || strings.Contains(low, "blocked"):
		r.rep.Client = "entraredis.NewClient"
		s.Detail = fmt.Sprintf("CLUSTER INFO refused (%s) → Enterprise cluster policy or non-clustered: use entraredis.NewClient", re.Msg)
	case re.Code() == "NOPERM":
		s.Status = StatusWarn
		s.Detail = "CLUSTER INFO is not allowed for this principal: the cluster policy is unknown"
		s.Cause = re.Msg
		s.Fix = "if the cache uses the OSS cluster policy, use entraredis.NewClusterClient; otherwise (Enterprise policy, non-clustered) entraredis.NewClient"
	default:
		r.rep.Client = "entraredis.NewClient"
		s.Detail = fmt.Sprintf("CLUSTER INFO refused (%s) → not an OSS-cluster endpoint: use entraredis.NewClient", re.Msg)
	}
}

// explainCommandError maps a command's error to cause and fix.
func (r *run) explainCommandError(cmd, key string, err error) (cause, fix string) {
	var re *resp.Error
	if !errors.As(err, &re) {
		cause = fmt.Sprintf("%s got no answer: %v", cmd, err)
		fix = "the server closed the connection or did not answer in time; re-run, and check the cache's health in the portal"
		return cause, fix
	}
	switch re.Code() {
	case "NOPERM":
		oid := r.username
		if r.claims != nil && r.claims.ObjectID != "" {
			oid = r.claims.ObjectID
		}
		on := ""
		if key != "" {
			on = " on key " + key
		}
		cause = fmt.Sprintf("principal %s is authenticated but not allowed to run %s%s (%s)", oid, cmd, on, re.Msg)
		if (cmd == "SET" || cmd == "DEL") && r.readOK {
			cause += "; it can read but not write: looks like Data Reader"
		}
		fix = fmt.Sprintf("in Data Access Configuration (Azure Cache for Redis) or the access policy assignment, give principal %s a role that allows it: Data Owner (all commands), Data Contributor (reads and writes, no admin/dangerous commands), Data Reader (reads only); or a custom access policy whose permissions include the command (e.g. +%s) and the key pattern (e.g. ~*)",
			oid, strings.ToLower(strings.Fields(cmd)[0]))
	case "NOAUTH":
		cause = fmt.Sprintf("%s: the connection is not authenticated (%s)", cmd, re.Msg)
		fix = "AUTH must succeed before commands; a connection whose token expired is closed or de-authenticated by the server"
	default:
		cause = fmt.Sprintf("%s refused: %s", cmd, re.Msg)
		fix = "see the server's message"
	}
	return cause, fix
}

// redirected reports whether err is a cluster redirection (MOVED, ASK).
func redirected(err error) (string, bool) {
	var re *resp.Error
	if errors.As(err, &re) && (re.Code() == "MOVED" || re.Code() == "ASK") {
		return re.Msg, true
	}
	return "", false
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(strings.ToLower(err.Error()), "connection refused")
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// roundDur rounds d for display.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return -roundDur(-d)
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	default:
		return d.Round(100 * time.Millisecond)
	}
}
