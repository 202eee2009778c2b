package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraredis/entraredis/entraredistest"
)

// serveEmulatorEnv, set to "1", makes this program (or its test binary, see
// TestMain) serve one emulator for its parent instead of measuring: see
// serveEmulator.
const serveEmulatorEnv = "ENTRAREDIS_BENCH_SERVE_EMULATOR"

// emulatorInfo is what a child emulator tells its parent: where it listens,
// the CA of its certificate, its principal and one static token for it.
type emulatorInfo struct {
	Addr      string
	Host      string
	CAPEM     []byte
	ObjectID  string
	Token     string
	ExpiresOn time.Time
}

// serveEmulator starts an emulator in front of redis-server, mints one
// 24-hour token for its principal, writes their emulatorInfo to stdout as
// one JSON line and serves until stdin ends (when the parent closes it or
// exits).
func serveEmulator() error {
	srv, err := startServer(time.Hour)
	if err != nil {
		return err
	}
	defer srv.Close()
	oid := srv.Credential().ObjectID()
	now := time.Now()
	exp := now.Add(24 * time.Hour)
	tok, err := srv.Issuer().Mint(entraredistest.TokenSpec{ObjectID: oid, IssuedAt: now, ExpiresAt: exp})
	if err != nil {
		return err
	}
	info := emulatorInfo{Addr: srv.Addr(), Host: srv.Host(), CAPEM: srv.CAPEM(), ObjectID: oid, Token: tok, ExpiresOn: exp}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// childEmulator is an emulator (and its redis-server) in a child process:
// the steady-state sections measure this process's CPU time, which is then
// the clients' alone, as in a service whose cache is on another machine.
// Nothing rotates: both clients use one 24-hour token, the plain one as its
// password, ours through staticCredential.
type childEmulator struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser // closed by Close: the child then exits
	info  emulatorInfo
}

// startChildEmulator runs this executable again with serveEmulatorEnv and
// waits for the child's emulatorInfo.
func startChildEmulator() (*childEmulator, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serveEmulatorEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("child emulator: %w", err)
	}
	c := &childEmulator{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &c.info)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("child emulator: no address from it: %w", err)
	}
	return c, nil
}

// Addr is the emulator's TLS endpoint, host:port.
func (c *childEmulator) Addr() string { return c.info.Addr }

// TLSConfig trusts the child's throwaway CA only.
func (c *childEmulator) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.info.CAPEM)
	return &tls.Config{RootCAs: pool, ServerName: c.info.Host, MinVersion: tls.VersionTLS12}
}

// ObjectID is the principal's oid, the plain clients' username.
func (c *childEmulator) ObjectID() string { return c.info.ObjectID }

// Password is the static 24-hour token, the plain clients' password.
func (c *childEmulator) Password() string { return c.info.Token }

// Credential returns the static token, for our clients.
func (c *childEmulator) Credential() azcore.TokenCredential {
	return staticCredential{azcore.AccessToken{Token: c.info.Token, ExpiresOn: c.info.ExpiresOn}}
}

// Close ends the child (it stops its emulator and redis-server) and waits
// for it, killing it after 10 s.
func (c *childEmulator) Close() error {
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
		return errors.New("child emulator: killed after 10 s")
	}
}

// staticCredential always returns one token.
type staticCredential struct{ tok azcore.AccessToken }

func (s staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return s.tok, nil
}
