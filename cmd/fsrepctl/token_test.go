package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

func TestTokenRotate(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "token", "rotate", "--grace", "30m")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "generation 1") || !strings.Contains(r.stdout, "token-gen-1") ||
		!strings.Contains(r.stdout, "2025-01-01T00:30:00Z") {
		t.Errorf("token rotate:\n%s", r)
	}
	r = cl.ctl(t, "token", "rotate", "-o", "json")
	wantExit(t, r, exitOK)
	var res admin.RotateResponse
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Generation != 2 || res.Token != "token-gen-2" ||
		!res.PreviousValidUntil.Equal(time.Date(2025, 1, 1, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("token rotate -o json: %+v %v\n%s", res, err, r.stdout)
	}
	wantExit(t, cl.ctl(t, "token", "rotate", "--grace", "200h"), exitUsage)
	wantExit(t, cl.ctl(t, "token", "rotate", "extra"), exitUsage)
	wantExit(t, newPlainCluster(t, threeAZs...).ctl(t, "token", "rotate"), exitError)
}
