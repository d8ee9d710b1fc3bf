package gateway

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered is a registry's samples as series -> value: counters and
// gauges by name{labels}, histograms as name_count{labels}, the labels
// sorted by name as the registry returns them.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := ""
			if len(pairs) > 0 {
				key = "{" + strings.Join(pairs, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_COUNTER:
				out[mf.GetName()+key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// newCall is an AUTH_NONE call of prog/vers/proc with args.
func newCall(xid, prog, vers, proc uint32, args ...[]byte) []byte {
	w := &replyWriter{}
	for _, v := range []uint32{xid, rpcCall, 2, prog, vers, proc, authNone, 0, authNone, 0} {
		w.u32(v)
	}
	for _, a := range args {
		w.b = append(w.b, a...)
	}
	return w.b
}

// roundTrip sends one call on c and returns its reply.
func roundTrip(t *testing.T, c net.Conn, call []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame(call)); err != nil {
		t.Fatal(err)
	}
	reply, err := readRecord(c, maxReply)
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

func xdr(f func(w *replyWriter)) []byte {
	w := &replyWriter{}
	f(w)
	return w.b
}

// A gateway with Metrics counts each call by procedure and status, the
// bytes of READ and WRITE, stale handles and connections.
func TestFrontMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the gateway's metrics twice in one registry succeeded")
	}
	cfg := DefaultFrontConfig()
	cfg.Metrics = m
	cfg.MaxConnsPerClient = 1
	addr, root, file := newTestServer(t, cfg)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	data := []byte("hello, metrics")
	write := xdr(func(w *replyWriter) {
		w.opaque(file)
		w.u64(0)
		w.u32(uint32(len(data)))
		w.u32(2) // FILE_SYNC
		w.opaque(data)
	})
	read := xdr(func(w *replyWriter) {
		w.opaque(file)
		w.u64(0)
		w.u32(1000)
	})
	forged := append([]byte(nil), root...)
	forged[len(forged)-1] ^= 0xff
	st := func(reply []byte) uint32 {
		at := replyStatusOffset(reply)
		if at < 0 {
			t.Fatalf("reply without a status: %x", reply)
		}
		return uint32(reply[at])<<24 | uint32(reply[at+1])<<16 | uint32(reply[at+2])<<8 | uint32(reply[at+3])
	}
	roundTrip(t, c, newCall(1, nfsProg, 3, 0))
	if s := st(roundTrip(t, c, newCall(2, nfsProg, 3, nfsProcGetAttr, xdr(func(w *replyWriter) { w.opaque(root) })))); s != nfs3OK {
		t.Fatalf("GETATTR root: status %d", s)
	}
	if s := st(roundTrip(t, c, newCall(3, nfsProg, 3, nfsProcWrite, write))); s != nfs3OK {
		t.Fatalf("WRITE: status %d", s)
	}
	if s := st(roundTrip(t, c, newCall(4, nfsProg, 3, nfsProcRead, read))); s != nfs3OK {
		t.Fatalf("READ: status %d", s)
	}
	bad := st(roundTrip(t, c, newCall(5, nfsProg, 3, nfsProcGetAttr, xdr(func(w *replyWriter) { w.opaque(forged) }))))
	if bad != nfs3ErrStale && bad != nfs3ErrBadHndl {
		t.Fatalf("GETATTR of a forged handle: status %d", bad)
	}
	roundTrip(t, c, newCall(6, 100099, 1, 0))                                   // no such program
	roundTrip(t, c, newCall(7, nfsProg, 3, nfsProcGetAttr, []byte{0, 0, 1, 0})) // handle longer than the record
	roundTrip(t, c, newCall(8, mountProg, 3, mountProcExport))

	// A second connection from the same client is over the limit.
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	deadline := time.Now().Add(10 * time.Second)
	for gathered(t, reg)[`fsrep_nfs_connections_refused_total{reason="max_conns_per_client"}`] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the refused connection was not counted")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}

	badName := "STALE"
	if bad == nfs3ErrBadHndl {
		badName = "BADHANDLE"
	}
	got := gathered(t, reg)
	for series, want := range map[string]float64{
		`fsrep_nfs_request_duration_seconds_count{proc="NULL",status="ok"}`:                 1,
		`fsrep_nfs_request_duration_seconds_count{proc="GETATTR",status="ok"}`:              1,
		`fsrep_nfs_request_duration_seconds_count{proc="WRITE",status="ok"}`:                1,
		`fsrep_nfs_request_duration_seconds_count{proc="READ",status="ok"}`:                 1,
		`fsrep_nfs_request_duration_seconds_count{proc="GETATTR",status="` + badName + `"}`: 1,
		`fsrep_nfs_request_duration_seconds_count{proc="other",status="prog_unavail"}`:      1,
		`fsrep_nfs_request_duration_seconds_count{proc="GETATTR",status="garbage_args"}`:    1,
		`fsrep_nfs_request_duration_seconds_count{proc="EXPORT",status="ok"}`:               1,
		`fsrep_nfs_write_bytes_total`:                                        float64(len(data)),
		`fsrep_nfs_read_bytes_total`:                                         float64(len(data)),
		`fsrep_nfs_stale_handles_total`:                                      1,
		`fsrep_nfs_connections_open`:                                         1,
		`fsrep_nfs_connections_accepted_total`:                               1,
		`fsrep_nfs_connections_refused_total{reason="max_conns"}`:            0,
		`fsrep_nfs_connections_refused_total{reason="max_conns_per_client"}`: 1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	histograms := 0
	for series := range got {
		if strings.HasPrefix(series, "fsrep_nfs_request_duration_seconds_count") {
			histograms++
		}
	}
	if histograms != 8 {
		t.Errorf("%d request series, want one per (procedure, status) seen: %v", histograms, got)
	}

	// Closing the connection closes its gauge.
	c.Close()
	for gathered(t, reg)[`fsrep_nfs_connections_open`] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection is still counted open")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// Every reply shape maps to a bounded label, and short or odd replies
// neither panic nor invent a status.
func TestClassifyReplies(t *testing.T) {
	okRead := accepted(1, acceptSuccess)
	okRead.u32(nfs3OK)
	okRead.u32(1)
	okRead.b = append(okRead.b, make([]byte, fattr3Size)...)
	okRead.u32(5) // count
	okRead.u32(1) // eof
	okRead.opaque([]byte("abcde"))
	okWrite := accepted(1, acceptSuccess)
	okWrite.u32(nfs3OK)
	okWrite.u32(1)
	okWrite.b = append(okWrite.b, make([]byte, 24)...)
	okWrite.u32(0) // no post-op attributes
	okWrite.u32(4096)
	okWrite.u32(2)
	okWrite.u64(0)
	denied := &replyWriter{}
	for _, v := range []uint32{1, rpcReply, msgDenied, rejectRPCMismatch, 2, 2} {
		denied.u32(v)
	}
	jukebox := statusReply(1, nfs3ErrJukebox, 1)
	weird := statusReply(1, 12345, 1)
	mnt := accepted(1, acceptSuccess)
	mnt.u32(13) // MNT3ERR_ACCES
	dump := accepted(1, acceptSuccess)
	dump.u32(1) // a list entry follows, not a status

	for _, tc := range []struct {
		name   string
		proc   int
		reply  []byte
		status string
		bytes  float64
	}{
		{"read", nfsProcRead, okRead.b, "ok", 5},
		{"write", nfsProcWrite, okWrite.b, "ok", 4096},
		{"denied", nfsProcGetAttr, denied.b, "rpc_mismatch", 0},
		{"jukebox", nfsProcWrite, jukebox, "JUKEBOX", 0},
		{"unknown status", nfsProcLookup, weird, "other", 0},
		{"mnt", mountProcLabels + mountProcMnt, mnt.b, "ACCES", 0},
		{"dump", mountProcLabels + mountProcDump, dump.b, "ok", 0},
		{"null", 0, accepted(1, acceptSuccess).b, "ok", 0},
		{"truncated", nfsProcGetAttr, accepted(1, acceptSuccess).b, "other", 0},
		{"garbage", nfsProcGetAttr, []byte{1, 2, 3}, "other", 0},
		{"system error", nfsProcRead, accepted(1, acceptSystemErr).b, "system_err", 0},
	} {
		st, rest := classify(tc.proc, tc.reply)
		if got := statusLabel(st); got != tc.status {
			t.Errorf("%s: status %q, want %q", tc.name, got, tc.status)
		}
		if tc.bytes > 0 {
			if got := transferred(uint32(tc.proc), tc.reply, rest); got != tc.bytes {
				t.Errorf("%s: %v bytes, want %v", tc.name, got, tc.bytes)
			}
		}
	}
	// A successful READ cut short reports no bytes rather than garbage.
	short := okRead.b[:len(okRead.b)-40]
	st, rest := classify(nfsProcRead, short)
	if statusLabel(st) != "ok" || transferred(nfsProcRead, short, rest) != 0 {
		t.Error("a truncated READ reply was counted")
	}
	// Every label index has a name, so none can panic at first use.
	for p := 0; p < numProcLabels; p++ {
		if procLabels[p] == "" {
			t.Errorf("procedure label %d has no name", p)
		}
	}
	for s := 0; s < numStatusLabels; s++ {
		if statusLabel(s) == "" {
			t.Errorf("status label %d has no name", s)
		}
	}
	if procLabel(call{rpcvers: 2, prog: nfsProg, vers: 4, proc: 1}) != procLabelOther ||
		procLabel(call{rpcvers: 2, prog: nfsProg, vers: 3, proc: 22}) != procLabelOther ||
		procLabel(call{rpcvers: 2, prog: mountProg, vers: 3, proc: 1}) != mountProcLabels+1 {
		t.Error("procedure labels are not bounded to NFSv3 and MOUNTv3")
	}
}

// A nil *Metrics is a no-op, so a gateway without one needs nothing.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.request(call{}, nil, time.Now())
	m.connOpened()
	m.connClosed()
	m.connRefused(true)
}

// The hot path allocates nothing once a series exists.
func TestMetricsRequestAllocs(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	reply := statusReply(1, nfs3OK, 1)
	c := call{rpcvers: 2, prog: nfsProg, vers: 3, proc: nfsProcGetAttr}
	start := time.Now()
	m.request(c, reply, start)
	if n := testing.AllocsPerRun(100, func() { m.request(c, reply, start) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}
