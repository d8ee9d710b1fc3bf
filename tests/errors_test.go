package tests

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

func nfsErr(err error) string {
	var e *nfsc.Error
	switch {
	case err == nil:
		return "OK"
	case errors.As(err, &e):
		return e.ErrorString
	case errors.Is(err, os.ErrExist):
		return "NFS3ERR_EXIST"
	case errors.Is(err, os.ErrNotExist):
		return "NFS3ERR_NOENT"
	case errors.Is(err, os.ErrPermission):
		return "NFS3ERR_PERM" // go-nfs-client's mapping of status 1
	}
	return err.Error()
}

// TestErrorStatuses checks that causes reach the client as their own NFS
// status, not as the EIO go-nfs would send.
func TestErrorStatuses(t *testing.T) {
	c := NewCluster(t, ClusterOptions{OpTimeout: 3 * time.Second})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tg := cl.Target
	if _, err := tg.Mkdir("full", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := tg.OpenFile("full/file", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := tg.Mkdir("full/sub", 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		what string
		err  error
		want string
	}{
		{"rmdir of a non-empty directory", tg.RmDir("full"), "NFS3ERR_NOTEMPTY"},
		{"remove of a missing name", tg.Remove("nope"), "NFS3ERR_NOENT"},
		{"rename of a directory into itself", tg.Rename("full", "full/sub/inside"), "NFS3ERR_INVAL"},
	}
	_, err = tg.Create(strings.Repeat("n", 256), 0o644)
	cases = append(cases, struct {
		what string
		err  error
		want string
	}{"create of a 256-byte name", err, "NFS3ERR_NAMETOOLONG"})
	for _, tc := range cases {
		if got := nfsErr(tc.err); got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.what, got, tc.err, tc.want)
		}
	}

	// Without a metadata majority, a change is answered JUKEBOX (the client
	// retries later), never success and never a plain I/O error.
	root, err := cl.Handle(".")
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)
	st, err := cl.MkdirStatus(root, "during-outage")
	if err != nil {
		t.Fatalf("MKDIR without a majority: %v", err)
	}
	if st != 10008 {
		t.Fatalf("MKDIR without a majority answered status %d, want 10008 (JUKEBOX)", st)
	}
}
