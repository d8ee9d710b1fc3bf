package gateway

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the RPC front sees: every call it answers (whether
// the front or go-nfs served it), the bytes READ and WRITE moved, stale
// handles, and client connections. The front is the one place every call
// and reply passes, so counting there sees what clients see, retransmissions
// answered from the duplicate-request table included.
//
// A nil *Metrics records nothing, so a gateway built without one (tests,
// tools) needs no registry.
type Metrics struct {
	requests *prometheus.HistogramVec
	// observers caches the histogram child of every (procedure, status)
	// pair the first time it is seen: the hot path then costs two array
	// indexes and an atomic load, with no label hashing or lock. Children
	// are made on first use only, so a scrape shows the pairs that
	// happened rather than ~1000 empty histograms.
	observers [numProcLabels][numStatusLabels]atomic.Value // prometheus.Observer

	readBytes, writeBytes prometheus.Counter
	staleHandles          prometheus.Counter

	connsOpen                     prometheus.Gauge
	connsAccepted                 prometheus.Counter
	refusedMaxConns, refusedPerIP prometheus.Counter
}

// NewMetrics makes the gateway's instruments and registers them with reg
// (the node's registry). It fails when reg already holds them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fsrep_nfs_request_duration_seconds",
			Help: "NFS and MOUNT calls answered by this node's gateway, from the whole call read to its reply written, by procedure and reply status.",
			// From a GETATTR answered from the local FSM (~50 µs) to a
			// WRITE that waited for a leader election (seconds).
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"proc", "status"}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsrep_nfs_read_bytes_total",
			Help: "File data bytes returned by successful NFS READs.",
		}),
		writeBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsrep_nfs_write_bytes_total",
			Help: "File data bytes acknowledged by successful NFS WRITEs.",
		}),
		staleHandles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsrep_nfs_stale_handles_total",
			Help: "NFS replies with status STALE or BADHANDLE: handles of deleted files, forged or malformed handles.",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsrep_nfs_connections_open",
			Help: "NFS client connections open now.",
		}),
		connsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsrep_nfs_connections_accepted_total",
			Help: "NFS client connections accepted.",
		}),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fsrep_nfs_connections_refused_total",
		Help: "NFS client connections closed at once because a connection limit was reached.",
	}, []string{"reason"})
	m.refusedMaxConns = refused.WithLabelValues("max_conns")
	m.refusedPerIP = refused.WithLabelValues("max_conns_per_client")

	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.readBytes, m.writeBytes, m.staleHandles, m.connsOpen, m.connsAccepted, refused} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Procedure labels: NFSv3 procedures 0-21 by their RFC 1813 names, then
// MOUNTv3's, then one for everything else (other programs and versions,
// procedures out of range), which bounds the label's values.
const (
	mountProcLabels = nfsProcCount
	procLabelOther  = mountProcLabels + mountProcCount
	numProcLabels   = procLabelOther + 1
	nfsProcCount    = 22
	mountProcCount  = 6
)

// procLabels is read-only.
var procLabels = [numProcLabels]string{
	"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE", "MKDIR",
	"SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT",
	"FSINFO", "PATHCONF", "COMMIT",
	"MOUNT_NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT",
	"other",
}

func procLabel(c call) int {
	switch {
	case c.rpcvers != 2 || c.vers != 3:
	case c.prog == nfsProg && c.proc < nfsProcCount:
		return int(c.proc)
	case c.prog == mountProg && c.proc < mountProcCount:
		return mountProcLabels + int(c.proc)
	}
	return procLabelOther
}

// nfsStatuses are the nfsstat3 codes (RFC 1813 §2.6) with their names;
// MOUNT's mountstat3 reuses the same numbers. Read-only.
var nfsStatuses = [...]struct {
	code uint32
	name string
}{
	{nfs3OK, "ok"}, {nfs3ErrPerm, "PERM"}, {nfs3ErrNoEnt, "NOENT"}, {nfs3ErrIO, "IO"}, {6, "NXIO"},
	{nfs3ErrAcces, "ACCES"}, {nfs3ErrExist, "EXIST"}, {nfs3ErrXDev, "XDEV"}, {19, "NODEV"},
	{nfs3ErrNotDir, "NOTDIR"}, {nfs3ErrIsDir, "ISDIR"}, {nfs3ErrInval, "INVAL"}, {27, "FBIG"},
	{nfs3ErrNoSpc, "NOSPC"}, {nfs3ErrROFS, "ROFS"}, {31, "MLINK"}, {nfs3ErrNameLong, "NAMETOOLONG"},
	{nfs3ErrNotEmpty, "NOTEMPTY"}, {nfs3ErrDQuot, "DQUOT"}, {nfs3ErrStale, "STALE"}, {71, "REMOTE"},
	{nfs3ErrBadHndl, "BADHANDLE"}, {nfs3ErrNotSync, "NOT_SYNC"}, {10003, "BAD_COOKIE"},
	{nfs3ErrNotSupp, "NOTSUPP"}, {nfs3ErrTooSmall, "TOOSMALL"}, {nfs3ErrSrvFault, "SERVERFAULT"},
	{nfs3ErrBadType, "BADTYPE"}, {nfs3ErrJukebox, "JUKEBOX"},
}

// Status labels: the nfsstat3 names (label i is nfsStatuses[i], 0 is
// "ok"), then the RPC-level outcomes of calls never handed to a procedure
// (RFC 5531 accept_stat and reject_stat), then "other" for a status word no
// RFC names or a reply too short to hold one, which bounds the label's
// values.
const (
	statusOK          = 0
	statusProgUnavail = len(nfsStatuses) + iota - 1
	statusProgMismatch
	statusProcUnavail
	statusGarbageArgs
	statusSystemErr
	statusRPCMismatch
	statusAuthError
	statusOther
	numStatusLabels
)

func statusLabel(i int) string {
	if i < len(nfsStatuses) {
		return nfsStatuses[i].name
	}
	return [...]string{"prog_unavail", "prog_mismatch", "proc_unavail", "garbage_args", "system_err",
		"rpc_mismatch", "auth_error", "other"}[i-statusProgUnavail]
}

func nfsStatusLabel(code uint32) int {
	for i, s := range nfsStatuses {
		if s.code == code {
			return i
		}
	}
	return statusOther
}

// hasStatus reports whether the results of a procedure start with a
// status word: every NFS procedure but NULL, and MOUNT's MNT. The other
// MOUNT procedures return void or a list.
func hasStatus(p int) bool {
	return (p > 0 && p < nfsProcCount) || p == mountProcLabels+mountProcMnt
}

// classify reads a reply's status label and, when it has an NFS status
// word, the offset of what follows it (-1 otherwise).
func classify(p int, reply []byte) (status, rest int) {
	r := xdrReader{b: reply}
	r.u32() // xid
	r.u32() // REPLY
	if r.u32() == msgDenied {
		if r.u32() == rejectRPCMismatch {
			return statusRPCMismatch, -1
		}
		return statusAuthError, -1
	}
	r.u32()       // verifier flavor
	r.opaque(400) // verifier
	accept := r.u32()
	if r.err != nil {
		return statusOther, -1
	}
	switch accept {
	case acceptSuccess:
	case acceptProgUnavail:
		return statusProgUnavail, -1
	case acceptProgMismatch:
		return statusProgMismatch, -1
	case acceptProcUnavail:
		return statusProcUnavail, -1
	case acceptGarbageArgs:
		return statusGarbageArgs, -1
	case acceptSystemErr:
		return statusSystemErr, -1
	default:
		return statusOther, -1
	}
	if !hasStatus(p) {
		return statusOK, -1
	}
	st := r.u32()
	if r.err != nil {
		return statusOther, -1
	}
	return nfsStatusLabel(st), r.off
}

// skip moves r past n bytes.
func (r *xdrReader) skip(n int) {
	if r.err == nil && len(r.b)-r.off < n {
		r.err = errors.New("gateway: reply too short")
	}
	if r.err == nil {
		r.off += n
	}
}

// transferred is the count field of a successful READ3resok or WRITE3resok
// (RFC 1813 §3.3.6, §3.3.7) whose results after the status start at off in
// reply: the bytes read, or written and acknowledged. A reply too short to
// hold it counts nothing.
func transferred(proc uint32, reply []byte, off int) float64 {
	if off < 0 {
		return 0
	}
	r := xdrReader{b: reply, off: off}
	if proc == nfsProcWrite && r.u32() == 1 { // pre_op_attr
		r.skip(24) // wcc_attr: size, mtime, ctime
	}
	if r.u32() == 1 { // post_op_attr
		r.skip(fattr3Size)
	}
	n := r.u32()
	if r.err != nil {
		return 0
	}
	return float64(n)
}

const (
	nfsProcRead   = 6
	nfsProcCommit = 21
	nfsProcWrite  = 7
)

func (m *Metrics) observer(p, st int) prometheus.Observer {
	if o, ok := m.observers[p][st].Load().(prometheus.Observer); ok {
		return o
	}
	// Racing first uses resolve the same child; either store is right.
	o := m.requests.WithLabelValues(procLabels[p], statusLabel(st))
	m.observers[p][st].Store(o)
	return o
}

// request records one answered call: c's procedure, the status of reply,
// the time since start (when c's record had been read), and the bytes a
// successful READ or WRITE moved.
func (m *Metrics) request(c call, reply []byte, start time.Time) {
	if m == nil {
		return
	}
	p := procLabel(c)
	st, rest := classify(p, reply)
	m.observer(p, st).Observe(time.Since(start).Seconds())
	switch {
	case st == statusOK && p == nfsProcRead:
		m.readBytes.Add(transferred(nfsProcRead, reply, rest))
	case st == statusOK && p == nfsProcWrite:
		m.writeBytes.Add(transferred(nfsProcWrite, reply, rest))
	case st < len(nfsStatuses):
		switch nfsStatuses[st].code {
		case nfs3ErrStale, nfs3ErrBadHndl:
			m.staleHandles.Inc()
		}
	}
}

func (m *Metrics) connOpened() {
	if m != nil {
		m.connsAccepted.Inc()
		m.connsOpen.Inc()
	}
}

func (m *Metrics) connClosed() {
	if m != nil {
		m.connsOpen.Dec()
	}
}

// connRefused counts a connection closed for a limit: the node's
// (MaxConns) when all is true, else the client's (MaxConnsPerClient).
func (m *Metrics) connRefused(all bool) {
	switch {
	case m == nil:
	case all:
		m.refusedMaxConns.Inc()
	default:
		m.refusedPerIP.Inc()
	}
}

// reply records the call and writes the reply to c. Recording first means
// a client that has its reply finds the call counted (the latency then
// excludes the socket write, which the kernel buffers anyway).
func (cc *clientConn) reply(c call, start time.Time, body []byte) {
	cc.s.cfg.Metrics.request(c, body, start)
	cc.write(body)
}
