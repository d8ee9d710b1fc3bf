package admintest

import (
	"context"
	"fmt"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The fake consistency checker (admin.Checker): it answers the report the
// test set, counting the volume's chunks from the FSM when the report
// leaves Chunks at zero, and records the options of every call.

type checkState struct {
	report *replication.CheckReport
	err    error
	calls  []replication.CheckOptions
}

// SetCheckReport makes Check answer rep (a copy, with Leader, Volume,
// Repair and Verified filled in from the call) and err.
func (b *Backend) SetCheckReport(rep *replication.CheckReport, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.check.report, b.check.err = rep, err
}

// CheckCalls lists the options of the Check calls made.
func (b *Backend) CheckCalls() []replication.CheckOptions {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]replication.CheckOptions(nil), b.check.calls...)
}

// Check implements admin.Checker.
func (b *Backend) Check(_ context.Context, opts replication.CheckOptions) (*replication.CheckReport, error) {
	if opts.Volume != "" {
		if _, err := b.FSM().Volume(opts.Volume); err != nil {
			return nil, fmt.Errorf("%w: %q", meta.ErrNoVolume, opts.Volume)
		}
	}
	b.mu.Lock()
	b.check.calls = append(b.check.calls, opts)
	set, err := b.check.report, b.check.err
	leader := b.status.Leader
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	rep := replication.CheckReport{}
	if set != nil {
		rep = *set
	}
	rep.Leader, rep.Volume, rep.Repair, rep.Verified = leader, opts.Volume, opts.Repair, opts.Verify
	if rep.Chunks == 0 {
		err := b.FSM().ForEachChunk(nil, func(meta.ChunkRef) bool { rep.Chunks++; return true })
		if err != nil {
			return nil, err
		}
		rep.Healthy = rep.Chunks - rep.UnderReplicated - rep.Unavailable
	}
	return &rep, nil
}
