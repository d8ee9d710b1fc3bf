package gateway

import (
	"errors"
	iofs "io/fs"
	"syscall"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// NFSv3 status codes (RFC 1813 §2.6) the gateway sets itself.
const (
	nfs3OK          = 0
	nfs3ErrPerm     = 1
	nfs3ErrNoEnt    = 2
	nfs3ErrIO       = 5
	nfs3ErrAcces    = 13
	nfs3ErrExist    = 17
	nfs3ErrXDev     = 18
	nfs3ErrNotDir   = 20
	nfs3ErrIsDir    = 21
	nfs3ErrInval    = 22
	nfs3ErrFBig     = 27
	nfs3ErrNoSpc    = 28
	nfs3ErrROFS     = 30
	nfs3ErrNameLong = 63
	nfs3ErrNotEmpty = 66
	nfs3ErrDQuot    = 69
	nfs3ErrStale    = 70
	nfs3ErrBadHndl  = 10001
	nfs3ErrNotSync  = 10002
	nfs3ErrNotSupp  = 10004
	nfs3ErrBadType  = 10007
	nfs3ErrSrvFault = 10006
	nfs3ErrJukebox  = 10008
)

// nfsStatus is the one place where an error of fsrep becomes an NFS
// status. It returns 0 for an error it has no better answer for than
// go-nfs's own.
func nfsStatus(err error) uint32 {
	switch {
	case err == nil:
		return nfs3OK
	case errors.Is(err, meta.ErrNoLeader), errors.Is(err, replication.ErrQuorum):
		// The cluster cannot commit right now (an election, a lost
		// majority, replicas out of reach): the client retries later
		// instead of failing the application.
		return nfs3ErrJukebox
	case errors.Is(err, ErrBadHandle):
		return nfs3ErrBadHndl
	case errors.Is(err, ErrForgedHandle), errors.Is(err, ErrStale):
		return nfs3ErrStale
	case errors.Is(err, meta.ErrNotEmpty):
		return nfs3ErrNotEmpty
	case errors.Is(err, meta.ErrNameTooLong), errors.Is(err, syscall.ENAMETOOLONG):
		return nfs3ErrNameLong
	case errors.Is(err, meta.ErrNotDir), errors.Is(err, syscall.ENOTDIR):
		return nfs3ErrNotDir
	case errors.Is(err, meta.ErrIsDir), errors.Is(err, syscall.EISDIR):
		return nfs3ErrIsDir
	case errors.Is(err, iofs.ErrExist):
		return nfs3ErrExist
	case errors.Is(err, iofs.ErrNotExist):
		return nfs3ErrNoEnt
	case errors.Is(err, syscall.ENOSPC):
		return nfs3ErrNoSpc
	case errors.Is(err, meta.ErrQuota), errors.Is(err, syscall.EDQUOT):
		// A volume quota (bytes or files), refused by the commit or early
		// by the filesystem; never EIO, so the application sees "disk
		// quota exceeded".
		return nfs3ErrDQuot
	case errors.Is(err, syscall.EROFS):
		return nfs3ErrROFS
	case errors.Is(err, syscall.EPERM):
		return nfs3ErrPerm
	case errors.Is(err, iofs.ErrPermission):
		return nfs3ErrAcces
	case errors.Is(err, meta.ErrLoop), errors.Is(err, iofs.ErrInvalid):
		return nfs3ErrInval
	case errors.Is(err, errors.ErrUnsupported):
		return nfs3ErrNotSupp
	case errors.Is(err, replication.ErrUnavailable), errors.Is(err, vfs.ErrPanic):
		return nfs3ErrIO
	}
	return 0
}

// genericStatus reports whether go-nfs answers with this status when it
// does not know the cause (it maps most backend errors to EIO or EACCES):
// only those are rewritten from the recorded cause.
func genericStatus(st uint32) bool {
	switch st {
	case nfs3ErrIO, nfs3ErrAcces, nfs3ErrInval, nfs3ErrSrvFault, nfs3ErrStale, nfs3ErrNotSupp, nfs3ErrNoEnt, nfs3ErrROFS:
		return true
	}
	return false
}

// replyStatusOffset returns the offset of the NFS status word in an
// accepted, successful RPC reply, or -1.
func replyStatusOffset(b []byte) int {
	r := &xdrReader{b: b}
	r.u32() // xid
	r.u32() // reply
	if r.u32() != msgAccepted {
		return -1
	}
	r.u32()       // verifier flavor
	r.opaque(400) // verifier
	if r.u32() != acceptSuccess || r.err != nil || len(b)-r.off < 4 {
		return -1
	}
	return r.off
}
