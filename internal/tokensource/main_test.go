package tokensource

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// Source must stop its refresher, hand-outs and event goroutine at Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
