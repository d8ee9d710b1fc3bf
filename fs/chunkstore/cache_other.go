//go:build !linux

package chunkstore

import "os"

// dropCache is a no-op where posix_fadvise is not available: Verify then
// checks what the page cache holds, which is what reads would serve.
func dropCache(*os.File) {}
