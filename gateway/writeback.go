package gateway

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// The write-behind serves NFSv3's UNSTABLE writes as the protocol means
// them: a WRITE asked UNSTABLE is answered as soon as its bytes are in this
// gateway's memory, and the data reaches the replicas later, in chunk-sized
// writes (one replicated write and one Raft commit per chunk instead of per
// WRITE), chunks of a file in parallel. COMMIT makes everything buffered
// for its file durable first (replicated to the write quorum and
// committed, as every FILE_SYNC write is) and answers the write verifier.
//
// The verifier is the client's only way to learn that unstable data was
// lost: it compares the one of each UNSTABLE reply with the one COMMIT
// answers and sends again what was acknowledged under another. Buffered
// data is lost only with the process (a crash, or Close, which drops it as
// a crash would), and the verifier is random per process, so a gateway
// that restarted, or the other node a client moved to, answers another
// one. A flush that fails for a reason that may pass (no leader, no
// quorum, a timeout) keeps the data buffered and retries it; COMMIT
// answers JUKEBOX meanwhile. A failure that sending again would not cure
// (quota, no space, the file deleted, no permission) drops the data and
// is that file's next COMMIT's error.
//
// Reads of this node see buffered data: any call on a file handle with
// buffered data flushes it first (READ, GETATTR, SETATTR, ...), as does a
// FILE_SYNC or DATA_SYNC write. Other nodes see it once flushed, which
// NFS's close-to-open consistency allows (a client COMMITs on close).

// wbData is what the write-behind needs of the data paths.
type wbData interface {
	WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error)
}

// writeBack buffers the UNSTABLE writes of one gateway.
type writeBack struct {
	data    wbData
	volume  func(uint32) (*meta.Volume, error)
	timeout time.Duration // bounds one flush's replicated write
	budget  int64         // bytes buffered at most, all files together
	delay   time.Duration // a file's buffered data is flushed this long after its last write at the latest
	log     logger

	mu     sync.Mutex
	used   int64 // bytes buffered
	files  map[fileKey]*wbFile
	closed bool          // discard was called: nothing more is buffered
	room   chan struct{} // closed (and replaced) whenever buffered bytes are released
	// nfiles mirrors len(files) for the lock-free check of every call.
	nfiles atomic.Int64
}

// maxFlush bounds one flush of a file: four 4 MiB chunks written at once.
const maxFlush = 16 << 20

// logger is the part of slog.Logger the write-behind uses.
type logger interface {
	Warn(msg string, args ...any)
}

// fileKey names a file: volume and inode.
type fileKey struct {
	vol uint32
	ino uint64
}

// wbFile is the buffered data of one file.
type wbFile struct {
	key fileKey

	mu       sync.Mutex
	pending  []extent      // in arrival order; later ones win where they overlap
	bytes    int64         // of pending
	end      uint64        // the highest offset written, buffered or flushed since the last COMMIT
	mtime    int64         // the time of the last buffered write, as its reply told the client
	flushing chan struct{} // closed when the running flush ends; nil when none runs
	err      error         // a flush failure to report at the next COMMIT (one retrying would not cure)
	timer    *time.Timer
	dead     bool // removed from the table: buffer must not add to it
}

type extent struct {
	off  int64
	data []byte
}

func newWriteBack(data wbData, volume func(uint32) (*meta.Volume, error), budget int64, timeout time.Duration, log logger) *writeBack {
	return &writeBack{data: data, volume: volume, budget: budget, timeout: timeout, delay: 500 * time.Millisecond,
		log: log, files: map[fileKey]*wbFile{}, room: make(chan struct{})}
}

// on reports whether UNSTABLE writes are buffered at all.
func (wb *writeBack) on() bool { return wb.budget > 0 }

// attrs returns n as it will be once file k's buffered writes are
// flushed: its size grown to the highest offset written and the mtime
// of the last buffered write (n itself when nothing is buffered).
func (wb *writeBack) attrs(k fileKey, n *meta.Inode) *meta.Inode {
	if wb.nfiles.Load() == 0 {
		return n
	}
	f := wb.file(k, false)
	if f == nil {
		return n
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.end <= n.Size && f.mtime <= n.Mtime {
		return n
	}
	out := *n
	out.Size = max(n.Size, f.end)
	if f.mtime > n.Mtime {
		out.Mtime, out.Ctime = f.mtime, max(n.Ctime, f.mtime)
	}
	return &out
}

// file returns the buffer of k, made if create is set (nil otherwise when
// none exists).
func (wb *writeBack) file(k fileKey, create bool) *wbFile {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	f := wb.files[k]
	if f == nil && create {
		f = &wbFile{key: k}
		wb.files[k] = f
		wb.nfiles.Store(int64(len(wb.files)))
	}
	return f
}

// buffer adds an UNSTABLE write of file k. It returns false when the
// budget is spent even after flushing k's own data: the caller then
// writes synchronously. It returns the highest offset written to the file
// since its last COMMIT (for the reply's attributes).
func (wb *writeBack) buffer(ctx context.Context, k fileKey, chunkSize int64, off int64, data []byte, now int64) (end uint64, ok bool) {
	if !wb.reserve(ctx, k, int64(len(data))) {
		return 0, false
	}
	var f *wbFile
	for {
		f = wb.file(k, true)
		f.mu.Lock()
		if !f.dead {
			break
		}
		f.mu.Unlock() // forgotten meanwhile: take the table's new one
	}
	f.pending = append(f.pending, extent{off, data})
	f.bytes += int64(len(data))
	f.end = max(f.end, uint64(off)+uint64(len(data)))
	f.mtime = now
	end, full := f.end, f.bytes >= chunkSize
	if f.timer == nil {
		f.timer = time.AfterFunc(wb.delay, func() { wb.background(f) })
	} else {
		f.timer.Reset(wb.delay)
	}
	f.mu.Unlock()
	if full {
		wb.background(f)
	}
	return end, true
}

// reserve takes n bytes of the budget for a write to file k, waiting
// (while k's own data is being flushed) until flushes free them; false
// when ctx ends first or the gateway stopped buffering.
func (wb *writeBack) reserve(ctx context.Context, k fileKey, n int64) bool {
	for {
		wb.mu.Lock()
		if wb.closed || n > wb.budget {
			wb.mu.Unlock()
			return false
		}
		if wb.used+n <= wb.budget {
			wb.used += n
			wb.mu.Unlock()
			return true
		}
		room, f := wb.room, wb.files[k]
		wb.mu.Unlock()
		if f != nil {
			wb.background(f)
		}
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
	}
}

func (wb *writeBack) release(n int64) {
	wb.mu.Lock()
	wb.used -= n
	close(wb.room)
	wb.room = make(chan struct{})
	wb.mu.Unlock()
}

// background starts a flush of f unless one runs.
func (wb *writeBack) background(f *wbFile) {
	f.mu.Lock()
	idle := f.flushing == nil && len(f.pending) > 0
	f.mu.Unlock()
	if idle {
		go func() { _ = wb.sync(context.Background(), f, false) }()
	}
}

// syncKey flushes what is buffered for file k, if anything; see sync.
func (wb *writeBack) syncKey(ctx context.Context, k fileKey, report bool) error {
	if wb.nfiles.Load() == 0 {
		return nil
	}
	if f := wb.file(k, false); f != nil {
		return wb.sync(ctx, f, report)
	}
	return nil
}

// sync returns once everything buffered for f when it was called is
// durable (nil, or with report, a COMMIT, the definitive failure of an
// earlier flush, which it clears), or when a flush failed for a reason
// that may pass: then that error, with the data buffered again for a
// retry. Without report a definitive failure is kept for the next COMMIT.
func (wb *writeBack) sync(ctx context.Context, f *wbFile, report bool) error {
	for {
		f.mu.Lock()
		if ch := f.flushing; ch != nil {
			f.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(f.pending) == 0 {
			err := f.err
			if report {
				f.err = nil
			}
			wb.forget(f)
			f.mu.Unlock()
			return err
		}
		// At most maxFlush bytes at a time (whole writes, at least one):
		// the rest is flushed next, while the replicas store this.
		cut, n := 0, int64(0)
		for cut < len(f.pending) && (cut == 0 || n+int64(len(f.pending[cut].data)) <= maxFlush) {
			n += int64(len(f.pending[cut].data))
			cut++
		}
		batch := slices.Clone(f.pending[:cut])
		f.pending = f.pending[cut:]
		f.bytes -= n
		done := make(chan struct{})
		f.flushing = done
		f.mu.Unlock()

		err := wb.flush(f.key, batch)
		f.mu.Lock()
		f.flushing = nil
		close(done)
		switch {
		case err == nil:
			wb.release(n)
		case !retryable(err):
			wb.release(n)
			if f.err == nil {
				f.err = err
			}
		default:
			// Before what was buffered meanwhile, which is newer.
			f.pending = append(batch, f.pending...)
			f.bytes += n
			if f.timer != nil {
				f.timer.Reset(wb.delay)
			}
			f.mu.Unlock()
			return err
		}
		f.mu.Unlock()
	}
}

// forget drops f from the table once it holds nothing, not even a
// failure to report (f.mu held).
func (wb *writeBack) forget(f *wbFile) {
	if len(f.pending) > 0 || f.flushing != nil || f.err != nil {
		return
	}
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.dead = true
	wb.mu.Lock()
	if wb.files[f.key] == f {
		delete(wb.files, f.key)
		wb.nfiles.Store(int64(len(wb.files)))
	}
	wb.mu.Unlock()
}

// flush writes a batch of one file's buffered writes: merged into
// disjoint runs split at chunk boundaries, the chunks in parallel (the
// data paths lock per chunk).
func (wb *writeBack) flush(k fileKey, batch []extent) error {
	vol, err := wb.volume(k.vol)
	if err == nil {
		runs := coalesce(batch, vol.ChunkSize)
		errs := make([]error, len(runs))
		var wg sync.WaitGroup
		for i, r := range runs {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), wb.timeout)
				defer cancel()
				_, errs[i] = wb.data.WriteAt(ctx, vol, k.ino, r.off, r.data)
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	if err != nil {
		wb.log.Warn("buffered writes could not be flushed", "vol", k.vol, "ino", k.ino, "err", err)
	}
	return err
}

// retryable reports whether a flush that failed with err may succeed
// later: the cluster could not commit (no leader, no quorum: what NFS
// answers JUKEBOX) or the flush ran out of time. Any other failure would
// recur, and is reported instead.
func retryable(err error) bool {
	return nfsStatus(err) == nfs3ErrJukebox || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// coalesce turns writes in arrival order (later ones win where they
// overlap) into disjoint runs in offset order, adjacent writes merged, no
// run crossing a multiple of chunkSize.
func coalesce(writes []extent, chunkSize int64) []extent {
	// Disjoint pieces in offset order, each pointing into a write's data.
	var pieces []extent
	for _, w := range writes {
		if len(w.data) == 0 {
			continue
		}
		start, end := w.off, w.off+int64(len(w.data))
		var out []extent
		for _, p := range pieces {
			pEnd := p.off + int64(len(p.data))
			if pEnd <= start || p.off >= end {
				out = append(out, p)
				continue
			}
			if p.off < start {
				out = append(out, extent{p.off, p.data[:start-p.off]})
			}
			if pEnd > end {
				out = append(out, extent{end, p.data[end-p.off:]})
			}
		}
		out = append(out, w)
		slices.SortFunc(out, func(a, b extent) int {
			switch {
			case a.off < b.off:
				return -1
			case a.off > b.off:
				return 1
			}
			return 0
		})
		pieces = out
	}
	// Adjacent pieces within one chunk become one run.
	var runs []extent
	for _, p := range pieces {
		for len(p.data) > 0 {
			room := chunkSize - p.off%chunkSize
			part := p.data[:min(int64(len(p.data)), room)]
			if n := len(runs); n > 0 {
				last := &runs[n-1]
				if last.off+int64(len(last.data)) == p.off && last.off/chunkSize == p.off/chunkSize {
					last.data = append(last.data, part...)
					p = extent{p.off + int64(len(part)), p.data[len(part):]}
					continue
				}
			}
			runs = append(runs, extent{p.off, append([]byte(nil), part...)})
			p = extent{p.off + int64(len(part)), p.data[len(part):]}
		}
	}
	return runs
}

// discard drops everything buffered and buffers nothing more (a stopped
// gateway: the data is lost as in a crash, and clients learn it from the
// verifier). A flush already running ends by itself.
func (wb *writeBack) discard() {
	wb.mu.Lock()
	wb.closed = true
	files := make([]*wbFile, 0, len(wb.files))
	for _, f := range wb.files {
		files = append(files, f)
	}
	wb.mu.Unlock()
	for _, f := range files {
		f.mu.Lock()
		if f.timer != nil {
			f.timer.Stop()
		}
		n := f.bytes
		f.pending, f.bytes = nil, 0
		f.mu.Unlock()
		wb.release(n)
	}
}

// syncAll flushes every file's buffered data (a draining gateway), bounded
// by ctx.
func (wb *writeBack) syncAll(ctx context.Context) {
	wb.mu.Lock()
	files := make([]*wbFile, 0, len(wb.files))
	for _, f := range wb.files {
		files = append(files, f)
	}
	wb.mu.Unlock()
	for _, f := range files {
		_ = wb.sync(ctx, f, false)
	}
}

var _ wbData = vfs.Data(nil)
