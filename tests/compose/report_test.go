//go:build compose

package compose

import (
	"testing"

	"github.com/fsrep/fsrep/internal/workload"
)

// TestSummary checks the report's arithmetic without Docker: medians and
// maxima over the runs that reached a figure, totals over every client.
func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want stat
	}{
		{[]float64{3, 1, 2}, stat{Median: 2, Max: 3}},
		{[]float64{4, 1}, stat{Median: 2.5, Max: 4}},
		{[]float64{-1, 5, 1}, stat{Median: 3, Max: 5, Missed: 1}},
		{[]float64{-1}, stat{Median: -1, Max: -1, Missed: 1}},
	} {
		if got := statOf(tc.in); got != tc.want {
			t.Errorf("statOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	ret := 7.0
	rs := []*result{
		{Scenario: "a", Rep: 1, FaultToWrite: 1, FullReplication: 10, Pass: true, CheckClean: true,
			Workload: &workload.Report{AckedWrites: 10}, Minority: &minority{Accepted: 0},
			Others: map[string]*workload.Report{"client-az1": {AckedWrites: 5, LostWrites: 1}}},
		{Scenario: "b", Rep: 1, FaultToWrite: 9, ReturnFull: &ret, Workload: &workload.Report{AckedWrites: 3}, Problems: []string{"x"}},
		{Scenario: "a", Rep: 2, FaultToWrite: 3, FullReplication: -1, Workload: &workload.Report{AckedWrites: 10, Stale: 2},
			Minority: &minority{Accepted: 1}},
	}
	sums := summarize(rs)
	if len(sums) != 2 || sums[0].Scenario != "a" || sums[1].Scenario != "b" {
		t.Fatalf("summaries %+v", sums)
	}
	a := sums[0]
	if a.Runs != 2 || a.Passed != 1 || a.CheckClean != 1 || a.Acked != 25 || a.Lost != 1 || a.Stale != 2 ||
		a.Accepted == nil || *a.Accepted != 1 || a.FaultToWrite != (stat{Median: 2, Max: 3}) ||
		a.Full != (stat{Median: 10, Max: 10, Missed: 1}) || a.ReturnFull != nil {
		t.Errorf("scenario a: %+v", a)
	}
	if b := sums[1]; b.ReturnFull == nil || b.ReturnFull.Median != 7 || len(b.Problems) != 1 || b.Accepted != nil {
		t.Errorf("scenario b: %+v", b)
	}
}
