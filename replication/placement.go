// Package replication owns placement, the replicated write and read paths, failure detection,
// re-replication, scrubbing, garbage collection, rebalancing and draining of chunks.
//
// Placement is made of pure functions over a topology snapshot: they read no clock, no randomness
// and no network, so the leader can explain, and tests can replay, every decision.
package replication

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// Candidate is one node as placement sees it.
type Candidate struct {
	ID   string
	AZ   string // failure domain label; nodes with an empty label share the AZ ""
	Free int64  // free bytes on its chunk disk; <0 means unknown
	Up   bool   // only Up nodes receive new replicas
	// Full: the node's chunk disk is below its free-space reserve (its
	// heartbeat says so) or it refused a write for lack of space lately.
	// A full node receives no new replicas, like one that is not Up.
	Full bool
}

var (
	// ErrNotEnoughNodes means fewer eligible nodes than the requested replica count.
	ErrNotEnoughNodes = errors.New("replication: not enough nodes for the replica count")
	// ErrUnsafePlacement means a replication policy would stop accepting writes after losing one AZ.
	ErrUnsafePlacement = errors.New("replication: placement cannot survive the loss of one AZ")
	// ErrInvalidPolicy means a replica count or write quorum that makes no sense on its own.
	ErrInvalidPolicy = errors.New("replication: invalid replication policy")
)

// Place picks r distinct Up, not Full nodes for a new chunk (or for new replicas of an existing chunk), never
// choosing a node listed in exclude (typically the nodes already holding the chunk).
//
// AZ spread comes first: Place never puts two replicas in one AZ while another AZ has an eligible
// candidate and holds fewer replicas. haveAZs lists the AZs of the replicas that already exist (one
// entry per replica), so re-replication lands in an AZ not yet holding the chunk whenever it can.
// Among candidates in equally loaded AZs it prefers more free space (unknown free space ranks below
// any known amount), then a pseudo-random order derived from seed and the node ID, so that chunks with
// different seeds spread over otherwise equal nodes. The result depends only on the arguments, not on
// the order of nodes; if two candidates share an ID the first one counts and the rest are ignored.
//
// If fewer than r nodes are eligible, Place returns all of them (best spread first) together with an
// error wrapping ErrNotEnoughNodes. r < 1 is an error wrapping ErrInvalidPolicy.
func Place(nodes []Candidate, r int, exclude []string, haveAZs []string, seed uint64) ([]string, error) {
	if r < 1 {
		return nil, fmt.Errorf("%w: replica count %d, want at least 1", ErrInvalidPolicy, r)
	}
	excluded := make(map[string]bool, len(exclude)+len(nodes))
	for _, id := range exclude {
		excluded[id] = true
	}

	type ranked struct {
		Candidate
		order uint64
	}
	eligible := make([]ranked, 0, len(nodes))
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		if !n.Up || n.Full || excluded[n.ID] {
			continue
		}
		if n.Free < 0 {
			n.Free = -1 // all unknowns are equal
		}
		eligible = append(eligible, ranked{Candidate: n, order: spreadOrder(seed, n.ID)})
	}
	// Best candidate first, ignoring AZ load; the AZ rule is applied while picking.
	slices.SortFunc(eligible, func(a, b ranked) int {
		if c := cmp.Compare(b.Free, a.Free); c != 0 {
			return c
		}
		if c := cmp.Compare(a.order, b.order); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})

	perAZ := make(map[string]int, len(haveAZs)+len(eligible))
	for _, az := range haveAZs {
		perAZ[az]++
	}
	picked := make([]string, 0, min(r, len(eligible)))
	taken := make([]bool, len(eligible))
	for len(picked) < r {
		best := -1
		for i, c := range eligible {
			if taken[i] {
				continue
			}
			// Strictly fewer replicas in its AZ wins; on a tie the earlier (better ranked) one stays.
			if best < 0 || perAZ[c.AZ] < perAZ[eligible[best].AZ] {
				best = i
			}
		}
		if best < 0 {
			return picked, fmt.Errorf("%w: want %d, only %d eligible (up, not full and not excluded)",
				ErrNotEnoughNodes, r, len(picked))
		}
		taken[best] = true
		perAZ[eligible[best].AZ]++
		picked = append(picked, eligible[best].ID)
	}
	return picked, nil
}

// spreadOrder is the tie-breaking rank of a node for one seed: FNV-1a over the seed and the node ID,
// finished with the splitmix64 mixer because FNV alone barely moves the high bits when IDs differ
// only in their last byte (n1, n2, ...), which would hand most chunks to one node.
func spreadOrder(seed uint64, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// CheckPolicy tells whether a volume with r replicas and write quorum wq keeps accepting writes after
// losing the AZ that holds the most replicas, when replicas are spread evenly over azs AZs (the number
// of AZs that have nodes). The fullest AZ then holds ceil(r/azs) replicas, and the volume survives iff
// the rest still reach the write quorum. It returns nil when the policy is safe, an error wrapping
// ErrUnsafePlacement that explains why and what to change when it is not, and an error wrapping
// ErrInvalidPolicy when r < 1, wq < 1, wq > r or azs < 1.
func CheckPolicy(r, wq, azs int) error {
	switch {
	case r < 1:
		return fmt.Errorf("%w: replica count %d, want at least 1", ErrInvalidPolicy, r)
	case wq < 1:
		return fmt.Errorf("%w: write quorum %d, want at least 1", ErrInvalidPolicy, wq)
	case wq > r:
		return fmt.Errorf("%w: write quorum %d exceeds the replica count %d", ErrInvalidPolicy, wq, r)
	case azs < 1:
		return fmt.Errorf("%w: %d AZs with nodes, want at least 1", ErrInvalidPolicy, azs)
	}
	if survives(r, wq, azs) {
		return nil
	}
	maxPerAZ := (r + azs - 1) / azs
	left := r - maxPerAZ
	return fmt.Errorf("%w: %s over %s puts %d in one AZ; losing it leaves %d, fewer than the write quorum %d; %s",
		ErrUnsafePlacement, plural(r, "replica"), plural(azs, "AZ"), maxPerAZ, left, wq, policyFixes(r, wq, azs))
}

// survives is the CheckPolicy rule for valid arguments.
func survives(r, wq, azs int) bool {
	return r-(r+azs-1)/azs >= wq
}

// policyFixes lists, for an unsafe policy, the single changes that would make it safe.
func policyFixes(r, wq, azs int) string {
	var fixes []string
	// More AZs thin out the fullest one, up to one replica per AZ.
	for a := azs + 1; a <= r; a++ {
		if survives(r, wq, a) {
			if a == azs+1 {
				fixes = append(fixes, "add an AZ")
			} else {
				fixes = append(fixes, fmt.Sprintf("add %d AZs", a-azs))
			}
			break
		}
	}
	// More replicas over the same AZs: with at least 2 AZs, 2*wq+1 replicas always survive.
	if azs >= 2 {
		for n := r + 1; n <= 2*wq+1; n++ {
			if survives(n, wq, azs) {
				fixes = append(fixes, fmt.Sprintf("raise the replica count to %d", n))
				break
			}
		}
	}
	// A lower quorum is only worth suggesting while it remains a majority.
	if left := r - (r+azs-1)/azs; left >= DefaultWriteQuorum(r) {
		fixes = append(fixes, fmt.Sprintf("lower the write quorum to %d", left))
	}
	if len(fixes) == 0 {
		fixes = append(fixes, "add AZs and replicas")
	}
	fixes = append(fixes, "pass --allow-unsafe-placement")
	if len(fixes) == 2 {
		return fixes[0] + " or " + fixes[1]
	}
	return strings.Join(fixes[:len(fixes)-1], ", ") + ", or " + fixes[len(fixes)-1]
}

// DefaultWriteQuorum returns a majority of r replicas: r/2+1.
func DefaultWriteQuorum(r int) int {
	return r/2 + 1
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
