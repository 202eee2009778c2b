package doctor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entraredis/entraredis/entraredistest"
)

// fakeTools puts a fake `az` on PATH that prints tokenJSON (when not empty)
// and nothing else: azd and pwsh are then "not found", as on a machine
// without them. AZURE_TOKEN_CREDENTIALS=dev keeps DefaultAzureCredential to
// its developer tools, so that no test touches the network (no managed
// identity endpoint, no Entra ID).
func fakeTools(t *testing.T, tokenJSON []byte) {
	dir := t.TempDir()
	if tokenJSON != nil {
		file := filepath.Join(dir, "token.json")
		if err := os.WriteFile(file, tokenJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\nexec /bin/cat '" + file + "'\n"
		if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "dev")
}

func TestDefaultCredentialNamesTheAnsweringMember(t *testing.T) {
	srv := entraredistest.NewServer(t, entraredistest.Options{})
	tok, err := srv.Issuer().Mint(entraredistest.TokenSpec{ObjectID: srv.Credential().ObjectID()})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"accessToken": tok, "expires_on": time.Now().Add(time.Hour).Unix()})
	fakeTools(t, js)

	cred, err := NewCredential(CredentialOptions{Kind: "default"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := emulatorConfig(srv, cred.TokenCredential)
	cfg.CredentialName, cfg.CredentialSource = cred.Name, cred.Source
	rep, text, js2 := runFake(t, nil, nil, cfg)
	if !rep.OK {
		t.Fatalf("not OK:\n%s", text)
	}
	wantStep(t, rep, StepCredential, StatusOK, "DefaultAzureCredential produced a token", "the chain's AzureCLICredential answered")
	assertNoSecret(t, tok, text, js2)
}

func TestDefaultCredentialChainFailureSummarised(t *testing.T) {
	fakeTools(t, nil) // no az, azd or pwsh
	cred, err := NewCredential(CredentialOptions{Kind: "default"})
	if err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), Config{Host: "localhost", Port: 1, Credential: cred.TokenCredential, CredentialName: cred.Name, Timeout: 5 * time.Second})
	s := wantStep(t, rep, StepCredential, StatusFailed,
		"DefaultAzureCredential tried 3 credentials and none produced a token",
		"AzureCLICredential: ", "AzureDeveloperCLICredential: ", "AzurePowerShellCredential: ",
		"its full chain: environment, workload identity, managed identity, Azure CLI, azd", "AZURE_TOKEN_CREDENTIALS=dev narrows it",
		"az login", "azd auth login", "Connect-AzAccount")
	if strings.Count(s.Cause, "\n") > 0 {
		t.Errorf("the cause should be one line: %q", s.Cause)
	}
}

func TestNewCredentialKinds(t *testing.T) {
	t.Setenv("AZURE_CLIENT_ID", "")
	t.Setenv("AZURE_TENANT_ID", "")
	t.Setenv("AZURE_CLIENT_SECRET", "")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "")
	for _, kind := range []string{"default", "cli", "azd", "managed-identity", "device-code", "browser"} {
		c, err := NewCredential(CredentialOptions{Kind: kind})
		if err != nil || c.TokenCredential == nil || c.Name == "" {
			t.Errorf("%s: %v", kind, err)
		}
	}
	mi, err := NewCredential(CredentialOptions{Kind: "managed-identity", ClientID: "11111111-1111-1111-1111-111111111111"})
	if err != nil || !strings.Contains(mi.Name, "user-assigned, client ID 11111111-1111-1111-1111-111111111111") {
		t.Errorf("user-assigned managed identity: %v %v", mi, err)
	}
	if _, err := NewCredential(CredentialOptions{Kind: "client-secret"}); err == nil || !strings.Contains(err.Error(), "AZURE_CLIENT_SECRET in the environment") {
		t.Errorf("client-secret without configuration: %v", err)
	}
	if _, err := NewCredential(CredentialOptions{Kind: "workload-identity"}); err == nil {
		t.Error("workload-identity without configuration: no error")
	}
	if _, err := NewCredential(CredentialOptions{Kind: "kerberos"}); err == nil || !strings.Contains(err.Error(), "want one of default, cli") {
		t.Errorf("unknown kind: %v", err)
	}
	// default + --client-id selects the user-assigned identity through AZURE_CLIENT_ID.
	if _, err := NewCredential(CredentialOptions{Kind: "default", ClientID: "22222222-2222-2222-2222-222222222222"}); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("AZURE_CLIENT_ID"); got != "22222222-2222-2222-2222-222222222222" {
		t.Errorf("AZURE_CLIENT_ID = %q", got)
	}
}
