package admintest

import (
	"context"
	"slices"
)

// SetNodeRole implements admin.RoleSetter without any voter policy: the
// node moves between the voters and the non-voters of the Raft status;
// voter nil adds a non-member as a non-voter and leaves a member alone.
func (b *Backend) SetNodeRole(_ context.Context, id string, voter *bool, _ bool) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.status
	member := slices.Contains(st.Voters, id) || slices.Contains(st.NonVoters, id)
	if voter == nil {
		if member {
			return nil, nil
		}
		v := false
		voter = &v
	}
	// New slices: Status hands out the old ones.
	other := func(x string) bool { return x == id }
	st.Voters = slices.DeleteFunc(slices.Clone(st.Voters), other)
	st.NonVoters = slices.DeleteFunc(slices.Clone(st.NonVoters), other)
	if *voter {
		st.Voters = append(st.Voters, id)
	} else {
		st.NonVoters = append(st.NonVoters, id)
	}
	return nil, nil
}
