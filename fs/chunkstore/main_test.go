package chunkstore

import (
	"os"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/internal/testutil"
)

// TestMain fails the run if the tests leave goroutines behind.
func TestMain(m *testing.M) { os.Exit(testutil.RunWithLeakCheck(m)) }

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
