package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Operator changes of Raft roles (fsrepctl node add): the admin API calls
// SetNodeRole on the leader.
//
// The healer (replication.PlanVoters, run at every healer pass) keeps one
// voter per AZ, at most five, at least three, and replaces lost voters. An
// operator's change must not fight it, so a change is planned against the
// same rules:
//
//   - a promotion never makes a voter set that survives losing one AZ into
//     one that does not: when the node's AZ already has its voter, the vote
//     moves to the node (the AZ's other voter becomes a non-voter), which
//     keeps the count per AZ; the healer never demotes a live voter, so a
//     promotion stays;
//   - a demotion first promotes whatever node the healer would promote in
//     its place (another up, non-draining node of the same AZ, usually),
//     and is refused when the healer would promote the demoted node itself
//     again (it is the only node of its AZ that can vote);
//   - the leader is never demoted here (hand the leadership over first),
//     and a node that is draining, down or suspect gets no vote.
//
// A voter is demoted by removing it and adding it back as a non-voter, as
// the healer does (meta has no one-step demotion). Promotions come first,
// so the voters never drop below their number during a change. An
// operator change holds the healer's voter lock from reading the
// membership to its last step, so neither the healer nor another
// operator change plans from a membership that is being changed.

var _ admin.RoleSetter = (*Node)(nil)

// SetNodeRole makes registered node id a voter or a non-voter (see
// admin.RoleSetter). It runs on the leader.
func (n *Node) SetNodeRole(ctx context.Context, id string, voter *bool, allowUnsafe bool) ([]string, error) {
	if !n.meta.IsLeader() {
		return nil, fmt.Errorf("%w: %s is not the leader; membership changes are made by the leader", meta.ErrNoLeader, n.cfg.NodeID)
	}
	info, err := n.meta.FSM().Node(id)
	if err != nil {
		return nil, err
	}
	defer n.heal.healer.HoldVoters()()
	members, err := n.meta.Members()
	if err != nil {
		return nil, err
	}
	nodes, err := n.meta.FSM().Nodes()
	if err != nil {
		return nil, err
	}
	if voter == nil {
		if _, member := members[id]; member {
			return nil, nil
		}
		want := n.wantVoter(*info, members)
		voter = &want
	}
	p := rolePlanner{
		target: id, leader: n.cfg.NodeID, members: members,
		topo:      replication.NewTopology(nodes, n.heal.live.Peer, n.heal.grace),
		maxVoters: n.cfg.healerConfig().MaxVoters, allowUnsafe: allowUnsafe,
	}
	plan, err := p.plan(*voter)
	if err != nil {
		return nil, err
	}
	addr := map[string]string{}
	for _, x := range nodes {
		addr[x.ID] = x.RaftAddr
	}
	for _, s := range plan.steps {
		if err := n.applyRoleStep(s, members, addr[s.id]); err != nil {
			return nil, err
		}
		n.log.Warn("raft role changed by the operator", "member", s.id, "voter", s.voter)
	}
	return plan.notes, nil
}

// applyRoleStep makes one membership change: AddMember promotes a
// non-voter or adds a new member; a voter is demoted by removing it and
// adding it back as a non-voter.
func (n *Node) applyRoleStep(s roleStep, members map[string]bool, raftAddr string) error {
	isVoter, member := members[s.id]
	if s.voter || !member {
		return n.meta.AddMember(s.id, raftAddr, s.voter)
	}
	if !isVoter {
		return nil
	}
	if err := n.meta.RemoveMember(s.id); err != nil {
		return err
	}
	if err := n.meta.AddMember(s.id, raftAddr, false); err != nil {
		return fmt.Errorf("%s was taken out of the Raft group to be demoted, but could not be added back as a non-voter "+
			"(retry: fsrepctl node add %s --nonvoter): %w", s.id, s.id, err)
	}
	return nil
}

// roleStep makes node id a voter or a non-voter.
type roleStep struct {
	id    string
	voter bool
}

type rolePlan struct {
	steps []roleStep
	notes []string
}

// rolePlanner decides a role change from one snapshot; it does no I/O.
type rolePlanner struct {
	target      string
	leader      string
	members     map[string]bool // Raft member -> voter
	topo        *replication.Topology
	maxVoters   int
	allowUnsafe bool
}

// plan returns the steps that make target a voter (true) or a non-voter.
func (p rolePlanner) plan(voter bool) (rolePlan, error) {
	isVoter, member := p.members[p.target]
	if member && isVoter == voter {
		return rolePlan{}, nil
	}
	if voter {
		return p.promote()
	}
	if !member {
		return p.admitNonVoter(), nil
	}
	return p.demote()
}

func (p rolePlanner) az(id string) string {
	if n, ok := p.topo.Nodes[id]; ok {
		return n.AZ
	}
	return "?" + id // an unregistered member is a failure domain of its own
}

// voters lists the voters of m, sorted.
func voters(m map[string]bool) []string {
	var out []string
	for id, v := range m {
		if v {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// survivesAZLoss tells whether the voters of m keep a majority when any
// one AZ is lost.
func (p rolePlanner) survivesAZLoss(m map[string]bool) bool {
	vs := voters(m)
	per := map[string]int{}
	for _, id := range vs {
		per[p.az(id)]++
	}
	for _, k := range per {
		if 2*(len(vs)-k) <= len(vs) {
			return false
		}
	}
	return len(vs) > 0
}

// spread describes the voters of m per AZ, for messages: "az1: n1, n4; az2: n2".
func (p rolePlanner) spread(m map[string]bool) string {
	per := map[string][]string{}
	for _, id := range voters(m) {
		per[p.az(id)] = append(per[p.az(id)], id)
	}
	var parts []string
	for _, az := range slices.Sorted(maps.Keys(per)) {
		parts = append(parts, az+": "+strings.Join(per[az], ", "))
	}
	return strings.Join(parts, "; ")
}

// acceptable: after is no worse than before at surviving the loss of an AZ
// (or the operator insists).
func (p rolePlanner) acceptable(after map[string]bool) bool {
	return p.allowUnsafe || p.survivesAZLoss(after) || !p.survivesAZLoss(p.members)
}

func with(m map[string]bool, changes ...roleStep) map[string]bool {
	out := maps.Clone(m)
	for _, s := range changes {
		out[s.id] = s.voter
	}
	return out
}

func (p rolePlanner) promote() (rolePlan, error) {
	t, az := p.topo.Nodes[p.target], p.az(p.target)
	switch {
	case t.Draining:
		return rolePlan{}, fmt.Errorf("%w: %s is draining: a node on its way out gets no vote (fsrepctl node undrain %s first)",
			meta.ErrInvalid, p.target, p.target)
	case t.State == replication.StateDown || t.State == replication.StateSuspect:
		return rolePlan{}, fmt.Errorf("%w: %s is %s: a voter that does not answer counts against the majority; wait until it is up",
			admin.ErrUnsafeVoters, p.target, t.State)
	}
	add := roleStep{p.target, true}
	after := with(p.members, add)
	if len(voters(after)) <= p.maxVoters && p.acceptable(after) {
		plan := rolePlan{steps: []roleStep{add}}
		if !p.survivesAZLoss(after) && p.survivesAZLoss(p.members) {
			plan.notes = append(plan.notes, fmt.Sprintf("the voters (%s) no longer keep a majority when one AZ is lost (--allow-unsafe-voters)", p.spread(after)))
		}
		return plan, nil
	}
	// Move the vote of the target's AZ to the target instead of adding one,
	// taking it from a voter that is not up when there is one.
	var leaderHere bool
	vs := voters(p.members)
	slices.SortStableFunc(vs, func(a, b string) int { return p.rank(a) - p.rank(b) })
	for _, v := range vs {
		if p.az(v) != az {
			continue
		}
		if v == p.leader {
			leaderHere = true
			continue
		}
		demote := roleStep{v, false}
		return rolePlan{steps: []roleStep{add, demote}, notes: []string{fmt.Sprintf(
			"the vote of %s moved from %s to %s: another voter in %s would not keep a majority when one AZ is lost", az, v, p.target, az)}}, nil
	}
	if leaderHere {
		return rolePlan{}, fmt.Errorf("%w: the vote of %s is held by the leader %s, and another voter in %s would not keep a majority when one AZ is lost "+
			"(voters %s); hand the leadership over first (fsrepctl leader transfer), then retry so that the vote moves to %s",
			meta.ErrInvalid, az, p.leader, az, p.spread(p.members), p.target)
	}
	if len(voters(after)) > p.maxVoters {
		return rolePlan{}, fmt.Errorf("%w: the group has %d voters (%s), the most it keeps; demote one first (fsrepctl node add NODE --nonvoter)",
			admin.ErrUnsafeVoters, len(voters(p.members)), p.spread(p.members))
	}
	return rolePlan{}, fmt.Errorf("%w: with %s voting, the voters (%s) would not keep a majority when one AZ is lost; "+
		"pass --allow-unsafe-voters to insist", admin.ErrUnsafeVoters, p.target, p.spread(after))
}

// rank orders voters for giving up their vote: down, suspect, then up.
func (p rolePlanner) rank(id string) int {
	switch p.topo.Nodes[id].State {
	case replication.StateDown:
		return 0
	case replication.StateSuspect:
		return 1
	}
	return 2
}

// admitNonVoter adds a registered node that is not a member as a non-voter.
func (p rolePlanner) admitNonVoter() rolePlan {
	plan := rolePlan{steps: []roleStep{{p.target, false}}}
	after := with(p.members, roleStep{p.target, false})
	if slices.Contains(healerPromotes(p.topo, after, p.maxVoters), p.target) {
		plan.notes = append(plan.notes, fmt.Sprintf("the healer will promote %s to voter at its next pass: %s has no other node that can vote",
			p.target, p.az(p.target)))
	}
	return plan
}

func (p rolePlanner) demote() (rolePlan, error) {
	if p.target == p.leader {
		return rolePlan{}, fmt.Errorf("%w: %s leads the metadata group and cannot be demoted by itself; hand the leadership over first "+
			"(fsrepctl leader transfer), then retry", meta.ErrInvalid, p.target)
	}
	demote := roleStep{p.target, false}
	after := with(p.members, demote)
	// Whom the healer would promote once the target stopped voting,
	// leaving the target itself out of its choice...
	others := p.topo
	if t, ok := p.topo.Nodes[p.target]; ok {
		others = &replication.Topology{Nodes: maps.Clone(p.topo.Nodes), Grace: p.topo.Grace, Load: p.topo.Load}
		t.Draining = true
		others.Nodes[p.target] = t
	}
	before := healerPromotes(others, p.members, p.maxVoters)
	var steps []roleStep
	var notes []string
	for _, id := range healerPromotes(others, after, p.maxVoters) {
		if !slices.Contains(before, id) {
			steps = append(steps, roleStep{id, true})
			notes = append(notes, fmt.Sprintf("%s takes over the vote of %s (as the healer would)", id, p.target))
		}
	}
	// ...and whether, with those, it would still promote the target again.
	if slices.Contains(healerPromotes(p.topo, with(after, steps...), p.maxVoters), p.target) {
		return rolePlan{}, fmt.Errorf("%w: the healer would promote %s again: it is the only node of %s that can take the vote "+
			"(the healer keeps one voter per AZ and at least three); add another node to %s first, then this moves the vote to it",
			admin.ErrUnsafeVoters, p.target, p.az(p.target), p.az(p.target))
	}
	steps = append(steps, demote)
	final := with(p.members, steps...)
	if !p.acceptable(final) {
		return rolePlan{}, fmt.Errorf("%w: without %s voting, the voters (%s) would not keep a majority when one AZ is lost; "+
			"pass --allow-unsafe-voters to insist", admin.ErrUnsafeVoters, p.target, p.spread(final))
	}
	if !p.survivesAZLoss(final) && p.survivesAZLoss(p.members) {
		notes = append(notes, fmt.Sprintf("the voters (%s) no longer keep a majority when one AZ is lost (--allow-unsafe-voters)", p.spread(final)))
	}
	return rolePlan{steps: steps, notes: notes}, nil
}

// healerPromotes lists the nodes the healer would promote, pass after pass,
// starting from the members m (replication.PlanVoters on t applied until
// it has nothing left to change).
func healerPromotes(t *replication.Topology, m map[string]bool, maxVoters int) []string {
	m = maps.Clone(m)
	var out []string
	for range 2*len(m) + 2 { // each change adds a voter or swaps a lost one out
		ch := replication.PlanVoters(t, m, maxVoters)
		if ch == (replication.VoterChange{}) {
			break
		}
		if ch.Demote != "" {
			m[ch.Demote] = false
		}
		if ch.Promote != "" {
			m[ch.Promote] = true
			out = append(out, ch.Promote)
		}
	}
	return out
}
