package gateway

import (
	"fmt"
	iofs "io/fs"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

func TestNFSStatusQuota(t *testing.T) {
	for _, err := range []error{
		meta.ErrQuota,
		fmt.Errorf("vfs: write: %w", meta.ErrQuota),
		// As it comes back from the leader: a code and a message.
		meta.ErrorFor(meta.CodeQuota, "meta: volume quota exceeded: volume v uses 10 of its 10 bytes"),
		&iofs.PathError{Op: "open", Path: "x", Err: meta.ErrQuota},
	} {
		if st := nfsStatus(err); st != nfs3ErrDQuot {
			t.Errorf("nfsStatus(%v) = %d, want NFS3ERR_DQUOT (%d)", err, st, nfs3ErrDQuot)
		}
	}
	// go-nfs answers a failed WRITE with EIO and a failed CREATE or MKDIR
	// with EIO or ACCES: those are rewritten from the cause.
	for _, st := range []uint32{nfs3ErrIO, nfs3ErrAcces} {
		if !genericStatus(st) {
			t.Errorf("status %d is not rewritten from the cause", st)
		}
	}
}
