package vfs

import (
	"context"
	"errors"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

// panicData is a data path with a bug: every write panics.
type panicData struct{ *memData }

func (panicData) WriteAt(context.Context, *meta.Volume, uint64, int64, []byte) (*meta.Inode, error) {
	panic("bug in the data path")
}

func TestPanicBecomesError(t *testing.T) {
	e := newEnv(t)
	e.writeFile(t, "f", "before")
	var hooked error
	fs := New(e.vol.ID, e.meta, panicData{e.data}, fixedClock{}, testOwner, e.fs.timeout)
	fs.SetErrorHook(func(err error) { hooked = err })
	f, err := fs.OpenFile("f", 2 /* O_RDWR */, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.Write([]byte("x"))
	if !errors.Is(err, ErrPanic) || n != 0 {
		t.Fatalf("Write through a panicking data path = %d, %v; want ErrPanic", n, err)
	}
	if !errors.Is(hooked, ErrPanic) {
		t.Fatalf("the error hook saw %v, want ErrPanic", hooked)
	}
	// The filesystem keeps serving.
	if got := e.readFile(t, "f"); got != "before" {
		t.Fatalf("after the panic the file reads %q", got)
	}
}
