package rueidisentra_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNeitherClientCompilesTheOther: rueidisentra's users do not compile
// go-redis, and entraredis' (the go-redis layer) do not compile rueidis.
func TestNeitherClientCompilesTheOther(t *testing.T) {
	for _, tc := range []struct{ pkg, forbidden, needed string }{
		{"github.com/entraredis/entraredis/rueidisentra", "github.com/redis/go-redis/", "github.com/redis/rueidis"},
		{"github.com/entraredis/entraredis", "github.com/redis/rueidis", "github.com/redis/go-redis/v9"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tc.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", tc.pkg, err, out)
		}
		deps := strings.Fields(string(out))
		found := false
		for _, d := range deps {
			if strings.HasPrefix(d, tc.forbidden) {
				t.Errorf("%s depends on %s", tc.pkg, d)
			}
			found = found || d == tc.needed
		}
		if !found { // the list is the real one: the package's own client is in it
			t.Errorf("%s: %s missing from its %d dependencies", tc.pkg, tc.needed, len(deps))
		}
	}
}
