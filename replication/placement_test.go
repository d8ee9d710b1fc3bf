package replication

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func node(id, az string, free int64) Candidate {
	return Candidate{ID: id, AZ: az, Free: free, Up: true}
}

// threeByTwo is 3 AZs with 2 equal nodes each.
func threeByTwo() []Candidate {
	return []Candidate{
		node("a1", "a", 100), node("a2", "a", 100),
		node("b1", "b", 100), node("b2", "b", 100),
		node("c1", "c", 100), node("c2", "c", 100),
	}
}

func azOf(nodes []Candidate) map[string]string {
	m := make(map[string]string, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.AZ
	}
	return m
}

func TestPlace(t *testing.T) {
	down := func(c Candidate) Candidate { c.Up = false; return c }
	tests := []struct {
		name    string
		nodes   []Candidate
		r       int
		exclude []string
		have    []string
		want    []string // exact IDs in order, when the choice is fully determined
		wantAZs []string // sorted AZs of the picks, when only the spread is determined
		wantErr error
	}{
		{
			name:    "distinct AZs",
			nodes:   threeByTwo(),
			r:       3,
			wantAZs: []string{"a", "b", "c"},
		},
		{
			name: "free space decides within the spread",
			nodes: []Candidate{
				node("a1", "a", 10), node("a2", "a", 500),
				node("b1", "b", 900), node("b2", "b", 20),
				node("c1", "c", 30), node("c2", "c", 40),
			},
			r:    3,
			want: []string{"b1", "a2", "c2"},
		},
		{
			name: "unknown free space ranks below known",
			nodes: []Candidate{
				node("a1", "a", -1), node("a2", "a", 0),
			},
			r:    1,
			want: []string{"a2"},
		},
		{
			name: "free space never beats AZ spread",
			nodes: []Candidate{
				node("a1", "a", 1000), node("a2", "a", 999),
				node("b1", "b", 1),
			},
			r:    2,
			want: []string{"a1", "b1"},
		},
		{
			name: "down nodes skipped",
			nodes: []Candidate{
				down(node("a1", "a", 1000)), node("a2", "a", 1),
				node("b1", "b", 1), down(node("c1", "c", 1000)),
			},
			r:    2,
			want: []string{"a2", "b1"},
		},
		{
			name:    "exclude honoured",
			nodes:   threeByTwo(),
			r:       3,
			exclude: []string{"a1", "b1", "c1"},
			want:    []string{"a2", "b2", "c2"},
		},
		{
			name:    "re-replication picks an AZ not holding the chunk",
			nodes:   threeByTwo(),
			r:       1,
			exclude: []string{"a1", "b1"},
			have:    []string{"a", "b"},
			wantAZs: []string{"c"},
		},
		{
			name: "re-replication with the missing AZ empty doubles up the least loaded",
			nodes: []Candidate{
				node("a1", "a", 1), node("a2", "a", 1),
				node("b1", "b", 1), node("b2", "b", 5),
			},
			r:       1,
			exclude: []string{"a1", "b1"},
			have:    []string{"a", "a", "b"},
			want:    []string{"b2"},
		},
		{
			name: "3 replicas over 2 AZs place 2+1",
			nodes: []Candidate{
				node("a1", "a", 1), node("a2", "a", 1), node("a3", "a", 1),
				node("b1", "b", 1), node("b2", "b", 1), node("b3", "b", 1),
			},
			r:       3,
			wantAZs: nil, // checked below: one AZ holds 2, the other 1
		},
		{
			name: "duplicate IDs count once",
			nodes: []Candidate{
				node("a1", "a", 1), node("a1", "b", 1),
			},
			r:       2,
			want:    []string{"a1"},
			wantErr: ErrNotEnoughNodes,
		},
		{
			name: "not enough nodes returns what it can",
			nodes: []Candidate{
				node("a1", "a", 1), node("b1", "b", 1), down(node("c1", "c", 1)),
			},
			r:       3,
			wantAZs: []string{"a", "b"},
			wantErr: ErrNotEnoughNodes,
		},
		{
			name:    "no nodes",
			r:       1,
			wantAZs: []string{},
			wantErr: ErrNotEnoughNodes,
		},
		{
			name:    "zero replicas",
			nodes:   threeByTwo(),
			r:       0,
			wantErr: ErrInvalidPolicy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(20) {
				got, err := Place(tt.nodes, tt.r, tt.exclude, tt.have, seed)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("seed %d: err = %v, want %v", seed, err, tt.wantErr)
				}
				if err == nil && len(got) != tt.r {
					t.Fatalf("seed %d: got %d nodes %v without error, want %d", seed, len(got), got, tt.r)
				}
				checkDistinct(t, got, tt.exclude)
				azs := azOf(tt.nodes)
				if tt.want != nil {
					// Order among the picks is an implementation detail; the set is the contract.
					w, g := slices.Clone(tt.want), slices.Clone(got)
					slices.Sort(w)
					slices.Sort(g)
					if !slices.Equal(g, w) {
						t.Fatalf("seed %d: got %v, want %v", seed, got, tt.want)
					}
				}
				if tt.wantAZs != nil {
					var gotAZs []string
					for _, id := range got {
						gotAZs = append(gotAZs, azs[id])
					}
					slices.Sort(gotAZs)
					if !slices.Equal(gotAZs, tt.wantAZs) && !(len(gotAZs) == 0 && len(tt.wantAZs) == 0) {
						t.Fatalf("seed %d: got %v in AZs %v, want AZs %v", seed, got, gotAZs, tt.wantAZs)
					}
				}
			}
		})
	}
}

func checkDistinct(t *testing.T, got, exclude []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("node %s picked twice in %v", id, got)
		}
		if slices.Contains(exclude, id) {
			t.Fatalf("excluded node %s picked in %v", id, got)
		}
		seen[id] = true
	}
}

func TestPlaceTwoAZsSplitsTwoPlusOne(t *testing.T) {
	nodes := []Candidate{
		node("a1", "a", 1), node("a2", "a", 1), node("a3", "a", 1),
		node("b1", "b", 1), node("b2", "b", 1), node("b3", "b", 1),
	}
	azs := azOf(nodes)
	for seed := range uint64(50) {
		got, err := Place(nodes, 3, nil, nil, seed)
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, id := range got {
			per[azs[id]]++
		}
		if len(per) != 2 || per["a"]+per["b"] != 3 || per["a"] == 0 || per["b"] == 0 {
			t.Fatalf("seed %d: %v spread as %v, want 2+1", seed, got, per)
		}
	}
}

func TestPlaceDeterministic(t *testing.T) {
	nodes := threeByTwo()
	reversed := slices.Clone(nodes)
	slices.Reverse(reversed)
	for seed := range uint64(100) {
		a, errA := Place(nodes, 3, nil, nil, seed)
		b, errB := Place(nodes, 3, nil, nil, seed)
		c, errC := Place(reversed, 3, nil, nil, seed)
		if errA != nil || errB != nil || errC != nil {
			t.Fatal(errA, errB, errC)
		}
		if !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Fatalf("seed %d: same input gave %v, %v and (reversed input) %v", seed, a, b, c)
		}
	}
}

func TestPlaceSpreadsOverEqualNodes(t *testing.T) {
	const nodesInAZ, chunks = 5, 1000
	var nodes []Candidate
	for i := range nodesInAZ {
		nodes = append(nodes, node(fmt.Sprintf("n%d", i), "a", 1<<30))
	}
	count := map[string]int{}
	for seed := range uint64(chunks) {
		got, err := Place(nodes, 1, nil, nil, seed)
		if err != nil {
			t.Fatal(err)
		}
		count[got[0]]++
	}
	// A fair spread puts 200 on each; a broken tie-break puts 1000 on one.
	for _, n := range nodes {
		if c := count[n.ID]; c < chunks/nodesInAZ/2 || c > chunks/nodesInAZ*2 {
			t.Fatalf("node %s got %d of %d chunks: %v", n.ID, c, chunks, count)
		}
	}
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		name      string
		r, wq     int
		azs       int
		wantErr   error
		wantInMsg []string
	}{
		{name: "3 replicas over 3 AZs", r: 3, wq: 2, azs: 3},
		{name: "3 replicas over 4 AZs", r: 3, wq: 2, azs: 4},
		{name: "5 replicas over 3 AZs, quorum 3", r: 5, wq: 3, azs: 3},
		{name: "2 replicas, quorum 1, 2 AZs", r: 2, wq: 1, azs: 2},
		{
			name: "3 replicas over 2 AZs", r: 3, wq: 2, azs: 2, wantErr: ErrUnsafePlacement,
			wantInMsg: []string{"3 replicas over 2 AZs puts 2 in one AZ", "leaves 1", "write quorum 2", "add an AZ", "--allow-unsafe-placement"},
		},
		{
			name: "3 replicas in 1 AZ", r: 3, wq: 2, azs: 1, wantErr: ErrUnsafePlacement,
			wantInMsg: []string{"3 replicas over 1 AZ puts 3 in one AZ", "leaves 0", "add 2 AZs"},
		},
		{
			name: "one replica", r: 1, wq: 1, azs: 3, wantErr: ErrUnsafePlacement,
			wantInMsg: []string{"1 replica over 3 AZs puts 1 in one AZ", "leaves 0", "raise the replica count"},
		},
		{
			name: "quorum of all replicas", r: 3, wq: 3, azs: 3, wantErr: ErrUnsafePlacement,
			wantInMsg: []string{"leaves 2", "lower the write quorum to 2"},
		},
		{name: "5 replicas over 3 AZs, quorum 4", r: 5, wq: 4, azs: 3, wantErr: ErrUnsafePlacement},
		{name: "zero replicas", r: 0, wq: 1, azs: 3, wantErr: ErrInvalidPolicy},
		{name: "zero quorum", r: 3, wq: 0, azs: 3, wantErr: ErrInvalidPolicy},
		{name: "quorum above replicas", r: 3, wq: 4, azs: 3, wantErr: ErrInvalidPolicy},
		{name: "no AZs", r: 3, wq: 2, azs: 0, wantErr: ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPolicy(tt.r, tt.wq, tt.azs)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckPolicy(%d, %d, %d) = %v, want %v", tt.r, tt.wq, tt.azs, err, tt.wantErr)
			}
			if err != nil && errors.Is(err, ErrUnsafePlacement) == errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v should be exactly one of unsafe or invalid", err)
			}
			for _, s := range tt.wantInMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}

func TestDefaultWriteQuorum(t *testing.T) {
	for r, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		if got := DefaultWriteQuorum(r); got != want {
			t.Errorf("DefaultWriteQuorum(%d) = %d, want %d", r, got, want)
		}
	}
	// The default must be safe for an odd replica count with one AZ per replica (a majority of 2 is 2,
	// which cannot lose either replica).
	for r := 3; r <= 7; r += 2 {
		if err := CheckPolicy(r, DefaultWriteQuorum(r), r); err != nil {
			t.Errorf("default quorum for %d replicas over %d AZs: %v", r, r, err)
		}
	}
}

// TestPlaceSkipsFull: a full node gets no new replica, whatever its free
// space figure or its AZ, even when that leaves fewer than r.
func TestPlaceSkipsFull(t *testing.T) {
	full := func(c Candidate) Candidate { c.Full = true; return c }
	nodes := []Candidate{node("a1", "a", 1000), full(node("b1", "b", 5000)), node("c1", "c", 100), node("c2", "c", 100)}
	for seed := range uint64(50) {
		got, err := Place(nodes, 3, nil, nil, seed)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if slices.Contains(got, "b1") || len(got) != 3 {
			t.Fatalf("seed %d: %v, want three without the full b1", seed, got)
		}
	}
	nodes = []Candidate{full(node("a1", "a", 1000)), full(node("b1", "b", 5000)), node("c1", "c", 100)}
	got, err := Place(nodes, 3, nil, nil, 1)
	if !errors.Is(err, ErrNotEnoughNodes) || !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("two of three full: %v, %v; want [c1] and ErrNotEnoughNodes", got, err)
	}
}
