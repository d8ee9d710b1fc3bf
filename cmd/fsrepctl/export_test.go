package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

// exportRow is the data row of export show / export set, split into fields.
func exportRow(t *testing.T, r result) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "VOLUME ACCESS CLIENTS SQUASH ANON" {
		t.Fatalf("export table:\n%s", r)
	}
	return strings.Fields(lines[1])
}

func TestExportShow(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)

	r := cl.ctl(t, "export", "show", "data")
	wantExit(t, r, exitOK)
	if f := exportRow(t, r); !reflect.DeepEqual(f, []string{"data", "rw", "*", "root_squash", "65534:65534"}) {
		t.Errorf("default export row: %q", f)
	}

	r = cl.ctl(t, "export", "show", "data", "-o", "json")
	wantExit(t, r, exitOK)
	var e meta.Export
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || !reflect.DeepEqual(e, meta.DefaultExport()) {
		t.Errorf("show -o json: %+v %v\n%s", e, err, r.stdout)
	}

	r = cl.ctl(t, "export", "show", "nope")
	wantExit(t, r, exitNotFound)
	if !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("show of a missing volume:\n%s", r)
	}
}

func TestExportSet(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)
	stored := func() meta.Export {
		t.Helper()
		v, err := cl.b.FSM().Volume("data")
		if err != nil {
			t.Fatal(err)
		}
		return v.Export
	}

	// Each call changes only what it names; the rest is kept.
	for _, step := range []struct {
		args []string
		row  []string
		want meta.Export
	}{
		{[]string{"--ro"}, []string{"data", "ro", "*", "root_squash", "65534:65534"},
			meta.Export{ReadOnly: true, Squash: meta.SquashRoot, AnonUID: 65534, AnonGID: 65534}},
		{[]string{"--clients", "10.0.0.0/8, 192.168.1.0/24"}, []string{"data", "ro", "10.0.0.0/8,192.168.1.0/24", "root_squash", "65534:65534"},
			meta.Export{ReadOnly: true, Clients: []string{"10.0.0.0/8", "192.168.1.0/24"}, Squash: meta.SquashRoot, AnonUID: 65534, AnonGID: 65534}},
		{[]string{"--squash", "all_squash", "--anon-uid", "1000"}, []string{"data", "ro", "10.0.0.0/8,192.168.1.0/24", "all_squash", "1000:65534"},
			meta.Export{ReadOnly: true, Clients: []string{"10.0.0.0/8", "192.168.1.0/24"}, Squash: meta.SquashAll, AnonUID: 1000, AnonGID: 65534}},
		{[]string{"--anon-gid", "4294967295", "--rw"}, []string{"data", "rw", "10.0.0.0/8,192.168.1.0/24", "all_squash", "1000:4294967295"},
			meta.Export{Clients: []string{"10.0.0.0/8", "192.168.1.0/24"}, Squash: meta.SquashAll, AnonUID: 1000, AnonGID: 4294967295}},
		{[]string{"--clients", "*", "--squash", "no_root_squash"}, []string{"data", "rw", "*", "no_root_squash", "1000:4294967295"},
			meta.Export{Squash: meta.SquashNone, AnonUID: 1000, AnonGID: 4294967295}},
		{[]string{"--ro=false", "--anon-gid", "0"}, []string{"data", "rw", "*", "no_root_squash", "1000:0"},
			meta.Export{Squash: meta.SquashNone, AnonUID: 1000}},
	} {
		r := cl.ctl(t, append([]string{"export", "set", "data"}, step.args...)...)
		wantExit(t, r, exitOK)
		if f := exportRow(t, r); !reflect.DeepEqual(f, step.row) {
			t.Errorf("%q: row %q, want %q", step.args, f, step.row)
		}
		if got := stored(); !reflect.DeepEqual(got, step.want) {
			t.Fatalf("%q: stored %+v, want %+v", step.args, got, step.want)
		}
	}

	// Flags before the name, JSON output of the export as set.
	r := cl.ctl(t, "export", "set", "--ro", "data", "-o", "json")
	wantExit(t, r, exitOK)
	var e meta.Export
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || !e.ReadOnly || !reflect.DeepEqual(e, stored()) {
		t.Errorf("set -o json: %+v %v\n%s", e, err, r.stdout)
	}

	// volume info shows the export.
	r = cl.ctl(t, "volume", "info", "data")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Export:        /data", "Access:        ro, clients *", "Squash:        no_root_squash\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	wantExit(t, cl.ctl(t, "export", "set", "data", "--squash", "all_squash", "--clients", "10.1.0.0/16"), exitOK)
	r = cl.ctl(t, "volume", "info", "data")
	if !strings.Contains(r.stdout, "Access:        ro, clients 10.1.0.0/16") || !strings.Contains(r.stdout, "Squash:        all_squash (anon 1000:0)") {
		t.Errorf("info after set:\n%s", r.stdout)
	}

	r = cl.ctl(t, "export", "set", "nope", "--ro")
	wantExit(t, r, exitNotFound)
	if !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("set on a missing volume:\n%s", r)
	}
}

func TestExportSetRefusals(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)
	before, err := cl.b.FSM().Volume("data")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "at least one of"},
		{[]string{"--ro", "--rw"}, "not both"},
		{[]string{"--clients", ""}, "--clients needs"},
		{[]string{"--clients", " , "}, "--clients needs"},
		{[]string{"--clients", "10.0.0.1"}, `"10.0.0.1" is not a network`},
		{[]string{"--clients", "*,10.0.0.0/8"}, `"*" is not a network`},
		{[]string{"--clients", "everyone"}, "is not a network"},
		{[]string{"--squash", "root"}, "--squash must be"},
		{[]string{"--squash", ""}, "--squash must be"},
		{[]string{"--anon-uid", "-1"}, "anon-uid"},
		{[]string{"--anon-uid", "4294967296"}, "beyond"},
		{[]string{"--anon-gid", "nobody"}, "anon-gid"},
		{[]string{"--ro", "extra"}, "exactly one VOLUME"},
	} {
		r := cl.ctl(t, append([]string{"export", "set", "data"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.msg) || !strings.Contains(r.stderr, "fsrepctl export set --help") {
			t.Errorf("%q: want exit 2 with %q, got %s", tc.args, tc.msg, r)
		}
	}
	for _, args := range [][]string{{"export", "set", "--ro"}, {"export", "show"}, {"export", "show", "a", "b"}} {
		if r := cl.ctl(t, args...); r.code != exitUsage {
			t.Errorf("%q: want exit 2, got %s", args, r)
		}
	}
	if after, _ := cl.b.FSM().Volume("data"); !reflect.DeepEqual(after.Export, before.Export) {
		t.Fatalf("a refused export set changed the export: %+v", after.Export)
	}

	// Refused by the cluster (no leader): exit 1, nothing changed.
	cl.b.SetNoLeader(true)
	r := cl.ctl(t, "export", "set", "data", "--ro")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "leader") {
		t.Errorf("set without a leader:\n%s", r)
	}
}
