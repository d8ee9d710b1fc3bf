package workload

import (
	"os"
	"testing"

	"github.com/fsrep/fsrep/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunWithLeakCheck(m)) }
