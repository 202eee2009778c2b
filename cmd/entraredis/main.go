// Command entraredis checks and demonstrates Redis connections authenticated
// with Microsoft Entra ID (Azure Cache for Redis, Azure Managed Redis).
//
//	entraredis doctor --host NAME [--port N] [--username OID] [--scope S]
//	                  [--credential KIND] [--client-id ID] [--tenant-id ID]
//	                  [--ca-file PEM] [--write] [--json] [--timeout D]
//	entraredis token  [--scope S] [--credential KIND] [--client-id ID] [--tenant-id ID] [--raw] [--json]
//	entraredis demo   [--duration 30s] [--token-lifetime 6s] [--concurrency 16]
//
// doctor walks the chain credential → token → DNS → TCP → TLS → AUTH →
// commands and explains each failure; it exits 0 only when no step failed.
// token prints the decoded claims of the credential's token (the token itself
// only with --raw). demo runs a client of this library against the local
// Entra emulator with tokens of a few seconds, no Azure needed.
//
// Install: go install github.com/entraredis/entraredis/cmd/entraredis@latest
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/cmd/entraredis/internal/doctor"
	"github.com/entraredis/entraredis/internal/endpoint"
)

// Exit codes.
const (
	exitOK     = 0 // every step passed (warnings allowed)
	exitFailed = 1 // a step, the token request or the demo failed
	exitUsage  = 2 // bad flags or arguments
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, defaultEnv())
	stop()
	os.Exit(code)
}

// env holds what tests replace: the credential factory, extra roots, the clock.
type env struct {
	newCredential func(doctor.CredentialOptions) (*doctor.Credential, error)
	rootCAs       *x509.CertPool // used when --ca-file is not given; nil = system roots
	now           func() time.Time
	// doctorConfig, when set, adjusts the doctor's configuration (tests).
	doctorConfig func(*doctor.Config)
}

func defaultEnv() env {
	return env{newCredential: doctor.NewCredential, now: time.Now}
}

const usage = `entraredis: check and demonstrate Redis with Microsoft Entra ID

usage:
  entraredis doctor --host NAME [flags]   diagnose a connection step by step
  entraredis token [flags]                show the claims of the credential's token
  entraredis demo [flags]                 run a client against the local emulator (no Azure)

Run "entraredis COMMAND -h" for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr, e)
	case "token":
		return runToken(ctx, args[1:], stdout, stderr, e)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "entraredis: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// credFlags are the flags shared by doctor and token.
type credFlags struct {
	kind, clientID, tenantID, scope string
}

func (c *credFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.kind, "credential", "default", "credential: "+strings.Join(doctor.CredentialKinds, "|"))
	fs.StringVar(&c.clientID, "client-id", "", "client ID: a user-assigned managed identity's, the workload identity's or the application's (default: AZURE_CLIENT_ID where the credential reads it)")
	fs.StringVar(&c.tenantID, "tenant-id", "", "tenant ID for the credentials that take one (default: AZURE_TENANT_ID / the tool's default)")
	fs.StringVar(&c.scope, "scope", doctor.DefaultScope, "OAuth scope to request")
}

func (c *credFlags) credential(e env, stderr io.Writer) (*doctor.Credential, error) {
	return e.newCredential(doctor.CredentialOptions{
		Kind: c.kind, ClientID: c.clientID, TenantID: c.tenantID,
		Prompt: func(m string) { fmt.Fprintln(stderr, m) },
	})
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("entraredis "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return 0, true
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlagSet("doctor", stderr)
	var (
		cf       credFlags
		host     = fs.String("host", "", "cache host name, e.g. NAME.redis.cache.windows.net or NAME.REGION.redis.azure.net (required)")
		port     = fs.Int("port", 0, "port (default 10000 for *.redis.azure.net, else 6380)")
		username = fs.String("username", "", "Redis username (default: the token's oid claim)")
		write    = fs.Bool("write", false, "also check a write: SET of a throwaway key with a 60 s expiry, then DEL")
		asJSON   = fs.Bool("json", false, "print a machine-readable report")
		timeout  = fs.Duration("timeout", doctor.DefaultTimeout, "time limit of each step")
		caFile   = fs.String("ca-file", "", "PEM file of the CA certificates to trust instead of the system roots (emulators, TLS-inspecting proxies)")
	)
	cf.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *host == "" {
		fmt.Fprintln(stderr, "entraredis doctor: --host is required")
		fs.Usage()
		return exitUsage
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(stderr, "entraredis doctor: --port %d is out of range\n", *port)
		return exitUsage
	}
	h, p, err := endpoint.SplitAddr(*host) // the constructors' address rules, port optional
	if err != nil {
		fmt.Fprintf(stderr, "entraredis doctor: --host: %v\n", err)
		return exitUsage
	}
	*host = h
	if *port == 0 {
		*port = p
	}
	roots := e.rootCAs
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "entraredis doctor: --ca-file: %v\n", err)
			return exitUsage
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "entraredis doctor: --ca-file %s holds no PEM certificate\n", *caFile)
			return exitUsage
		}
	}
	cfg := doctor.Config{
		Host: *host, Port: *port, Username: *username, Scope: cf.scope,
		Write: *write, Timeout: *timeout, RootCAs: roots, Now: e.now,
	}
	cred, err := cf.credential(e, stderr)
	if err != nil {
		// Report it as the failed credential step, so that the network steps still run.
		cfg.Credential = failingCredential{err: err}
		cfg.CredentialName = "the " + cf.kind + " credential"
	} else {
		cfg.Credential, cfg.CredentialName, cfg.CredentialSource = cred.TokenCredential, cred.Name, cred.Source
	}
	if e.doctorConfig != nil {
		e.doctorConfig(&cfg)
	}
	rep := doctor.Run(ctx, cfg)
	if *asJSON {
		err = doctor.WriteJSON(stdout, rep)
	} else {
		err = doctor.WriteText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "entraredis doctor: %v\n", err)
		return exitFailed
	}
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}

// splitHostPort accepts --host NAME:PORT (and rediss://NAME:PORT), with the
// rules of endpoint.SplitAddr.
func splitHostPort(s string) (string, int, bool) {
	h, p, err := endpoint.SplitAddr(s)
	if err != nil || p == 0 {
		return "", 0, false
	}
	return h, p, true
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	fs := newFlagSet("token", stderr)
	var (
		cf      credFlags
		raw     = fs.Bool("raw", false, "also print the raw access token (a secret: alone on stdout, the claims go to stderr)")
		asJSON  = fs.Bool("json", false, "print JSON")
		timeout = fs.Duration("timeout", doctor.DefaultTimeout, "time limit of the token request")
	)
	cf.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cred, err := cf.credential(e, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "entraredis token: %v\n", err)
		return exitFailed
	}
	tctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := doctor.GetTokenInfo(tctx, cred.TokenCredential, cred.Name, cred.Source, cf.scope, *raw, e.now())
	if err != nil {
		var ce *doctor.CredentialError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "entraredis token: %s\nfix: %s\n", doctor.Redact(ce.Cause, ""), doctor.Redact(ce.Fix, ""))
		} else {
			fmt.Fprintf(stderr, "entraredis token: %s\n", doctor.Redact(err.Error(), ""))
		}
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "entraredis token: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	out := stdout
	if *raw {
		out = stderr
	}
	writeTokenText(out, res)
	if *raw {
		fmt.Fprintln(stdout, res.Token)
	}
	return exitOK
}

func writeTokenText(w io.Writer, res *doctor.TokenResult) {
	c := res.Claims
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-11s %s\n", k+":", v)
		}
	}
	cred := res.Credential
	if res.Source != "" && res.Source != res.Credential {
		cred += " (the chain's " + res.Source + " answered)"
	}
	line("credential", cred)
	line("scope", res.Scope)
	oid := c.ObjectID
	if oid == "" {
		oid = "(none: pass the principal's object ID as the Redis username)"
	} else {
		oid += "  ← the Redis username"
	}
	line("oid", oid)
	line("tid", c.TenantID)
	line("aud", strings.Join(c.Audience, ", "))
	line("iss", c.Issuer)
	line("appid", c.AppID)
	line("azp", c.AZP)
	line("idtyp", c.IDType)
	line("ver", c.Version)
	line("upn", c.UPN)
	if !c.IssuedAt.IsZero() {
		line("issued", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() {
		line("not before", c.NotBefore.UTC().Format(time.RFC3339))
	}
	left := time.Duration(c.RemainingS * float64(time.Second)).Round(time.Second)
	if left > 0 {
		line("expires", fmt.Sprintf("%s (in %s)", c.ExpiresAt.UTC().Format(time.RFC3339), left))
	} else {
		line("expires", fmt.Sprintf("%s (expired %s ago)", c.ExpiresAt.UTC().Format(time.RFC3339), -left))
	}
	for _, wn := range c.Warnings {
		fmt.Fprintf(w, "warning:    %s\n            fix: %s\n", wn.Cause, wn.Fix)
	}
}

// failingCredential reports a credential that could not be built, so that the
// doctor shows it as the failed credential step.
type failingCredential struct{ err error }

func (f failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}
