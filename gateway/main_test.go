package gateway

import (
	"os"
	"testing"

	"github.com/fsrep/fsrep/internal/testutil"
)

// TestMain fails the run if the tests leave goroutines behind.
func TestMain(m *testing.M) { os.Exit(testutil.RunWithLeakCheck(m)) }
