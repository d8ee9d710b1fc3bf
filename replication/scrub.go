package replication

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
)

// The scrubber re-reads every chunk file of its node at a paced rate and
// verifies every checksum, so that bit rot on a replica nobody reads is
// found while other replicas can still repair it. A damaged file is
// handed to a CorruptHandler (the Replicator: the replica is dropped for
// the healer to copy back, see corrupt.go).

// ScrubConfig configures a node's scrubber.
type ScrubConfig struct {
	NodeID string
	// Rate bounds the scrub reads in bytes per second. A node that does not
	// scrub does not build a Scrubber.
	Rate int64
	// Interval is how often a pass may start: a pass starts Interval after
	// the previous one started (or at once after Start), so a pass longer
	// than Interval is followed by the next one right away.
	Interval time.Duration
	// StateFile keeps the position in the current pass and the time of the
	// last one across restarts, so that restarts neither repeat the start
	// of a pass nor starve its end ("" keeps nothing: each start scrubs).
	StateFile string
	// SaveEvery is how often the position is written during a pass.
	SaveEvery time.Duration
}

// DefaultScrubRate is the scrub rate by default: 16 MiB/s, a small share
// of one disk (a 4 TB node is scrubbed in about three days).
const DefaultScrubRate = 16 << 20

// DefaultScrubConfig returns the defaults: 16 MiB/s, a pass a day at most.
func DefaultScrubConfig(nodeID string) ScrubConfig {
	return ScrubConfig{NodeID: nodeID, Rate: DefaultScrubRate, Interval: 24 * time.Hour, SaveEvery: time.Minute}
}

// Validate checks the configuration.
func (c ScrubConfig) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node ID is empty"))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %d is not positive", c.Rate))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %v is not positive", c.Interval))
	}
	if c.SaveEvery <= 0 {
		errs = append(errs, fmt.Errorf("save interval %v is not positive", c.SaveEvery))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replication: invalid scrub config: %w", err)
	}
	return nil
}

// ScrubStore is the node's chunk store as the scrubber reads it.
type ScrubStore interface {
	List() ([]chunkstore.ID, error)
	Stat(id chunkstore.ID) (version uint64, length int64, err error)
	// Verify reads a chunk whole and checks every checksum (ErrCorrupt).
	Verify(id chunkstore.ID) (chunkstore.Info, error)
}

// CorruptHandler acts on a local chunk file found damaged; the Replicator
// implements it (HandleLocalCorrupt).
type CorruptHandler interface {
	HandleLocalCorrupt(ctx context.Context, id chunkstore.ID) (CorruptOutcome, error)
}

// Scrubber is one node's scrubber. Run drives it; the other methods are
// safe to call from any goroutine.
type Scrubber struct {
	cfg     ScrubConfig
	store   ScrubStore
	handler CorruptHandler
	clock   LoopClock
	log     *slog.Logger
	pacer   *bytePacer
	kick    chan struct{} // Start: a pass now

	mu      sync.Mutex
	st      ScrubStatus
	paused  bool
	resumed chan struct{} // closed when a pause ends
	cursor  *chunkstore.ID
	saved   time.Time // when the state file was last written
}

// NewScrubber builds a scrubber; log may be nil.
func NewScrubber(cfg ScrubConfig, store ScrubStore, handler CorruptHandler, clock LoopClock, log *slog.Logger) (*Scrubber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scrubber{
		cfg: cfg, store: store, handler: handler, clock: clock, log: log.With("component", "scrub"),
		pacer: newBytePacer(clock, cfg.Rate), kick: make(chan struct{}, 1), resumed: make(chan struct{}),
	}
	s.st.Node, s.st.RateLimit = cfg.NodeID, cfg.Rate
	return s, nil
}

// Start asks for a pass now (one already running just continues). It does
// not end a pause.
func (s *Scrubber) Start() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Pause stops (true) or resumes (false) scrubbing between two chunks.
func (s *Scrubber) Pause(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == paused {
		return
	}
	s.paused, s.st.Paused = paused, paused
	if !paused {
		close(s.resumed)
		s.resumed = make(chan struct{})
	}
	s.log.Info("scrubbing paused or resumed", "paused", paused)
}

// SetRate changes the scrub rate (bytes per second, > 0).
func (s *Scrubber) SetRate(rate int64) error {
	if rate <= 0 {
		return fmt.Errorf("replication: scrub rate %d is not positive", rate)
	}
	s.pacer.setRate(rate)
	s.mu.Lock()
	s.st.RateLimit = rate
	s.mu.Unlock()
	return nil
}

// Status returns a copy of the scrubber's state.
func (s *Scrubber) Status() ScrubStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// scrubState is the StateFile: JSON, written whole and renamed into place.
type scrubState struct {
	// PassStarted is when the current (or, with no cursor, the last) pass
	// started.
	PassStarted   time.Time `json:"pass_started"`
	LastPassEnded time.Time `json:"last_pass_ended,omitzero"`
	Passes        int       `json:"passes"`
	// Cursor is the last chunk checked in the current pass; empty between
	// passes.
	Cursor string `json:"cursor,omitempty"`
}

// Run scrubs until ctx ends: a pass when one is due or asked for.
func (s *Scrubber) Run(ctx context.Context) {
	s.load()
	defer s.save() // keeps the position of a pass cut short
	for {
		s.mu.Lock()
		resume := s.cursor != nil
		due := s.st.PassStarted.Add(s.cfg.Interval)
		if s.st.PassStarted.IsZero() || resume {
			due = s.clock.Now()
		}
		s.st.NextPass = due
		s.mu.Unlock()
		if d := due.Sub(s.clock.Now()); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
			case <-s.clock.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		// A Start during the wait is this pass.
		select {
		case <-s.kick:
		default:
		}
		if err := s.pass(ctx, resume); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("scrub pass failed; retrying after the interval", "err", err)
			s.mu.Lock()
			s.st.PassStarted, s.cursor = s.clock.Now(), nil
			s.mu.Unlock()
		}
	}
}

// pass checks every chunk file listed now, from the cursor on if resume.
func (s *Scrubber) pass(ctx context.Context, resume bool) error {
	ids, err := s.store.List()
	if err != nil {
		return err
	}
	s.mu.Lock()
	now := s.clock.Now()
	if !resume {
		s.st.PassStarted, s.cursor = now, nil
	}
	s.st.NextPass = time.Time{}
	s.st.PassChunks, s.st.Scanned, s.st.ScannedBytes = len(ids), 0, 0
	if s.cursor != nil {
		// Chunks up to the cursor were checked before the restart.
		for len(ids) > 0 && compareIDs(ids[0], *s.cursor) <= 0 {
			ids = ids[1:]
			s.st.Scanned++
		}
	}
	s.mu.Unlock()
	s.log.Info("scrub pass started", "chunks", len(ids), "resumed", resume, "rate", s.pacer.currentRate())

	for _, id := range ids {
		if err := s.waitResumed(ctx); err != nil {
			return err
		}
		n, err := s.check(ctx, id)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.mu.Lock()
		s.st.Scanned++
		s.st.ScannedBytes += n
		if err != nil {
			s.st.Errors++
		}
		s.cursor = &id
		save := s.cfg.StateFile != "" && s.clock.Now().Sub(s.saved) >= s.cfg.SaveEvery
		s.mu.Unlock()
		if err != nil {
			s.log.Error("scrub could not check a chunk", "chunk", id.String(), "err", err)
		}
		if save {
			s.save()
		}
	}

	s.mu.Lock()
	s.st.Passes++
	s.st.LastPassEnded = s.clock.Now()
	// Due again an interval after this pass started; said here, with the
	// pass count, so that no status shows the pass done and none due (Run
	// sets it again before it waits).
	s.st.NextPass = s.st.PassStarted.Add(s.cfg.Interval)
	s.cursor = nil
	st := s.st
	s.mu.Unlock()
	s.save()
	s.log.Info("scrub pass done", "chunks", st.Scanned, "bytes", st.ScannedBytes,
		"took", st.LastPassEnded.Sub(st.PassStarted), "corrupt_total", st.Corrupt)
	return nil
}

// check verifies one chunk at the paced rate and hands damage over. It
// returns the bytes read, and an error for a chunk it could not check or
// whose damage it could not report.
func (s *Scrubber) check(ctx context.Context, id chunkstore.ID) (int64, error) {
	_, length, err := s.store.Stat(id)
	if err == nil {
		// The header and table are read too, but they are a few KiB next
		// to up to 64 MiB of data: pace by the data.
		if err := s.pacer.wait(ctx, max(length, 1)); err != nil {
			return 0, err
		}
		_, err = s.store.Verify(id)
	}
	switch {
	case err == nil:
		return length, nil
	case errors.Is(err, chunkstore.ErrNotFound) || errors.Is(err, iofs.ErrNotExist):
		return 0, nil // deleted since the listing
	case !errors.Is(err, chunkstore.ErrCorrupt):
		return 0, err
	}
	s.mu.Lock()
	s.st.Corrupt++
	s.mu.Unlock()
	s.log.Error("scrub found a damaged chunk file", "chunk", id.String(), "damage", err)
	outcome, herr := s.handler.HandleLocalCorrupt(ctx, id)
	if herr != nil {
		return length, fmt.Errorf("reporting the damage: %w", herr)
	}
	s.mu.Lock()
	switch outcome {
	case CorruptDropped, CorruptUnreferenced:
		s.st.Repaired++
	case CorruptKept:
		s.st.Kept++
	}
	s.mu.Unlock()
	s.log.Warn("damaged chunk file handled", "chunk", id.String(), "outcome", string(outcome))
	return length, nil
}

// waitResumed blocks while the scrubber is paused.
func (s *Scrubber) waitResumed(ctx context.Context) error {
	for {
		s.mu.Lock()
		paused, resumed := s.paused, s.resumed
		s.mu.Unlock()
		if !paused {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resumed:
		}
	}
}

// load reads the state file, if any. A missing or unreadable file means a
// pass is due now: scrubbing too early is the safe mistake.
func (s *Scrubber) load() {
	if s.cfg.StateFile == "" {
		return
	}
	b, err := os.ReadFile(s.cfg.StateFile)
	if err != nil {
		if !errors.Is(err, iofs.ErrNotExist) {
			s.log.Warn("scrub state unreadable; starting a pass", "err", err)
		}
		return
	}
	var st scrubState
	if err := json.Unmarshal(b, &st); err != nil {
		s.log.Warn("scrub state unreadable; starting a pass", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.PassStarted, s.st.LastPassEnded, s.st.Passes = st.PassStarted, st.LastPassEnded, st.Passes
	if st.Cursor != "" {
		if id, err := chunkstore.ParseID(st.Cursor); err == nil {
			s.cursor = &id
		}
	}
}

// save writes the state file (best effort: losing it only repeats work).
func (s *Scrubber) save() {
	if s.cfg.StateFile == "" {
		return
	}
	s.mu.Lock()
	st := scrubState{PassStarted: s.st.PassStarted, LastPassEnded: s.st.LastPassEnded, Passes: s.st.Passes}
	if s.cursor != nil {
		st.Cursor = s.cursor.String()
	}
	s.saved = s.clock.Now()
	s.mu.Unlock()
	b, _ := json.Marshal(st)
	tmp := s.cfg.StateFile + ".tmp"
	err := os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, s.cfg.StateFile)
	}
	if err != nil {
		s.log.Warn("saving the scrub state", "file", filepath.Base(s.cfg.StateFile), "err", err)
	}
}

// compareIDs orders chunk IDs as chunkstore.List sorts them.
func compareIDs(a, b chunkstore.ID) int {
	return cmp.Or(cmp.Compare(a.Vol, b.Vol), cmp.Compare(a.Ino, b.Ino), cmp.Compare(a.Index, b.Index))
}
