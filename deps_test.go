package entraredis_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The root module is what a go-redis user adds: it must bring neither
// another Redis client, nor telemetry, nor the test kit's dependencies. Those
// live in their own modules (rueidisentra, entraredisotel, entraredistest,
// cmd/entraredis, bench, examples), tied together by go.work for development.

// forbiddenModules are module path prefixes that neither the root module's
// graph nor the root package's dependencies may hold.
var forbiddenModules = []string{
	"github.com/redis/rueidis",
	"go.opentelemetry.io/",
	"github.com/alicebob/miniredis",
	"github.com/yuin/gopher-lua",
}

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd() // a package's tests run in its directory: the root package's is the repository's
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("no go.work in %s: %v", dir, err)
	}
	return dir
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestNoClientDependencies: the root package compiles go-redis and not
// rueidis, OpenTelemetry or the test kit; entratoken (the token core)
// compiles no Redis client and no feature of a client layer (maintenance
// events); and the root module's own module graph,
// read without the workspace as a user's go command reads it, lists none
// of the integrations' or the test kit's modules.
func TestNoClientDependencies(t *testing.T) {
	root := repoRoot(t)
	for _, tc := range []struct {
		pkg       string
		forbidden []string
		needed    string
	}{
		{"github.com/entraredis/entraredis", append([]string{"github.com/entraredis/entraredis/entraredistest"}, forbiddenModules...), "github.com/redis/go-redis/v9"},
		{"github.com/entraredis/entraredis/entratoken", append([]string{"github.com/redis/", "github.com/entraredis/entraredis/azevents"}, forbiddenModules...), "github.com/entraredis/entraredis/internal/claims"},
	} {
		deps := strings.Fields(goCmd(t, root, nil, "list", "-deps", "-f", "{{.ImportPath}}", tc.pkg))
		found := false
		for _, d := range deps {
			if hasPrefix(d, tc.forbidden) {
				t.Errorf("%s depends on %s", tc.pkg, d)
			}
			found = found || d == tc.needed
		}
		if !found { // the list is the real one: what the package needs is in it
			t.Errorf("%s: %s missing from its %d dependencies", tc.pkg, tc.needed, len(deps))
		}
	}

	mods := strings.Fields(goCmd(t, root, []string{"GOWORK=off", "GOFLAGS=-mod=mod"}, "list", "-m", "-f", "{{.Path}}", "all"))
	found := false
	for _, m := range mods {
		if hasPrefix(m, forbiddenModules) || strings.HasPrefix(m, "github.com/entraredis/entraredis/") {
			t.Errorf("the root module's graph holds %s", m)
		}
		found = found || m == "github.com/redis/go-redis/v9"
	}
	if !found {
		t.Errorf("go-redis missing from the root module's graph of %d modules", len(mods))
	}
}

// TestConsumerKeepsItsVersions adds the root module to a scratch module that
// already uses older OpenTelemetry, rueidis and miniredis, and imports only
// the root package: every module the consumer had keeps its version, but for
// go-redis, azcore, azidentity and the modules they require themselves (the
// golang.org/x modules, and the Azure SDK's own test dependencies). It
// needs the Go module proxy for the scratch module's own dependencies (CI has
// it); without it the test is skipped outside CI.
func TestConsumerKeepsItsVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a scratch module with the go command: not in -short")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	env := []string{"GOWORK=off", "GOFLAGS=-mod=mod"}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", `module example.com/consumer

go 1.26.0

require (
	github.com/alicebob/miniredis/v2 v2.33.0
	github.com/redis/rueidis v1.0.69
	go.opentelemetry.io/otel v1.30.0
)
`)
	write("main.go", `package main

import (
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel"
)

func main() {
	_ = miniredis.NewMiniRedis
	_ = rueidis.NewClient
	_ = otel.Tracer
}
`)
	tidy := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "mod", "tidy")
	tidy.Dir, tidy.Env = dir, append(os.Environ(), env...)
	if out, err := tidy.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("the scratch consumer's own dependencies could not be had (no module proxy?): %v\n%s", err, out)
		}
		t.Fatalf("go mod tidy of the scratch consumer: %v\n%s", err, out)
	}
	before := moduleVersions(t, dir, env)

	write("entra.go", `package main

import "github.com/entraredis/entraredis"

var _ = entraredis.NewClient
`)
	goCmd(t, dir, env, "mod", "edit", "-require=github.com/entraredis/entraredis@v0.1.0", "-replace=github.com/entraredis/entraredis="+root)
	goCmd(t, dir, env, "mod", "tidy")
	goCmd(t, dir, env, "build", "./...")
	after := moduleVersions(t, dir, env)

	if _, ok := after["github.com/entraredis/entraredis"]; !ok {
		t.Fatalf("the consumer's graph lacks entraredis: %v", after)
	}
	// A module may move only where go-redis or the Azure SDK (or a module
	// they require) asks for its new version: the library's own
	// requirements, its test-only ones included, move nothing.
	explained := requiredBy(t, dir, env, "github.com/redis/go-redis/v9", "github.com/Azure/azure-sdk-for-go/sdk/azcore", "github.com/Azure/azure-sdk-for-go/sdk/azidentity")
	moved := 0
	for path, v := range before {
		switch w, ok := after[path]; {
		case !ok:
			t.Errorf("%s %s left the consumer's graph", path, v)
		case w != v && !explained[path+"@"+w]:
			t.Errorf("%s moved from %s to %s, which neither go-redis nor the Azure SDK requires", path, v, w)
		case w != v:
			moved++
		}
	}
	for _, pinned := range []string{"github.com/redis/rueidis", "go.opentelemetry.io/otel", "github.com/alicebob/miniredis/v2"} {
		if before[pinned] == "" || after[pinned] != before[pinned] {
			t.Errorf("%s: %q before, %q after", pinned, before[pinned], after[pinned])
		}
	}
	for path := range after {
		if strings.HasPrefix(path, "github.com/entraredis/entraredis/") {
			t.Errorf("the consumer's graph holds %s", path)
		}
	}
	t.Logf("%d modules before, %d after; %d of the allowed ones moved", len(before), len(after), moved)
}

// requiredBy returns the module versions ("path@version") that the given
// modules require, directly or through each other, in dir's module graph.
func requiredBy(t *testing.T, dir string, env []string, roots ...string) map[string]bool {
	t.Helper()
	edges := make(map[string][]string) // path@version → what it requires
	for _, line := range strings.Split(strings.TrimSpace(goCmd(t, dir, env, "mod", "graph")), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			edges[f[0]] = append(edges[f[0]], f[1])
		}
	}
	seen := make(map[string]bool)
	var walk func(mv string)
	walk = func(mv string) {
		for _, r := range edges[mv] {
			if !seen[r] {
				seen[r] = true
				walk(r)
			}
		}
	}
	for mv := range edges {
		path, _, _ := strings.Cut(mv, "@")
		if hasPrefix(path, roots) {
			seen[mv] = true
			walk(mv)
		}
	}
	return seen
}

// moduleVersions is go list -m all in dir, as path → version.
func moduleVersions(t *testing.T, dir string, env []string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(goCmd(t, dir, env, "list", "-m", "all")), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			m[f[0]] = f[1]
		} else if len(f) == 1 {
			m[f[0]] = ""
		}
	}
	return m
}
