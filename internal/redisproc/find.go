package redisproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// EnvRedisServer names the environment variable holding the path of redis-server.
// It is consulted when no explicit path is given, before PATH.
const EnvRedisServer = "ENTRAREDIS_REDIS_SERVER"

// ErrNotFound reports that no redis-server executable could be found.
var ErrNotFound = errors.New("redis-server not found")

// Find returns the path of the redis-server executable: explicit when not empty,
// else $ENTRAREDIS_REDIS_SERVER when set, else "redis-server" looked up in PATH.
// An explicit path or environment value that is not an executable file is an error
// (there is no silent fallback to PATH). The error wraps ErrNotFound.
func Find(explicit string) (string, error) {
	if explicit != "" {
		return checkExecutable(explicit, "explicit path")
	}
	if env := os.Getenv(EnvRedisServer); env != "" {
		return checkExecutable(env, "$"+EnvRedisServer)
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("%w in PATH (install redis-server 7 or newer, e.g. apt-get install redis-server, or set $%s): %w",
			ErrNotFound, EnvRedisServer, err)
	}
	return p, nil
}

func checkExecutable(path, from string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q: %w", ErrNotFound, from, path, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s %q is not an executable file", ErrNotFound, from, path)
	}
	return path, nil
}

var versionRE = regexp.MustCompile(`v=(\d+)\.(\d+)\.(\d+)`)

// Version runs "redis-server --version" and returns the major, minor and patch
// numbers.
func Version(path string) (major, minor, patch int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("redisproc: %s --version: %w", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, 0, fmt.Errorf("redisproc: cannot parse version from %q", bytes.TrimSpace(out))
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	patch, _ = strconv.Atoi(string(m[3]))
	return major, minor, patch, nil
}
