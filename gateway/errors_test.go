package gateway

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"syscall"
	"testing"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
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

// TestNFSStatusNoSpace: a write refused for lack of space, on this node's
// disk or on the replicas', is NFS3ERR_NOSPC; a quorum lost otherwise is
// still JUKEBOX; and a flush of buffered writes refused for no space is
// not retried (reported at COMMIT instead).
func TestNFSStatusNoSpace(t *testing.T) {
	for _, err := range []error{
		syscall.ENOSPC,
		fmt.Errorf("vfs: write: %w", chunkstore.ErrNoSpace),
		fmt.Errorf("%w: chunk v1-i2-c0: 1 of 3 replicas stored it, 2 needed", replication.ErrNoSpace),
		errors.Join(fmt.Errorf("%w: chunk 0", replication.ErrNoSpace), fmt.Errorf("chunk 1: %w", chunkstore.ErrNoSpace)),
	} {
		if st := nfsStatus(err); st != nfs3ErrNoSpc {
			t.Errorf("nfsStatus(%v) = %d, want NFS3ERR_NOSPC (%d)", err, st, nfs3ErrNoSpc)
		}
		if retryable(err) {
			t.Errorf("a flush that failed with %v would be retried", err)
		}
	}
	if st := nfsStatus(fmt.Errorf("%w: n2: %w", replication.ErrQuorum, errors.New("connection refused"))); st != nfs3ErrJukebox {
		t.Errorf("lost quorum: status %d, want JUKEBOX", st)
	}
}
