package meta

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

func TestCreateVolumeWithQuota(t *testing.T) {
	h := newHarness(t)
	cmd := &CreateVolume{Name: "q", Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755, QuotaBytes: 10 * cs, QuotaFiles: 7}
	l := h.entry(cmd)
	// A build that knows no quotas must refuse the entry rather than create
	// the volume without them: the entry says format 2.
	if l.Data[1] != 2 {
		t.Fatalf("a CreateVolume with a quota is written in format %d, want 2", l.Data[1])
	}
	if b, err := EncodeCommand(&CreateVolume{Name: "plain"}); err != nil || b[1] != 1 {
		t.Fatalf("a CreateVolume without a quota is written in format %d (%v), want 1", b[1], err)
	}
	r, _ := h.fsm.Apply(l).(*Result)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if v := h.vol("q"); v.QuotaBytes != 10*cs || v.QuotaFiles != 7 {
		t.Fatalf("volume quotas = %d bytes, %d files; want %d, 7", v.QuotaBytes, v.QuotaFiles, 10*cs)
	}
	h.fails(&CreateVolume{Name: "neg", Replicas: 1, WriteQuorum: 1, ChunkSize: cs, QuotaBytes: -1}, ErrInvalid)
	h.fails(&CreateVolume{Name: "neg", Replicas: 1, WriteQuorum: 1, ChunkSize: cs, QuotaFiles: -1}, ErrInvalid)
}

func TestQuotaError(t *testing.T) {
	// The gateway maps syscall.EDQUOT to NFS3ERR_DQUOT; the error must keep
	// matching it after crossing the network as a code.
	for _, err := range []error{ErrQuota, ErrorFor(CodeOf(ErrQuota), "meta: volume quota exceeded: details")} {
		if !errors.Is(err, ErrQuota) || !errors.Is(err, syscall.EDQUOT) {
			t.Errorf("%v does not match ErrQuota and EDQUOT", err)
		}
		if errors.Is(err, ErrInvalid) || errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%v matches an unrelated error", err)
		}
	}
	if CodeOf(ErrQuota) != CodeQuota || CodeQuota <= CodeInternal {
		t.Errorf("ErrQuota has code %d; codes are append-only, after CodeInternal", CodeOf(ErrQuota))
	}
}

func TestQuotaFiles(t *testing.T) {
	h := newHarness(t)
	// The root directory counts: 4 files is the root and three more.
	vol := h.ok(&CreateVolume{Name: "q", Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755, QuotaFiles: 4}).Volume.ID
	d := h.create(vol, RootIno, "d", TypeDir)
	h.create(vol, d.Ino, "f", TypeFile)
	h.create(vol, RootIno, "s", TypeSymlink)
	for _, kind := range []FileType{TypeFile, TypeDir, TypeSymlink} {
		c := &Create{Vol: vol, Parent: RootIno, Name: "over", Kind: kind, Mode: 0o644, Target: "t"}
		h.fails(c, ErrQuota, syscall.EDQUOT)
	}
	// A name that exists is still "exists", not "over quota".
	h.fails(&Create{Vol: vol, Parent: RootIno, Name: "s", Kind: TypeFile, Mode: 0o644}, ErrExist)
	// A hard link is no new inode.
	f := h.lookup(vol, d.Ino, "f")
	h.ok(&Link{Vol: vol, Ino: f.Ino, Parent: RootIno, Name: "f2"})
	// Removing one frees room for one.
	h.ok(&Remove{Vol: vol, Parent: RootIno, Name: "s"})
	h.create(vol, RootIno, "again", TypeFile)
	h.fails(&Create{Vol: vol, Parent: RootIno, Name: "over", Kind: TypeFile, Mode: 0o644}, ErrQuota)
	// Raising the quota lets creates continue.
	h.ok(&SetVolume{Name: "q", QuotaFiles: ptr[int64](5)})
	h.create(vol, RootIno, "over", TypeFile)
	// 0 is no quota.
	h.ok(&SetVolume{Name: "q", QuotaFiles: ptr[int64](0)})
	for _, name := range []string{"a", "b", "c"} {
		h.create(vol, RootIno, name, TypeFile)
	}
	if v := h.vol("q"); v.Files != 8 {
		t.Fatalf("Files = %d, want 8", v.Files)
	}
}

func TestQuotaBytes(t *testing.T) {
	h := newHarness(t)
	vol := h.ok(&CreateVolume{Name: "q", Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755, QuotaBytes: 2 * cs}).Volume.ID
	a := h.create(vol, RootIno, "a", TypeFile)
	b := h.create(vol, RootIno, "b", TypeFile)
	h.write(vol, a.Ino, 0, 0, 1, cs, "n1", "n2")
	h.write(vol, b.Ino, 0, 0, 1, cs/2, "n1", "n2")
	// Growing b to the quota exactly passes; one byte more does not.
	h.write(vol, b.Ino, 0, 1, 2, cs, "n1", "n2")
	if v := h.vol("q"); v.Bytes != 2*cs {
		t.Fatalf("Bytes = %d, want %d", v.Bytes, 2*cs)
	}
	grow := &CommitWrite{Vol: vol, Ino: a.Ino, Size: cs + 1, Chunks: []ChunkWrite{
		{Index: 1, BaseVersion: 0, Version: 1, Length: 1, Replicas: []string{"n1", "n2"}}}}
	h.fails(grow, ErrQuota, syscall.EDQUOT)
	// A write inside the file passes, whatever the usage.
	h.write(vol, a.Ino, 0, 1, 2, cs, "n1", "n2")
	// Growing through truncate counts as well (Bytes is the logical size).
	h.fails(&SetAttr{Vol: vol, Ino: a.Ino, Size: ptr[uint64](cs + 1)}, ErrQuota)
	// Shrinking passes and makes room.
	h.ok(&SetAttr{Vol: vol, Ino: b.Ino, Size: ptr[uint64](cs - 10)})
	h.write(vol, a.Ino, 1, 0, 1, 10, "n1", "n2")
	h.fails(&SetAttr{Vol: vol, Ino: a.Ino, Size: ptr[uint64](cs + 11)}, ErrQuota)

	// A quota lowered below the usage is accepted; the volume then only
	// shrinks, and writes inside files still pass.
	h.ok(&SetVolume{Name: "q", QuotaBytes: ptr[int64](cs)})
	h.fails(&CommitWrite{Vol: vol, Ino: b.Ino, Size: cs, Chunks: []ChunkWrite{
		{Index: 0, BaseVersion: 2, Version: 3, Length: cs, Replicas: []string{"n1"}}}}, ErrQuota)
	h.write(vol, a.Ino, 0, 2, 3, cs, "n1", "n2")
	h.ok(&Remove{Vol: vol, Parent: RootIno, Name: "b"})
	if v := h.vol("q"); v.Bytes != cs+10 {
		t.Fatalf("Bytes = %d, want %d", v.Bytes, cs+10)
	}
	// Raising the quota lets writes continue.
	h.ok(&SetVolume{Name: "q", QuotaBytes: ptr[int64](4 * cs)})
	h.write(vol, a.Ino, 2, 0, 1, cs, "n1", "n2")
	h.ok(&SetVolume{Name: "q", QuotaBytes: ptr[int64](0)})
	h.write(vol, a.Ino, 9, 0, 1, cs, "n1", "n2")
	if v := h.vol("q"); v.Bytes != 10*cs {
		t.Fatalf("Bytes = %d, want %d", v.Bytes, 10*cs)
	}
}

func TestSetVolume(t *testing.T) {
	h := newHarness(t)
	h.volume("v")
	before := h.vol("v")

	// Nothing set changes nothing.
	if got := h.ok(&SetVolume{Name: "v"}).Volume; !reflect.DeepEqual(got, before) {
		t.Fatalf("empty SetVolume returned %+v, want %+v", got, before)
	}
	ex := Export{ReadOnly: true, Clients: []string{"10.0.0.0/8"}, Squash: SquashAll, AnonUID: 7, AnonGID: 8}
	got := h.ok(&SetVolume{Name: "v", Replicas: ptr(5), WriteQuorum: ptr(3), QuotaBytes: ptr[int64](1 << 40),
		QuotaFiles: ptr[int64](1000), Export: &ex}).Volume
	want := *before
	want.Replicas, want.WriteQuorum, want.QuotaBytes, want.QuotaFiles, want.Export = 5, 3, 1<<40, 1000, ex
	if !reflect.DeepEqual(got, &want) || !reflect.DeepEqual(h.vol("v"), &want) {
		t.Fatalf("SetVolume: got %+v, stored %+v, want %+v", got, h.vol("v"), &want)
	}
	// Fields left nil keep their values.
	h.ok(&SetVolume{Name: "v", Replicas: ptr(4)})
	if v := h.vol("v"); v.Replicas != 4 || v.WriteQuorum != 3 || v.QuotaBytes != 1<<40 || !reflect.DeepEqual(v.Export, ex) {
		t.Fatalf("after setting only the replicas: %+v", v)
	}

	h.fails(&SetVolume{Name: "v", Replicas: ptr(2)}, ErrInvalid) // quorum 3 > 2 replicas
	h.fails(&SetVolume{Name: "v", Replicas: ptr(0), WriteQuorum: ptr(0)}, ErrInvalid)
	h.fails(&SetVolume{Name: "v", WriteQuorum: ptr(5)}, ErrInvalid)
	h.fails(&SetVolume{Name: "v", QuotaBytes: ptr[int64](-1)}, ErrInvalid)
	h.fails(&SetVolume{Name: "v", QuotaFiles: ptr[int64](-5)}, ErrInvalid)
	h.fails(&SetVolume{Name: "v", Export: &Export{Squash: "never"}}, ErrInvalid)
	h.fails(&SetVolume{Name: "nope", Replicas: ptr(3)}, ErrNoVolume)

	h.ok(&SetVolume{Name: "v", Replicas: ptr(1), WriteQuorum: ptr(1)})
	if v := h.vol("v"); v.Replicas != 1 || v.WriteQuorum != 1 {
		t.Fatalf("replicas %d, quorum %d; want 1, 1", v.Replicas, v.WriteQuorum)
	}
}

func TestBackup(t *testing.T) {
	h := newHarness(t)
	h.volume("a")
	h.volume("b")
	bk, err := h.fsm.Backup()
	if err != nil {
		t.Fatal(err)
	}
	// A change after the backup began is not in it.
	h.volume("c")
	if bk.AppliedIndex() != 2 {
		t.Errorf("backup applied index %d, want 2", bk.AppliedIndex())
	}
	var buf bytes.Buffer
	n, err := bk.WriteTo(&buf)
	if err != nil || n != bk.Size() || int64(buf.Len()) != n {
		t.Fatalf("WriteTo: %d bytes of %d (%d buffered), %v", n, bk.Size(), buf.Len(), err)
	}
	if err := bk.Close(); err != nil {
		t.Fatal(err)
	}
	// The copy is a meta.db: it opens and holds the volumes of its moment.
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := InspectBackup(path)
	if err != nil || info.AppliedIndex != 2 || len(info.Volumes) != 2 || info.Volumes[1].Name != "b" || info.StorageVersion != StorageVersion {
		t.Fatalf("InspectBackup: %+v, %v", info, err)
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	if err := os.WriteFile(cut, buf.Bytes()[:buf.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err := InspectBackup(cut); err == nil {
		t.Fatalf("InspectBackup of half a file: %+v", info)
	}
	f := openFSM(t, path)
	defer f.Close()
	vols, err := f.Volumes()
	if err != nil || len(vols) != 2 || vols[0].Name != "a" || vols[1].Name != "b" || f.AppliedIndex() != 2 {
		t.Fatalf("backup holds %+v (applied %d, %v), want volumes a and b at index 2", vols, f.AppliedIndex(), err)
	}
}
