// Package workload is the application a failure test runs against fsrep:
// it writes files of self-verifying blocks through the NFS gateways at a
// steady rate, reads every block back, records every acknowledged write,
// and when its gateway fails it moves to the next one in its list, the way
// an application server remounts, keeping the file handles it holds. At
// the end it reads every acknowledged block again and reports what was
// lost, corrupt or stale, and the longest time without a successful write.
//
// cmd/fsrep-workload runs it; the compose scenarios (tests/compose) read
// its JSON lines.
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one workload run.
type Config struct {
	// Gateways are the NFS addresses (host:port, MOUNT on the same port)
	// tried in order, moving to the next on every failure.
	Gateways []string
	// Export is the path mounted, e.g. "/data".
	Export string
	// Prefix starts every file name (files are PREFIX-000001, ...).
	Prefix string
	// Rate is the number of block writes started per second.
	Rate float64
	// BlockSize is the size of a block, the unit of one WRITE.
	BlockSize int
	// BlocksPerFile: after this many blocks the workload starts a new file
	// (so new chunks are placed while the cluster is degraded).
	BlocksPerFile int
	// OpTimeout bounds every RPC and dial, like a soft mount's timeo.
	OpTimeout time.Duration
	// LogAcks writes one JSON line per acknowledged write to Out.
	LogAcks bool
	// Out receives the JSON lines (acks, errors, one line per second, the
	// report); nil discards them.
	Out io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Default returns a configuration for gateways and export.
func Default(gateways []string, export string) Config {
	return Config{
		Gateways: gateways, Export: export, Prefix: "w", Rate: 20, BlockSize: 4096,
		BlocksPerFile: 16, OpTimeout: 2 * time.Second, LogAcks: true,
	}
}

// Validate checks the fields against each other.
func (c Config) Validate() error {
	switch {
	case len(c.Gateways) == 0:
		return errors.New("workload: no gateways")
	case c.Export == "":
		return errors.New("workload: no export")
	case c.Rate <= 0:
		return errors.New("workload: rate must be positive")
	case c.BlockSize < MinBlockSize:
		return fmt.Errorf("workload: block size below %d", MinBlockSize)
	case c.BlocksPerFile < 1:
		return errors.New("workload: blocks per file must be at least 1")
	case c.OpTimeout <= 0:
		return errors.New("workload: op timeout must be positive")
	case len(c.Prefix)+8 > nameField:
		return errors.New("workload: prefix too long")
	}
	return nil
}

// file is one file written by the run.
type file struct {
	name  string
	fh    []byte
	acked []uint64 // sequence number of each acknowledged block, by index
	// pending is the block being written until it is acknowledged: a
	// retry after an uncertain failure rewrites the same bytes.
	pending []byte
}

// Workload is one run. Run and Verify are called from one goroutine;
// MarkFault and Report may be called from any.
type Workload struct {
	cfg Config
	now func() time.Time

	// Owned by the Run/Verify goroutine.
	c      *conn
	root   []byte // the first mount's root handle, used on every gateway
	files  []*file
	seq    uint64
	xid    uint32
	tick   time.Duration
	gwNext int

	// Counters read by the per-second line.
	writes, reads, errs atomic.Int64

	mu       sync.Mutex
	gateway  string // in use, "" while disconnected
	rep      Report
	lastAck  time.Time
	fault    time.Time
	outMu    sync.Mutex
	outBroke bool
}

// Report is the final account of a run.
type Report struct {
	Start            time.Time      `json:"start"`
	End              time.Time      `json:"end"`
	AckedWrites      int64          `json:"acked_writes"`
	AckedBytes       int64          `json:"acked_bytes"`
	Files            int            `json:"files"`
	Reads            int64          `json:"reads"`
	Errors           int64          `json:"errors"`
	Reconnects       int64          `json:"reconnects"`
	Stale            int64          `json:"estale"`
	CorruptReads     int64          `json:"corrupt_reads"`
	Verified         bool           `json:"verified"`
	VerifiedBlocks   int64          `json:"verified_blocks"`
	LostWrites       int64          `json:"lost_acked_writes"`
	Unverified       int64          `json:"unverified_writes"`
	VerifiedVia      string         `json:"verified_via,omitempty"`
	LongestGap       float64        `json:"longest_gap_s"`
	LongestGapStart  time.Time      `json:"longest_gap_start"`
	FaultTime        *time.Time     `json:"fault_time,omitempty"`
	FaultToWrite     *float64       `json:"fault_to_first_write_s,omitempty"`
	WritesPerGateway map[string]int `json:"writes_per_gateway"`
	Gateway          string         `json:"gateway"` // in use at the end
	FirstErrors      []string       `json:"first_errors,omitempty"`
}

// New checks cfg and returns a workload that has not started.
func New(cfg Config) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Workload{cfg: cfg, now: cfg.Now, xid: uint32(time.Now().UnixNano())}
	if w.now == nil {
		w.now = time.Now
	}
	w.tick = time.Duration(float64(time.Second) / cfg.Rate)
	w.rep.WritesPerGateway = map[string]int{}
	return w, nil
}

// MarkFault records when the fault under test was injected: the report
// then gives the time from it to the first write started after it that
// was acknowledged.
func (w *Workload) MarkFault(t time.Time) {
	w.mu.Lock()
	w.fault = t
	w.rep.FaultTime = &t
	w.rep.FaultToWrite = nil
	w.mu.Unlock()
	w.emit(event{Ev: "fault", T: t})
}

// event is one JSON line.
type event struct {
	Ev      string    `json:"ev"`
	T       time.Time `json:"t"`
	Gateway string    `json:"gw,omitempty"`
	File    string    `json:"file,omitempty"`
	Block   *uint32   `json:"block,omitempty"`
	Seq     uint64    `json:"seq,omitempty"`
	LatMs   float64   `json:"lat_ms,omitempty"`
	Op      string    `json:"op,omitempty"`
	Err     string    `json:"err,omitempty"`
	Stale   bool      `json:"estale,omitempty"`
	// per second
	Writes int64   `json:"writes,omitempty"`
	Reads  int64   `json:"reads,omitempty"`
	Errors int64   `json:"errors,omitempty"`
	Report *Report `json:"report,omitempty"`
}

func (w *Workload) emit(e event) {
	if w.cfg.Out == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	w.outMu.Lock()
	defer w.outMu.Unlock()
	if _, err := w.cfg.Out.Write(append(b, '\n')); err != nil {
		w.outBroke = true
	}
}

// Run writes until ctx is done, then returns nil. It never gives up on
// errors: it reconnects, to the next gateway, and retries.
func (w *Workload) Run(ctx context.Context) error {
	start := w.now()
	w.mu.Lock()
	w.rep.Start = start
	w.mu.Unlock()

	secDone := make(chan struct{})
	go w.perSecond(ctx, secDone)
	defer func() { <-secDone }()

	next := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			w.closeGap()
			return nil
		case <-timer.C:
		}
		w.step()
		next = next.Add(w.tick)
		if now := w.now(); next.Before(now.Add(-w.tick)) {
			next = now // a stall is not made up for with a burst
		}
		timer.Reset(next.Sub(w.now()))
	}
}

// closeGap counts the time since the last acknowledged write in the
// longest gap, at the end of the run.
func (w *Workload) closeGap() {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rep.End = now
	if w.lastAck.IsZero() {
		return
	}
	if g := now.Sub(w.lastAck).Seconds(); g > w.rep.LongestGap {
		w.rep.LongestGap, w.rep.LongestGapStart = g, w.lastAck
	}
}

func (w *Workload) perSecond(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lw, lr, le int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wr, rd, er := w.writes.Load(), w.reads.Load(), w.errs.Load()
		w.mu.Lock()
		gw := w.gateway
		w.mu.Unlock()
		w.emit(event{Ev: "sec", T: w.now(), Gateway: gw, Writes: wr - lw, Reads: rd - lr, Errors: er - le})
		lw, lr, le = wr, rd, er
	}
}

// connect dials the next gateway and mounts the export. The root handle of
// the first mount is kept for the whole run: handles are valid on every
// node.
func (w *Workload) connect() error {
	addr := w.cfg.Gateways[w.gwNext%len(w.cfg.Gateways)]
	w.xid += 1 << 20
	c, err := dial(addr, w.cfg.OpTimeout, w.xid)
	if err != nil {
		w.gwNext++
		return err
	}
	root, err := c.mount(w.cfg.Export)
	if err != nil {
		c.Close()
		w.gwNext++
		return err
	}
	if w.root == nil {
		w.root = root
	}
	w.c = c
	w.mu.Lock()
	if w.gateway != "" || w.rep.AckedWrites > 0 {
		w.rep.Reconnects++
	}
	w.gateway = addr
	w.mu.Unlock()
	return nil
}

// fail counts err, drops the connection and moves to the next gateway.
func (w *Workload) fail(op string, err error) {
	w.errs.Add(1)
	st := isStale(err)
	w.mu.Lock()
	gw := w.gateway
	w.rep.Errors++
	if st {
		w.rep.Stale++
	}
	if len(w.rep.FirstErrors) < 20 {
		w.rep.FirstErrors = append(w.rep.FirstErrors, fmt.Sprintf("%s %s via %s: %v", w.now().UTC().Format(time.RFC3339Nano), op, gw, err))
	}
	w.gateway = ""
	w.mu.Unlock()
	w.emit(event{Ev: "err", T: w.now(), Gateway: gw, Op: op, Err: err.Error(), Stale: st})
	if w.c != nil {
		w.c.Close()
		w.c = nil
		w.gwNext++
	}
}

// step makes one block write (and its read-back), or one attempt at it.
func (w *Workload) step() {
	if w.c == nil {
		if err := w.connect(); err != nil {
			w.fail("mount", err)
			return
		}
	}
	f := w.current()
	if f.fh == nil {
		fh, err := w.c.create(w.root, f.name)
		if err != nil {
			w.fail("create", err)
			return
		}
		f.fh = fh
	}
	idx := uint32(len(f.acked))
	if f.pending == nil {
		w.seq++
		f.pending = encodeBlock(f.name, idx, w.seq, w.cfg.BlockSize)
	}
	off := uint64(idx) * uint64(w.cfg.BlockSize)
	started := w.now()
	if err := w.c.write(f.fh, off, f.pending); err != nil {
		w.fail("write", err)
		return
	}
	acked := w.now()
	seq := w.seq
	f.acked = append(f.acked, seq)
	f.pending = nil
	w.writes.Add(1)
	w.mu.Lock()
	gw := w.gateway
	w.rep.AckedWrites++
	w.rep.AckedBytes += int64(w.cfg.BlockSize)
	w.rep.WritesPerGateway[gw]++
	if g := acked.Sub(w.lastAck).Seconds(); !w.lastAck.IsZero() && g > w.rep.LongestGap {
		w.rep.LongestGap, w.rep.LongestGapStart = g, w.lastAck
	}
	w.lastAck = acked
	if !w.fault.IsZero() && w.rep.FaultToWrite == nil && !started.Before(w.fault) {
		d := acked.Sub(w.fault).Seconds()
		w.rep.FaultToWrite = &d
	}
	w.mu.Unlock()
	if w.cfg.LogAcks {
		w.emit(event{Ev: "ack", T: acked, Gateway: gw, File: f.name, Block: &idx, Seq: seq,
			LatMs: float64(acked.Sub(started).Microseconds()) / 1000})
	}

	got, _, err := w.c.read(f.fh, off, uint32(w.cfg.BlockSize))
	if err != nil {
		w.fail("read", err)
		return
	}
	w.reads.Add(1)
	w.mu.Lock()
	w.rep.Reads++
	w.mu.Unlock()
	if s, err := verifyBlock(got, f.name, idx); err != nil || s != seq {
		w.corrupt(f.name, idx, seq, s, err)
	}
}

func (w *Workload) corrupt(name string, idx uint32, want, got uint64, err error) {
	if err == nil {
		err = fmt.Errorf("sequence %d, want %d", got, want)
	}
	w.mu.Lock()
	w.rep.CorruptReads++
	gw := w.gateway
	w.mu.Unlock()
	w.emit(event{Ev: "corrupt", T: w.now(), Gateway: gw, File: name, Block: &idx, Seq: want, Err: err.Error()})
}

// current returns the file being written, starting a new one when the last
// is full.
func (w *Workload) current() *file {
	if n := len(w.files); n > 0 && len(w.files[n-1].acked) < w.cfg.BlocksPerFile {
		return w.files[n-1]
	}
	f := &file{name: fmt.Sprintf("%s-%06d", w.cfg.Prefix, len(w.files)+1)}
	w.files = append(w.files, f)
	w.mu.Lock()
	w.rep.Files = len(w.files)
	w.mu.Unlock()
	return f
}

// Verify reads every acknowledged block again, through whichever gateway
// answers, until ctx is done. A block that reads back wrong is a lost
// acknowledged write; one that could not be read before ctx ended is
// unverified (and Verify returns an error).
func (w *Workload) Verify(ctx context.Context) error {
	var lost, corrupt, ok, unverified int64
	for _, f := range w.files {
		for i, seq := range f.acked {
			idx := uint32(i)
			b, err := w.readRetry(ctx, f, idx)
			if err != nil {
				unverified++
				continue
			}
			s, verr := verifyBlock(b, f.name, idx)
			switch {
			case verr == nil && s == seq:
				ok++
				continue
			case errors.Is(verr, errCorrupt):
				corrupt++
			}
			lost++
			w.emit(event{Ev: "lost", T: w.now(), File: f.name, Block: &idx, Seq: seq, Err: fmt.Sprint(verr, " seq ", s)})
		}
	}
	w.mu.Lock()
	w.rep.Verified = unverified == 0
	w.rep.VerifiedBlocks = ok
	w.rep.LostWrites = lost
	w.rep.CorruptReads += corrupt
	w.rep.Unverified = unverified
	w.rep.VerifiedVia = w.gateway
	w.mu.Unlock()
	if unverified > 0 {
		return fmt.Errorf("workload: %d acknowledged writes could not be read back", unverified)
	}
	return nil
}

func (w *Workload) readRetry(ctx context.Context, f *file, idx uint32) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if w.c == nil {
			if err := w.connect(); err != nil {
				w.fail("verify-mount", err)
				w.pause(ctx)
				continue
			}
		}
		b, _, err := w.c.read(f.fh, uint64(idx)*uint64(w.cfg.BlockSize), uint32(w.cfg.BlockSize))
		if err != nil {
			w.fail("verify-read", err)
			w.pause(ctx)
			continue
		}
		return b, nil
	}
}

// pause waits one tick (or until ctx is done) between retries.
func (w *Workload) pause(ctx context.Context) {
	t := time.NewTimer(w.tick)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Report returns the account so far (final after Run and Verify return).
func (w *Workload) Report() Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rep
	r.Gateway = w.gateway
	r.WritesPerGateway = make(map[string]int, len(w.rep.WritesPerGateway))
	for k, v := range w.rep.WritesPerGateway {
		r.WritesPerGateway[k] = v
	}
	r.FirstErrors = append([]string(nil), w.rep.FirstErrors...)
	return r
}

// EmitReport writes the report as the last JSON line.
func (w *Workload) EmitReport() {
	r := w.Report()
	w.emit(event{Ev: "report", T: w.now(), Report: &r})
}

// Close drops the connection. Call it after Run and Verify.
func (w *Workload) Close() {
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}
