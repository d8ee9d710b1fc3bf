//go:build !linux

package testutil

import "testing"

// SmallFS cannot mount anything here: ok is always false.
func SmallFS(t testing.TB, size int64) (dir string, ok bool) { return "", false }

// Fill is not available where SmallFS is not.
func Fill(t testing.TB, path string) int64 {
	t.Fatal("testutil.Fill needs Linux")
	return 0
}
