package rueidisentra_test

// The in-process fallback (miniredis) of the test server, for machines
// without redis-server.
import _ "github.com/entraredis/entraredis/entraredistest/inprocess"
