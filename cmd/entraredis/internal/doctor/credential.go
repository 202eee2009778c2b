package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialKinds lists the values NewCredential accepts, in the order the
// command's help shows them.
var CredentialKinds = []string{"default", "cli", "managed-identity", "workload-identity", "environment", "client-secret", "device-code", "browser", "azd"}

// CredentialOptions selects and configures a credential for NewCredential.
type CredentialOptions struct {
	// Kind is one of CredentialKinds. Default "default".
	Kind string
	// ClientID selects a user-assigned managed identity (managed-identity,
	// default) by client ID, the workload identity's application
	// (workload-identity), the application (client-secret, device-code,
	// browser). Default: the AZURE_CLIENT_ID environment variable where the
	// credential reads it.
	ClientID string
	// TenantID for the credentials that take one. Default: AZURE_TENANT_ID
	// where the credential reads it.
	TenantID string
	// Prompt receives the device-code instructions (device-code). Default: os.Stderr.
	Prompt func(msg string)
}

// Credential is a credential built by NewCredential.
type Credential struct {
	azcore.TokenCredential
	// Name is the azidentity type, e.g. "DefaultAzureCredential".
	Name string
	// Source names the member of DefaultAzureCredential's chain that produced
	// the last token ("" when unknown or not a chain).
	Source func() string
}

// NewCredential builds the azidentity credential named by opts.Kind.
//
// For "default" with a ClientID, it sets the AZURE_CLIENT_ID environment
// variable of this process: DefaultAzureCredential reads the user-assigned
// managed identity and the workload identity's client from there. It also
// installs an azcore log listener for azidentity's authentication events, to
// tell which credential of the chain answered (those events never carry tokens).
func NewCredential(opts CredentialOptions) (*Credential, error) {
	kind := opts.Kind
	if kind == "" {
		kind = "default"
	}
	var (
		cred azcore.TokenCredential
		err  error
		name string
	)
	switch kind {
	case "default":
		name = "DefaultAzureCredential"
		if opts.ClientID != "" {
			if err := os.Setenv("AZURE_CLIENT_ID", opts.ClientID); err != nil {
				return nil, fmt.Errorf("set AZURE_CLIENT_ID: %w", err)
			}
		}
		src := watchChain()
		c, e := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: opts.TenantID})
		if e != nil {
			return nil, fmt.Errorf("DefaultAzureCredential: %w", e)
		}
		return &Credential{TokenCredential: c, Name: name, Source: src}, nil
	case "cli":
		name = "AzureCLICredential"
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: opts.TenantID})
	case "azd":
		name = "AzureDeveloperCLICredential"
		cred, err = azidentity.NewAzureDeveloperCLICredential(&azidentity.AzureDeveloperCLICredentialOptions{TenantID: opts.TenantID})
	case "managed-identity":
		name = "ManagedIdentityCredential"
		o := &azidentity.ManagedIdentityCredentialOptions{}
		if opts.ClientID != "" {
			o.ID = azidentity.ClientID(opts.ClientID)
			name += " (user-assigned, client ID " + opts.ClientID + ")"
		} else {
			name += " (system-assigned)"
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	case "workload-identity":
		name = "WorkloadIdentityCredential"
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientID: opts.ClientID, TenantID: opts.TenantID})
	case "environment":
		name = "EnvironmentCredential"
		cred, err = azidentity.NewEnvironmentCredential(nil)
	case "client-secret":
		name = "ClientSecretCredential"
		tenant, client, secret := firstNonEmpty(opts.TenantID, os.Getenv("AZURE_TENANT_ID")), firstNonEmpty(opts.ClientID, os.Getenv("AZURE_CLIENT_ID")), os.Getenv("AZURE_CLIENT_SECRET")
		if tenant == "" || client == "" || secret == "" {
			return nil, errors.New("client-secret needs a tenant (--tenant-id or AZURE_TENANT_ID), a client ID (--client-id or AZURE_CLIENT_ID) and AZURE_CLIENT_SECRET in the environment (never on the command line)")
		}
		cred, err = azidentity.NewClientSecretCredential(tenant, client, secret, nil)
	case "device-code":
		name = "DeviceCodeCredential"
		prompt := opts.Prompt
		if prompt == nil {
			prompt = func(m string) { fmt.Fprintln(os.Stderr, m) }
		}
		cred, err = azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
			ClientID: opts.ClientID, TenantID: opts.TenantID,
			UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
				prompt(m.Message)
				return nil
			},
		})
	case "browser":
		name = "InteractiveBrowserCredential"
		cred, err = azidentity.NewInteractiveBrowserCredential(&azidentity.InteractiveBrowserCredentialOptions{ClientID: opts.ClientID, TenantID: opts.TenantID})
	default:
		return nil, fmt.Errorf("unknown credential %q: want one of %s", kind, strings.Join(CredentialKinds, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Credential{TokenCredential: cred, Name: name}, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

var chainWatch struct {
	once sync.Once
	mu   sync.Mutex
	last string
}

// watchChain listens to azidentity's authentication events and returns a
// function naming the last credential a chain authenticated with.
func watchChain() func() string {
	chainWatch.once.Do(func() {
		azlog.SetEvents(azidentity.EventAuthentication)
		azlog.SetListener(func(ev azlog.Event, msg string) {
			if ev != azidentity.EventAuthentication {
				return
			}
			// "DefaultAzureCredential authenticated with AzureCLICredential"
			if _, after, ok := strings.Cut(msg, " authenticated with "); ok {
				chainWatch.mu.Lock()
				chainWatch.last = strings.TrimSpace(after)
				chainWatch.mu.Unlock()
			}
		})
	})
	return func() string {
		chainWatch.mu.Lock()
		defer chainWatch.mu.Unlock()
		return chainWatch.last
	}
}

// credentialFixes says, per azidentity credential, how to make it work.
var credentialFixes = []struct{ name, fix string }{
	{"EnvironmentCredential", "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for a service principal"},
	{"WorkloadIdentityCredential", "on AKS, label the pod for workload identity so that AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID are set, and federate the service account with the identity"},
	{"ManagedIdentityCredential", "run on Azure with a managed identity enabled; for a user-assigned identity pass --client-id with its client ID"},
	{"AzureCLICredential", "run `az login` (and `az account set --subscription ...`), or pick another --credential"},
	{"AzureDeveloperCLICredential", "run `azd auth login`"},
	{"AzurePowerShellCredential", "run Connect-AzAccount in Azure PowerShell"},
	{"ClientSecretCredential", "set AZURE_TENANT_ID (or --tenant-id), AZURE_CLIENT_ID (or --client-id) and AZURE_CLIENT_SECRET; check the secret has not expired"},
	{"DeviceCodeCredential", "complete the sign-in at the address printed, within --timeout"},
	{"InteractiveBrowserCredential", "complete the sign-in in the browser, within --timeout (needs a desktop session)"},
}

// ExplainCredentialError turns a GetToken error into a cause and a fix. For
// a chain (DefaultAzureCredential) it summarises each attempt. timedOut tells
// that the step's deadline passed.
func ExplainCredentialError(name, scope string, err error, timedOut bool) (cause, fix string) {
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(msg, "AADSTS500011") || strings.Contains(low, "resource principal") || strings.Contains(msg, "AADSTS70011") || strings.Contains(low, "invalid_scope") || strings.Contains(low, "unknown scope"):
		cause = fmt.Sprintf("%s refused the scope %q: %s", name, scope, firstLine(msg))
		fix = "request the scope https://redis.azure.com/.default (--scope), the Redis resource; acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default is the older equivalent"
		return cause, fix
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		cause = fmt.Sprintf("%s did not answer in time: %s", name, firstLine(msg))
		fix = "the token endpoint is unreachable or slow (managed identity off Azure, an interactive prompt nobody answered): pick the credential explicitly with --credential, or raise --timeout"
		return cause, fix
	}
	attempts := chainAttempts(msg)
	if len(attempts) == 0 {
		cause = fmt.Sprintf("%s could not get a token: %s", name, shorten(msg, 600))
		fix = fixFor(name)
		for _, f := range credentialFixes {
			if fix == "" && strings.Contains(msg, f.name) {
				fix = f.fix
			}
		}
		if fix == "" {
			fix = "see azidentity's message above; https://aka.ms/azsdk/go/identity/troubleshoot"
		}
		return cause, fix
	}
	var lines, fixes []string
	for _, a := range attempts {
		lines = append(lines, a.name+": "+shorten(a.reason, 200))
		if f := fixFor(a.name); f != "" {
			fixes = append(fixes, a.name+": "+f)
		}
	}
	cause = fmt.Sprintf("%s tried %d credentials and none produced a token: %s", name, len(attempts), strings.Join(lines, " | "))
	if name == "DefaultAzureCredential" {
		if v := os.Getenv("AZURE_TOKEN_CREDENTIALS"); v != "" {
			cause += fmt.Sprintf(" (its full chain: environment, workload identity, managed identity, Azure CLI, azd, Azure PowerShell; AZURE_TOKEN_CREDENTIALS=%s narrows it to the ones above)", v)
		} else {
			cause += " (its chain: environment, workload identity, managed identity, Azure CLI, azd, Azure PowerShell; AZURE_TOKEN_CREDENTIALS narrows it)"
		}
	}
	fix = "make one of them work, or pick one with --credential: " + strings.Join(dedup(fixes), "; ")
	return cause, fix
}

type attempt struct{ name, reason string }

// chainAttempts parses the "Attempted credentials:" list of a ChainedTokenCredential error.
func chainAttempts(msg string) []attempt {
	_, list, ok := strings.Cut(msg, "Attempted credentials:")
	if !ok {
		return nil
	}
	var out []attempt
	for _, line := range strings.Split(list, "\n") {
		// Attempts are indented by one tab; continuation lines by two.
		if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		line = strings.TrimSpace(line)
		n, reason, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(n, " ") {
			continue
		}
		out = append(out, attempt{name: n, reason: reason})
	}
	return out
}

func fixFor(name string) string {
	for _, f := range credentialFixes {
		if strings.HasPrefix(name, f.name) {
			return f.fix
		}
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return shorten(strings.TrimSpace(line), 300)
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
