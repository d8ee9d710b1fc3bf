package vfs

import (
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

func (e *env) setVolume(t *testing.T, cmd *meta.SetVolume) {
	t.Helper()
	cmd.Name = e.vol.Name
	if _, err := e.meta.Propose(t.Context(), cmd); err != nil {
		t.Fatalf("SetVolume: %v", err)
	}
}

func TestWriteQuota(t *testing.T) {
	e := newEnv(t)
	var hooked error
	e.fs.SetErrorHook(func(err error) { hooked = err })
	var commits atomic.Int64
	e.meta.setBefore(func(c meta.Command) {
		if c.Type() == meta.CmdCommitWrite {
			commits.Add(1)
		}
	})
	e.writeFile(t, "a", "0123456789")
	e.setVolume(t, &meta.SetVolume{QuotaBytes: ptr[int64](16)})

	f, err := e.fs.OpenFile("a", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Up to the quota exactly.
	if _, err := f.Seek(10, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("abcdef")); err != nil {
		t.Fatalf("write up to the quota: %v", err)
	}
	// One byte more is refused before any data is sent or committed.
	before := commits.Load()
	_, err = f.Write([]byte("!"))
	wantErr(t, "write past the quota", err, meta.ErrQuota, syscall.EDQUOT)
	wantErr(t, "the recorded cause", hooked, syscall.EDQUOT)
	if commits.Load() != before {
		t.Error("a write refused by the quota was committed")
	}
	// So is an append.
	app, err := e.fs.OpenFile("a", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.Write([]byte("x"))
	wantErr(t, "append past the quota", err, meta.ErrQuota)
	// A write inside the file passes.
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("ZZ")); err != nil {
		t.Fatalf("overwrite inside the file: %v", err)
	}
	if got := e.readFile(t, "a"); got != "ZZ23456789abcdef" {
		t.Fatalf("contents %q", got)
	}
	// Raising the quota lets writes continue.
	e.setVolume(t, &meta.SetVolume{QuotaBytes: ptr[int64](17)})
	if _, err := app.Write([]byte("x")); err != nil {
		t.Fatalf("append after raising the quota: %v", err)
	}
}

// TestWriteQuotaAtCommit: the local check passes, but another write takes
// the room before this one commits; the commit refuses it, and the caller
// gets EDQUOT, not EIO.
func TestWriteQuotaAtCommit(t *testing.T) {
	e := newEnv(t)
	a := e.writeFile(t, "a", "")
	b := e.writeFile(t, "b", "")
	e.setVolume(t, &meta.SetVolume{QuotaBytes: ptr[int64](10)})
	var raced atomic.Bool
	e.meta.setBefore(func(c meta.Command) {
		if cw, ok := c.(*meta.CommitWrite); ok && cw.Ino == a.Ino && raced.CompareAndSwap(false, true) {
			if _, err := e.meta.b.Propose(t.Context(), &meta.SetAttr{Vol: e.vol.ID, Ino: b.Ino, Size: ptr[uint64](8)}); err != nil {
				t.Errorf("the other writer: %v", err)
			}
		}
	})
	f, err := e.fs.OpenFile("a", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write([]byte("0123"))
	wantErr(t, "write beaten to the last bytes", err, meta.ErrQuota, syscall.EDQUOT)
	if n := e.ino(t, "a"); n.Size != 0 {
		t.Fatalf("a refused write grew the file to %d", n.Size)
	}
}

func TestCreateQuota(t *testing.T) {
	e := newEnv(t)
	// The root and two more.
	e.setVolume(t, &meta.SetVolume{QuotaFiles: ptr[int64](3)})
	e.writeFile(t, "a", "")
	if err := e.fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := e.fs.OpenFile("b", os.O_RDWR|os.O_CREATE, 0o644)
	wantErr(t, "create past the file quota", err, meta.ErrQuota, syscall.EDQUOT)
	wantErr(t, "mkdir past the file quota", e.fs.MkdirAll("d2", 0o755), syscall.EDQUOT)
	wantErr(t, "symlink past the file quota", e.fs.Symlink("a", "s"), syscall.EDQUOT)
	// Opening what exists still works.
	if _, err := e.fs.OpenFile("a", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
