package tests

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// bigDirSize is the number of entries of TestBigDirectoryListing: 10,000 in
// `make test`, FSREP_BIGDIR=100000 for the full figure (`make test-bigdir`).
func bigDirSize(t *testing.T) int {
	n := 10000
	if v := os.Getenv("FSREP_BIGDIR"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("FSREP_BIGDIR=%q", v)
		}
	}
	return n
}

// readDirPlusPage sends one READDIRPLUS with the given cookie and 8 KiB
// counts and returns the names, the last cookie and eof.
func readDirPlusPage(t *testing.T, addr string, xid uint32, dir []byte, cookie uint64) ([]string, uint64, bool) {
	t.Helper()
	args := (&xdrBuf{}).opaque(dir).u32(uint32(cookie >> 32)).u32(uint32(cookie)).u32(0).u32(0).u32(8192).u32(8192).b
	acc, b, err := rawCall(addr, xid, 17, args)
	if err != nil || acc != 0 {
		t.Fatalf("READDIRPLUS: accept %d, %v", acc, err)
	}
	r := &replyReader{b: b}
	if st := r.u32(); st != 0 {
		t.Fatalf("READDIRPLUS after cookie %d: status %d", cookie, st)
	}
	if r.u32() == 1 {
		r.skip(84)
	}
	r.skip(8) // cookie verifier
	var names []string
	last := cookie
	for r.u32() == 1 {
		r.skip(8) // fileid
		names = append(names, string(r.opaque()))
		last = r.u64()
		if r.u32() == 1 {
			r.skip(84)
		}
		if r.u32() == 1 {
			r.opaque()
		}
	}
	eof := r.u32() == 1
	if r.err != nil {
		t.Fatalf("READDIRPLUS reply: %v", r.err)
	}
	return names, last, eof
}

type replyReader struct {
	b   []byte
	err error
}

func (r *replyReader) skip(n int) {
	if r.err != nil {
		return
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("short reply")
		r.b = nil
		return
	}
	r.b = r.b[n:]
}

func (r *replyReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = fmt.Errorf("short reply")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *replyReader) u64() uint64 { return uint64(r.u32())<<32 | uint64(r.u32()) }

func (r *replyReader) opaque() []byte {
	n := int(r.u32())
	if r.err != nil || len(r.b) < (n+3)&^3 {
		r.err = fmt.Errorf("short reply")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[(n+3)&^3:]
	return v
}

// TestBigDirectoryListing lists a big directory through READDIRPLUS with
// 8 KiB pages, the pages alternating between two nodes: every entry comes
// exactly once. The time per entry is logged for the notes (no timed
// assertion).
func TestBigDirectoryListing(t *testing.T) {
	n := bigDirSize(t)
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Target.Mkdir("big", 0o777); err != nil {
		t.Fatal(err)
	}
	dirFH := mustHandle(t, cl, "big")
	v, err := c.Node(0).FSM().Volume("vol")
	if err != nil {
		t.Fatal(err)
	}
	vol := v.ID
	dir, err := c.Node(0).FSM().Lookup(vol, meta.RootIno, "big")
	if err != nil {
		t.Fatal(err)
	}

	// Fill it through the metadata layer (NFS CREATEs would take minutes).
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := c.Node(i%3).Propose(ctx, &meta.Create{Vol: vol, Parent: dir.Ino,
					Name: fmt.Sprintf("entry-%07d", i), Kind: meta.TypeFile, Mode: 0o644})
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("created %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := c.Node(i).Meta().CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}

	start = time.Now()
	seen := make(map[string]bool, n)
	var cookie uint64
	pages := 0
	for eof := false; !eof; pages++ {
		var names []string
		names, cookie, eof = readDirPlusPage(t, c.NFSAddr(pages%2), uint32(pages+1), dirFH, cookie)
		if len(names) == 0 && !eof {
			t.Fatalf("page %d is empty but not the end", pages)
		}
		for _, name := range names {
			if seen[name] {
				t.Fatalf("%s listed twice", name)
			}
			seen[name] = true
		}
	}
	took := time.Since(start)
	if len(seen) != n+2 {
		t.Fatalf("listed %d names, want %d entries plus . and ..", len(seen), n)
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("entry-%07d", i)] {
			t.Fatalf("entry-%07d never listed", i)
		}
	}
	t.Logf("listed %d entries in %d pages of 8 KiB in %v (%.1f µs per entry)", n, pages, took.Round(time.Millisecond),
		float64(took.Microseconds())/float64(n))
}
