package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

func TestHandleKeyRotate(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "handle-key", "rotate", "--grace", "48h")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "generation 1") || !strings.Contains(r.stdout, "2025-01-03T00:00:00Z") {
		t.Errorf("handle-key rotate:\n%s", r)
	}
	r = cl.ctl(t, "handle-key", "rotate", "-o", "json")
	wantExit(t, r, exitOK)
	var res admin.HandleKeyRotateResponse
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Generation != 2 ||
		!res.PreviousValidUntil.Equal(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("handle-key rotate -o json: %+v %v\n%s", res, err, r.stdout)
	}
	wantExit(t, cl.ctl(t, "handle-key", "rotate", "--grace", "721h"), exitUsage)
	wantExit(t, cl.ctl(t, "handle-key", "rotate", "extra"), exitUsage)
	wantExit(t, newPlainCluster(t, threeAZs...).ctl(t, "handle-key", "rotate"), exitError)
}
